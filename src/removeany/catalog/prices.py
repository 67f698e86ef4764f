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

# The seed catalogue; the migration writes these as version 1.
DEFAULT_PRICES: dict[tuple[str, str], int] = {
    ("remove_background", "preview"): 1,
    ("remove_background", "full"): 1,
    ("remove_background", "50MP"): 2,
}


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
    row = repo.current(session, service, tier_for(size))
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
