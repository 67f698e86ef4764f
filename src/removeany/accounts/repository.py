"""Every accounts query lives here."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from removeany.accounts.models import ApiKey, EmailReservation, RecoveryCode, User, WebSession


def user_by_email(session: Session, email: str) -> User | None:
    return session.scalar(select(User).where(User.email == email))


def user_by_id(session: Session, user_id: int) -> User | None:
    return session.get(User, user_id)


def session_by_token_hash(session: Session, token_hash: str) -> WebSession | None:
    return session.scalar(select(WebSession).where(WebSession.token_hash == token_hash))


def rebind_sessions(session: Session, user_id: int, before: str, after: str) -> None:
    """Sessions bound to the fingerprint `before` are bound to `after` instead."""
    session.execute(
        update(WebSession)
        .where(WebSession.user_id == user_id, WebSession.password_fingerprint == before)
        .values(password_fingerprint=after)
    )


def api_key_by_hash(session: Session, key_hash: str) -> ApiKey | None:
    return session.scalar(select(ApiKey).where(ApiKey.key_hash == key_hash))


def api_keys_of(session: Session, user_id: int) -> Sequence[ApiKey]:
    stmt = select(ApiKey).where(ApiKey.user_id == user_id).order_by(ApiKey.id)
    return session.scalars(stmt).all()


def api_key_of(session: Session, user_id: int, key_id: int) -> ApiKey | None:
    return session.scalar(select(ApiKey).where(ApiKey.user_id == user_id, ApiKey.id == key_id))


def delete_recovery_codes_since(session: Session, user_id: int, since: datetime) -> int:
    """Forget the recovery codes made at or after `since`; returns how many."""
    result = session.execute(
        delete(RecoveryCode).where(
            RecoveryCode.user_id == user_id, RecoveryCode.created_at >= since
        )
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def reserve_address(
    session: Session, user_id: int, address: str, *, expires_at: datetime, now: datetime
) -> None:
    """Keep `address` for `user_id` until `expires_at` (a later move away renews it)."""
    session.execute(
        delete(EmailReservation).where(
            EmailReservation.address == address,
            (EmailReservation.user_id == user_id) | (EmailReservation.expires_at <= now),
        )
    )
    session.add(EmailReservation(address=address, user_id=user_id, expires_at=expires_at))
    session.flush()


def reservation_of(session: Session, address: str, *, now: datetime) -> EmailReservation | None:
    """The unexpired reservation of `address`, if any."""
    return session.scalar(
        select(EmailReservation).where(
            EmailReservation.address == address, EmailReservation.expires_at > now
        )
    )


def release_address(session: Session, user_id: int, address: str) -> None:
    session.execute(
        delete(EmailReservation).where(
            EmailReservation.address == address, EmailReservation.user_id == user_id
        )
    )
