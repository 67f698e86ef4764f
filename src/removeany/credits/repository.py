"""Every ledger query lives here; the service decides, the repository reads and writes."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import case, func, select, text
from sqlalchemy.orm import Session

from removeany.credits.models import CreditEntry, CreditHold, CreditLot


def lock_user(session: Session, user_id: int) -> None:
    """Serialise ledger changes per user: a row lock on PostgreSQL. On SQLite every transaction
    already holds the database write lock (BEGIN IMMEDIATE, see infra.db)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT id FROM users WHERE id = :id FOR UPDATE"), {"id": user_id})


def spendable_lots(session: Session, user_id: int, now: datetime) -> Sequence[CreditLot]:
    """Lots in spend order: soonest expiry, promotional before paid, then oldest."""
    paid_last = case((CreditLot.source == "purchase", 1), else_=0)
    stmt = (
        select(CreditLot)
        .where(
            CreditLot.user_id == user_id,
            CreditLot.remaining > 0,
            CreditLot.expires_at > now,
        )
        .order_by(
            CreditLot.expires_at,
            paid_last,
            CreditLot.created_at,
            CreditLot.id,
        )
    )
    return session.scalars(stmt).all()


def available(session: Session, user_id: int, now: datetime, *, source: str | None = None) -> int:
    """Unexpired credits, or those of lots from one ``source`` (such as "purchase")."""
    stmt = select(func.coalesce(func.sum(CreditLot.remaining), 0)).where(
        CreditLot.user_id == user_id, CreditLot.expires_at > now
    )
    if source is not None:
        stmt = stmt.where(CreditLot.source == source)
    return int(session.scalar(stmt) or 0)


def held(session: Session, user_id: int) -> int:
    stmt = select(func.coalesce(func.sum(CreditHold.amount), 0)).where(
        CreditHold.user_id == user_id, CreditHold.status == "held"
    )
    return int(session.scalar(stmt) or 0)


def holds_for(session: Session, reference: str, status: str = "held") -> Sequence[CreditHold]:
    stmt = (
        select(CreditHold)
        .where(CreditHold.reference == reference, CreditHold.status == status)
        .order_by(CreditHold.id)
    )
    return session.scalars(stmt).all()


def holds_any_status(session: Session, reference: str) -> Sequence[CreditHold]:
    return session.scalars(select(CreditHold).where(CreditHold.reference == reference)).all()


def expired_holds(session: Session, now: datetime) -> Sequence[CreditHold]:
    stmt = select(CreditHold).where(CreditHold.status == "held", CreditHold.expires_at <= now)
    return session.scalars(stmt).all()


def lots_to_expire(session: Session, now: datetime) -> Sequence[CreditLot]:
    stmt = select(CreditLot).where(CreditLot.remaining > 0, CreditLot.expires_at <= now)
    return session.scalars(stmt).all()


def entry_by_key(session: Session, key: str) -> CreditEntry | None:
    return session.scalar(select(CreditEntry).where(CreditEntry.idempotency_key == key))


def lots(session: Session, user_id: int) -> Sequence[CreditLot]:
    stmt = select(CreditLot).where(CreditLot.user_id == user_id).order_by(CreditLot.id)
    return session.scalars(stmt).all()


def entries(session: Session, user_id: int, limit: int = 200) -> Sequence[CreditEntry]:
    stmt = (
        select(CreditEntry)
        .where(CreditEntry.user_id == user_id)
        .order_by(CreditEntry.id.desc())
        .limit(limit)
    )
    return session.scalars(stmt).all()


def entry_sum_for_lot(session: Session, lot_id: int) -> int:
    stmt = select(func.coalesce(func.sum(CreditEntry.amount), 0)).where(
        CreditEntry.lot_id == lot_id
    )
    return int(session.scalar(stmt) or 0)


def lots_to_warn(session: Session, now: datetime, horizon: datetime) -> Sequence[CreditLot]:
    """Lots with credits left that expire before `horizon` and whose owner was not yet told.
    Locked, skipping lots another sweep holds: every web process sweeps (and cron may too),
    and two sweeps must not both mail the same warning."""
    stmt = (
        select(CreditLot)
        .where(
            CreditLot.remaining > 0,
            CreditLot.expiry_warned_at.is_(None),
            CreditLot.expires_at > now,
            CreditLot.expires_at <= horizon,
        )
        .with_for_update(skip_locked=True)
    )
    return session.scalars(stmt).all()
