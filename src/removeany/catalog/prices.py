"""What each service costs in credits. Integer credits keep the ledger exact; prices live in the
`prices` table (seeded by migration), so admins can change them without a release."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.orm import Session

from removeany.catalog import repository as repo
from removeany.catalog.models import Price
from removeany.engine.compose import SIZE_BUDGETS
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

# The tiers from cheapest to dearest, and the most pixels a result may have and still be
# priced at a tier (remove.bg's: a preview up to 0.25 MP, a full-resolution image up to 25 MP).
TIER_ORDER = ("preview", "full", "50MP")
TIER_LIMITS = (("preview", 250_000), ("full", 25_000_000))

# The rule every surface charges by, as the API reference states it (README, home page).
PRICING_RULE = (
    "Charged by the size of the result: up to 0.25 MP the preview price, up to 25 MP the "
    "full price, above that the 50MP price (GET /api/v1/prices). `size` caps the result "
    "(`full` and `auto` keep the photo's resolution), so a 2 MP photo at `50MP` costs the "
    "full price and a 30 MP one at `full` the 50MP price. A job holds its price until it "
    "finishes. With `crop` the result's size is known only once the subject is found: the "
    "job holds the price of the largest result it can make (the whole photo with its "
    "margins) and is charged that of the result it made, the rest going back. A failed or "
    "cancelled job costs nothing."
)

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


def tier_of(pixels: int) -> str:
    """The tier a result of `pixels` pixels is sold at: preview up to 0.25 MP, full up to
    25 MP, 50MP above (the home page's list, `web.routes._TIER_LABELS`)."""
    return next((tier for tier, limit in TIER_LIMITS if pixels <= limit), "50MP")


def tier_for(size: str, pixels: int | None = None) -> str:
    """The tier `size` is sold at. Given the most pixels the result can have before the size's
    budget, the tier of the result itself: a 2 MP photo asked for at 50MP comes out at 2 MP
    (full), a 0.1 MP one asked for at full size as small as a preview, and a full-resolution
    result over 25 MP is a 50MP one (`full` and `auto` keep the photo's resolution). Without
    the pixels, `size`'s own tier."""
    try:
        named = SIZE_TIERS[size]
    except KeyError:
        raise UnknownService(
            f"There is no size {size!r}. Use one of: {', '.join(SIZE_TIERS)}."
        ) from None
    if pixels is None:
        return named
    budget = SIZE_BUDGETS[size]
    return tier_of(pixels if budget is None else min(pixels, budget))


def price_for(session: Session, service: str, size: str, pixels: int | None = None) -> Price:
    """The current price row, which the job records so later changes never re-price it; with
    the result's `pixels` (at most), at the tier of the result's real size (`tier_for`)."""
    tier = SINGLE_TIER.get(service) or tier_for(size, pixels)
    row = repo.current(session, service, tier)
    if row is None:
        raise UnknownService(
            f"The service {service!r} is not offered at size {size!r}. "
            "Pick another size or service."
        )
    return row


def price_ranges(session: Session, service: str, size: str) -> list[tuple[int, int | None]]:
    """What a photo asked for at `size` can cost, by its result's pixels: (credits, up to how
    many pixels) per price, cheapest tier first, tiers of one price merged, the last one
    unbounded (None). One entry where every result the size can make costs the same; empty
    where the service is not offered at that size. The pages' price hints say this."""
    if service in SINGLE_TIER:
        row = repo.current(session, service, SINGLE_TIER[service])
        return [] if row is None else [(row.credits, None)]
    budget = SIZE_BUDGETS[size]
    top = TIER_ORDER.index(tier_for(size, budget if budget is not None else 50_000_001))
    limits = dict(TIER_LIMITS)
    ranges: list[tuple[int, int | None]] = []
    for tier in TIER_ORDER[: top + 1]:
        row = repo.current(session, service, tier)
        if row is None:
            continue
        if ranges and ranges[-1][0] == row.credits:
            ranges.pop()
        ranges.append((row.credits, limits.get(tier)))
    if ranges:
        ranges[-1] = (ranges[-1][0], None)
    return ranges


def price_of_result(
    session: Session, service: str, pixels: int, accepted_at: datetime
) -> Price | None:
    """What a finished result of `pixels` pixels costs: its tier's price in force when its job
    was accepted (a price changed while the job ran does not apply to it). None for a service
    sold at one tier, or where the tier is not on sale: the job keeps the price it held."""
    if service in SINGLE_TIER:
        return None
    return repo.as_of(session, service, tier_of(pixels), accepted_at)


def cheapest(session: Session, service: str) -> int | None:
    """The least one image of `service` can cost, at any size (a batch's price before its
    photos are read is at least this per image); None if the service is not offered."""
    tiers = (SINGLE_TIER[service],) if service in SINGLE_TIER else TIER_ORDER
    found = [
        row.credits for tier in tiers if (row := repo.current(session, service, tier)) is not None
    ]
    return min(found) if found else None


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
