"""Every query on outgoing mail."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Update, delete, or_, select, update
from sqlalchemy.orm import Session

from removeany.mail.models import FAILED, PENDING, SENT, OutgoingMail


def claim_due(
    session: Session,
    *,
    now: datetime,
    claim: str,
    until: datetime,
    limit: int,
    ids: tuple[int, int] | None = None,
) -> Sequence[OutgoingMail]:
    """Take up to `limit` emails that are due (only those whose id is in the range `ids` when
    given) for one sender until `until`. Locked, skipping rows another sender is claiming
    (PostgreSQL; SQLite serialises every write transaction): two senders never hold the same
    email."""
    stmt = (
        select(OutgoingMail)
        .where(OutgoingMail.status == PENDING, OutgoingMail.due_at <= now)
        .order_by(OutgoingMail.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    if ids is not None:
        stmt = stmt.where(OutgoingMail.id.between(*ids))
    rows = session.scalars(stmt).all()
    for row in rows:
        row.claim = claim
        row.due_at = until
    session.flush()
    return rows


def _held(mail_id: int, claim: str) -> Update:
    """An update of the email only while `claim` still holds it (its claim may have lapsed
    and passed to another sender, or the account been erased meanwhile)."""
    return update(OutgoingMail).where(
        OutgoingMail.id == mail_id, OutgoingMail.claim == claim, OutgoingMail.status == PENDING
    )


def mark_sent(session: Session, mail_id: int, claim: str, *, now: datetime) -> bool:
    result = session.execute(
        _held(mail_id, claim).values(
            status=SENT,
            body="",
            claim=None,
            finished_at=now,
            attempts=OutgoingMail.attempts + 1,
        )
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def retry_later(
    session: Session, mail_id: int, claim: str, *, due_at: datetime, error: str
) -> bool:
    result = session.execute(
        _held(mail_id, claim).values(
            claim=None, due_at=due_at, last_error=error, attempts=OutgoingMail.attempts + 1
        )
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def give_up(session: Session, mail_id: int, claim: str, *, now: datetime, error: str) -> bool:
    result = session.execute(
        _held(mail_id, claim).values(
            status=FAILED,
            body="",
            claim=None,
            finished_at=now,
            last_error=error,
            attempts=OutgoingMail.attempts + 1,
        )
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def of_user(session: Session, user_id: int, address: str) -> Sequence[OutgoingMail]:
    stmt = (
        select(OutgoingMail)
        .where(or_(OutgoingMail.user_id == user_id, OutgoingMail.to_address == address))
        .order_by(OutgoingMail.id)
    )
    return session.scalars(stmt).all()


def delete_of_user(session: Session, user_id: int, address: str) -> int:
    """Every email about the account or to its address, sent or not."""
    result = session.execute(
        delete(OutgoingMail).where(
            or_(OutgoingMail.user_id == user_id, OutgoingMail.to_address == address)
        )
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def delete_finished(session: Session, *, sent_before: datetime, failed_before: datetime) -> int:
    result = session.execute(
        delete(OutgoingMail).where(
            or_(
                (OutgoingMail.status == SENT) & (OutgoingMail.finished_at < sent_before),
                (OutgoingMail.status == FAILED) & (OutgoingMail.finished_at < failed_before),
            )
        )
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def failing(session: Session, *, limit: int) -> Sequence[OutgoingMail]:
    """Emails given up, and emails still being retried after a failed attempt, newest first."""
    stmt = (
        select(OutgoingMail)
        .where(
            or_(
                OutgoingMail.status == FAILED,
                (OutgoingMail.status == PENDING) & OutgoingMail.last_error.is_not(None),
            )
        )
        .order_by(OutgoingMail.created_at.desc(), OutgoingMail.id.desc())
        .limit(limit)
    )
    return session.scalars(stmt).all()
