"""The credits ledger: grant, reserve, capture, release, expire. Services flush, never commit.

Invariants: a lot's `remaining` equals the sum of its entries and never goes below zero; a
job's credits are held while it runs and either captured (spent) or released back to the
lots they came from. There is deliberately no transfer operation.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy.orm import Session

from removeany.credits import repository as repo
from removeany.credits.models import CreditEntry, CreditHold, CreditLot
from removeany.errors import DomainError


class InsufficientCredits(DomainError):
    status_code = 402
    code = "insufficient_credits"
    page = "/credits"

    def __init__(self, needed: int, available: int):
        super().__init__(
            f"This needs {needed} credit{'s' if needed != 1 else ''} and your balance is "
            f"{available}. Buy more credits on the Credits page (/credits) or wait for your "
            "free allowance."
        )
        self.needed = needed
        self.available = available


@dataclass(frozen=True)
class Balance:
    available: int
    held: int


def balance(session: Session, user_id: int, now: datetime) -> Balance:
    return Balance(
        available=repo.available(session, user_id, now), held=repo.held(session, user_id)
    )


@dataclass(frozen=True)
class Origins:
    """The available credits by where they came from."""

    bought: int
    granted: int  # sign-up, monthly, promotional and admin grants


def origins(session: Session, user_id: int, now: datetime) -> Origins:
    available = repo.available(session, user_id, now)
    bought = repo.available(session, user_id, now, source="purchase")
    return Origins(bought=bought, granted=available - bought)


def grant(
    session: Session,
    user_id: int,
    amount: int,
    *,
    source: str,
    now: datetime,
    expires_at: datetime,
    reference: str = "",
    idempotency_key: str | None = None,
) -> CreditLot | None:
    """Create a lot. With an idempotency key, a repeated grant creates nothing and returns None."""
    if amount <= 0:
        raise ValueError("a grant must be positive")
    repo.lock_user(session, user_id)
    if idempotency_key is not None and repo.entry_by_key(session, idempotency_key) is not None:
        return None
    lot = CreditLot(
        user_id=user_id,
        source=source,
        amount=amount,
        remaining=amount,
        expires_at=expires_at,
        created_at=now,
    )
    session.add(lot)
    session.flush()
    kind = "purchase" if source == "purchase" else "grant"
    session.add(
        CreditEntry(
            user_id=user_id,
            lot_id=lot.id,
            kind=kind,
            amount=amount,
            reference=reference,
            idempotency_key=idempotency_key,
            created_at=now,
        )
    )
    session.flush()
    return lot


def reserve(
    session: Session, user_id: int, amount: int, *, reference: str, now: datetime, ttl: timedelta
) -> list[CreditHold]:
    """Hold `amount` credits for `reference` across lots in spend order, or raise 402."""
    if amount <= 0:
        raise ValueError("a reserve must be positive")
    repo.lock_user(session, user_id)
    lots = repo.spendable_lots(session, user_id, now)
    total = sum(lot.remaining for lot in lots)
    if total < amount:
        raise InsufficientCredits(amount, total)
    holds: list[CreditHold] = []
    left = amount
    for lot in lots:
        if left == 0:
            break
        take = min(lot.remaining, left)
        lot.remaining -= take
        left -= take
        hold = CreditHold(
            user_id=user_id,
            lot_id=lot.id,
            reference=reference,
            amount=take,
            status="held",
            created_at=now,
            expires_at=now + ttl,
        )
        session.add(hold)
        session.add(
            CreditEntry(
                user_id=user_id,
                lot_id=lot.id,
                kind="reserve",
                amount=-take,
                reference=reference,
                created_at=now,
            )
        )
        holds.append(hold)
    session.flush()
    return holds


def capture(
    session: Session, user_id: int, *, reference: str, now: datetime, amount: int | None = None
) -> int:
    """Turn the held credits of `reference` into spent credits; returns the amount charged.
    With `amount`, at most that much is spent, from the holds in spend order, and the rest
    goes back to the lots it came from (a job whose result came out in a cheaper tier than
    the one it held for). Capturing twice charges once."""
    repo.lock_user(session, user_id)
    charged = 0
    left = amount
    for hold in repo.holds_for(session, reference):
        take = hold.amount if left is None else min(hold.amount, left)
        if take < hold.amount:
            _give_back(session, hold, hold.amount - take, now)
        if take == 0:
            continue
        if left is not None:
            left -= take
        hold.amount = take
        hold.status = "captured"
        hold.settled_at = now
        charged += take
        session.add(
            CreditEntry(
                user_id=user_id,
                lot_id=hold.lot_id,
                kind="capture",
                amount=0,
                reference=reference,
                created_at=now,
            )
        )
    session.flush()
    return charged


def _give_back(session: Session, hold: CreditHold, amount: int, now: datetime) -> None:
    """Return `amount` of a hold to its lot as a `release` entry; a hold returned whole is
    released, one returned in part keeps the rest (which its caller captures)."""
    lot = session.get(CreditLot, hold.lot_id, with_for_update=False)
    assert lot is not None
    lot.remaining += amount
    if amount == hold.amount:
        hold.status = "released"
        hold.settled_at = now
    session.add(
        CreditEntry(
            user_id=hold.user_id,
            lot_id=hold.lot_id,
            kind="release",
            amount=amount,
            reference=hold.reference,
            created_at=now,
        )
    )


def release(session: Session, user_id: int, *, reference: str, now: datetime) -> int:
    """Return held credits to the lots they came from; returns the amount released."""
    repo.lock_user(session, user_id)
    released = 0
    for hold in repo.holds_for(session, reference):
        released += hold.amount
        _give_back(session, hold, hold.amount, now)
    session.flush()
    return released


def charged_for(session: Session, reference: str) -> int:
    return sum(
        h.amount for h in repo.holds_any_status(session, reference) if h.status == "captured"
    )


def expire_lots(session: Session, now: datetime) -> int:
    """Write `expire` entries for the unused remainder of every lot past its expiry."""
    expired = 0
    for lot in repo.lots_to_expire(session, now):
        repo.lock_user(session, lot.user_id)
        session.refresh(lot)
        if lot.remaining <= 0:
            continue
        session.add(
            CreditEntry(
                user_id=lot.user_id,
                lot_id=lot.id,
                kind="expire",
                amount=-lot.remaining,
                reference=f"lot:{lot.id}",
                created_at=now,
            )
        )
        expired += lot.remaining
        lot.remaining = 0
    session.flush()
    return expired


def release_stale_holds(
    session: Session, now: datetime, *, in_use: Collection[str] = frozenset()
) -> int:
    """Holds past their TTL go back to their lots (what they held for never settled), except
    those whose references are still ``in_use``: work that is queued or running, however
    long it waits, is charged when it settles."""
    released = 0
    for reference, user_id in {(h.reference, h.user_id) for h in repo.expired_holds(session, now)}:
        if reference in in_use:
            continue
        released += release(session, user_id, reference=reference, now=now)
    return released


def revoke(session: Session, user_id: int, amount: int, *, reference: str, now: datetime) -> int:
    """Take back up to `amount` unspent credits (an admin correction, a deleted account), from
    lots in spend order, as `revoke` entries. Returns the amount taken; held credits are not
    touched."""
    if amount <= 0:
        raise ValueError("a revoke must be positive")
    repo.lock_user(session, user_id)
    taken = 0
    for lot in repo.spendable_lots(session, user_id, now):
        if taken == amount:
            break
        take = min(lot.remaining, amount - taken)
        lot.remaining -= take
        taken += take
        session.add(
            CreditEntry(
                user_id=user_id,
                lot_id=lot.id,
                kind="revoke",
                amount=-take,
                reference=reference,
                created_at=now,
            )
        )
    session.flush()
    return taken


def take_back(
    session: Session,
    lot_id: int,
    amount: int,
    *,
    kind: Literal["refund", "chargeback"],
    reference: str,
    now: datetime,
) -> int:
    """Take up to `amount` of what is left in one lot (an order's, refunded or disputed) as a
    `kind` entry. Spent and held credits stay where they are, so no balance goes negative.
    Returns the amount taken."""
    lot = session.get(CreditLot, lot_id)
    if lot is None or amount <= 0:
        return 0
    repo.lock_user(session, lot.user_id)
    session.refresh(lot)
    take = min(lot.remaining, amount)
    if take == 0:
        return 0
    lot.remaining -= take
    session.add(
        CreditEntry(
            user_id=lot.user_id,
            lot_id=lot.id,
            kind=kind,
            amount=-take,
            reference=reference,
            created_at=now,
        )
    )
    session.flush()
    return take
