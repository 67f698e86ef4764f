"""What each service costs in credits. Integer credits keep the ledger exact; prices live in the
`prices` table (seeded by migration), so admins can change them without a release."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.orm import Session

from removeany.catalog import repository as repo
from removeany.catalog.models import Price
from removeany.errors import DomainError

# remove.bg's size names grouped into the tiers we price.
SIZE_TIERS = {
    "preview": "preview",
    "small": "preview",
    "regular": "preview",
    "medium": "full",
    "hd": "full",
    "4k": "full",
    "full": "full",
    "auto": "full",
    "50MP": "50MP",
}

# The seed catalogue; the migrations write these as version 1 (0003: background removal,
# 0005_more_services: the others).
DEFAULT_PRICES: dict[tuple[str, str], int] = {
    ("remove_background", "preview"): 1,
    ("remove_background", "full"): 1,
    ("remove_background", "50MP"): 2,
    ("portrait", "preview"): 1,
    ("portrait", "full"): 1,
    ("portrait", "50MP"): 2,
    ("id_photo", "full"): 1,
    ("remove_watermark", "preview"): 1,
    ("remove_watermark", "full"): 1,
    ("remove_watermark", "50MP"): 2,
}
# Services sold at one tier whatever their options: an ID photo's `size` is its print size
# (1inch, 2inch), not an output budget.
SINGLE_TIER: dict[str, str] = {"id_photo": "full"}


class UnknownService(DomainError):
    code = "unknown_service"


def tier_for(size: str) -> str:
    try:
        return SIZE_TIERS[size]
    except KeyError:
        raise UnknownService(
            f"There is no size {size!r}. Use one of: {', '.join(SIZE_TIERS)}."
        ) from None


def price_for(session: Session, service: str, size: str) -> Price:
    """The current price row, which the job records so later changes never re-price it."""
    tier = SINGLE_TIER.get(service) or tier_for(size)
    row = repo.current(session, service, tier)
    if row is None:
        raise UnknownService(
            f"The service {service!r} is not offered at size {size!r}. "
            "Pick another size or service."
        )
    return row


def set_price(
    session: Session,
    service: str,
    tier: str,
    credits: int,
    *,
    now: datetime,
    admin_id: int | None,
    note: str = "",
) -> Price:
    if credits < 0:
        raise DomainError("A price cannot be negative.", code="invalid_price")
    if tier not in set(SIZE_TIERS.values()):
        raise DomainError(
            f"Unknown tier {tier!r}; use one of {', '.join(sorted(set(SIZE_TIERS.values())))}.",
            code="invalid_price",
        )
    if service in SINGLE_TIER and tier != SINGLE_TIER[service]:
        raise DomainError(
            f"{service} is sold at one tier only; set its {SINGLE_TIER[service]!r} price.",
            code="invalid_price",
        )
    current = repo.current(session, service, tier)
    if current is None and (service, tier) not in DEFAULT_PRICES:
        raise UnknownService(f"There is no service {service!r}.")
    price = Price(
        service=service,
        tier=tier,
        credits=credits,
        version=(current.version + 1) if current else 1,
        created_at=now,
        created_by=admin_id,
        note=note[:200],
    )
    session.add(price)
    session.flush()
    return price


def catalogue(session: Session) -> Sequence[Price]:
    return repo.all_current(session)
