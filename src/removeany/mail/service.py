"""Writing an email is part of the transaction that causes it: the email exists exactly when
the change it tells about was committed, and survives until a sender delivers it
(`mail.sender`). Flushes, never commits."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from email.utils import make_msgid

from sqlalchemy.orm import Session

from removeany.mail import repository as repo
from removeany.mail.models import OutgoingMail

# session.info keys: the emails this transaction wrote (delivered after its commit), and the
# addresses whose copies in the outbox folder go after its commit.
WRITTEN = "mail_written"
FORGOTTEN = "mail_forgotten"


def write(
    session: Session, *, to: str, subject: str, body: str, user_id: int | None, now: datetime
) -> OutgoingMail:
    """An email to send once this transaction commits; none if it rolls back. `user_id` is
    the account it is about: erasing that account deletes it."""
    mail = OutgoingMail(
        user_id=user_id,
        to_address=to,
        subject=subject,
        body=body,
        message_id=make_msgid(domain="removeany.local"),
        created_at=now,
        due_at=now,
    )
    session.add(mail)  # inserted with the transaction's other changes (many at once: one go)
    session.info.setdefault(WRITTEN, []).append(mail)
    return mail


def of_account(session: Session, user_id: int, address: str) -> Sequence[OutgoingMail]:
    """The emails still held about the account or to its address (its data export)."""
    return repo.of_user(session, user_id, address)


def forget_account(session: Session, user_id: int, address: str) -> None:
    """Erasure: the account's emails go, unsent ones included (they hold its address and
    perhaps a live link), and once this transaction commits, the copies of those sent to the
    address in the outbox folder (before the emails this transaction wrote are delivered)."""
    repo.delete_of_user(session, user_id, address)
    session.info.setdefault(FORGOTTEN, []).append(address)


def delete_expired(
    session: Session, *, now: datetime, keep_sent: timedelta, keep_failed: timedelta
) -> int:
    """What is left of sent and given-up emails, after their retention."""
    return repo.delete_finished(
        session, sent_before=now - keep_sent, failed_before=now - keep_failed
    )


def failing(session: Session, *, limit: int = 50) -> Sequence[OutgoingMail]:
    """Emails an operator should look at: given up, or failing and being retried."""
    return repo.failing(session, limit=limit)
