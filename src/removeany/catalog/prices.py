"""What each service costs in credits. Integer credits keep the ledger exact."""

from __future__ import annotations

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

_PRICES: dict[tuple[str, str], int] = {
    ("remove_background", "preview"): 1,
    ("remove_background", "full"): 1,
    ("remove_background", "50MP"): 2,
}


class UnknownService(DomainError):
    code = "unknown_service"


def price(service: str, size: str) -> int:
    try:
        return _PRICES[(service, SIZE_TIERS[size])]
    except KeyError:
        raise UnknownService(
            f"There is no service {service!r} with size {size!r}. "
            f"Use one of: {', '.join(sorted({s for s, _ in _PRICES}))}."
        ) from None
