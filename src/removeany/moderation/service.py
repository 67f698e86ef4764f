"""Admin actions on accounts, credits, services and announcements. Every action needs a reason
and writes an audit entry in the same transaction. Flushes, never commits."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.orm import Session

from removeany.accounts import repository as accounts_repo
from removeany.accounts import security
from removeany.accounts.models import User
from removeany.credits import service as ledger
from removeany.credits.models import CreditLot
from removeany.errors import Conflict, DomainError, NotFound
from removeany.i18n import ERROR_FORMS, N_
from removeany.jobs import service as jobs
from removeany.moderation import audit
from removeany.moderation.audit import Actor
from removeany.moderation.models import Announcement, ServiceStatus
from removeany.privacy import service as privacy

STATUSES = ("active", "disabled", "suspended")
USER_STATUSES = ("active", "restricted", "banned", "deleted")


def find_user(session: Session, ref: str | int) -> User:
    """By id, or by email address."""
    user: User | None
    if isinstance(ref, int) or str(ref).isdigit():
        user = accounts_repo.user_by_id(session, int(ref))
    else:
        user = accounts_repo.user_by_email(session, str(ref).strip().lower())
    if user is None:
        raise NotFound(f"No user {ref}.", code="user_not_found")
    return user


def search_users(
    session: Session, query: str = "", *, status: str = "", limit: int = 50
) -> Sequence[User]:
    stmt = select(User).order_by(User.id).limit(min(max(limit, 1), 500))
    q = query.strip().lower()
    if q:
        conditions: list[ColumnElement[bool]] = [User.email.ilike(f"%{q}%")]
        if q.isdigit():
            conditions.append(User.id == int(q))
        stmt = stmt.where(or_(*conditions))
    if status:
        if status not in USER_STATUSES:
            # A mistyped filter would otherwise look like "no such users".
            raise DomainError(
                f"status must be one of {', '.join(USER_STATUSES)}.", code="invalid_status"
            )
        stmt = stmt.where(User.status == status)
    return session.scalars(stmt).all()


def _not_deleted(user: User) -> None:
    if user.status == "deleted":
        raise Conflict("This account was deleted.", code="user_deleted")


def _set_status(
    session: Session,
    actor: Actor,
    user: User,
    status: str,
    action: str,
    reason: str,
    now: datetime,
) -> User:
    _not_deleted(user)
    reason = audit.require_reason(reason)
    before = user.status
    user.status = status
    user.status_reason = reason if status != "active" else None
    audit.record(
        session,
        actor,
        action,
        reason=reason,
        now=now,
        target_user_id=user.id,
        details={"from": before, "to": status},
    )
    return user


def restrict(session: Session, actor: Actor, user: User, reason: str, *, now: datetime) -> User:
    """The account may sign in, see and export its data, but not process images: its queued
    jobs are cancelled without charge."""
    _set_status(session, actor, user, "restricted", "user.restrict", reason, now)
    jobs.cancel_queued_of(session, user.id, now)
    return user


def ban(session: Session, actor: Actor, user: User, reason: str, *, now: datetime) -> User:
    """No sign-in; every session and API key is revoked now, and queued jobs cancelled."""
    if actor.id == user.id:
        raise Conflict("You cannot ban yourself.", code="cannot_target_self")
    _set_status(session, actor, user, "banned", "user.ban", reason, now)
    jobs.cancel_queued_of(session, user.id, now)
    security.revoke_sessions(session, user.id, now=now)
    security.revoke_api_keys(session, user.id, now=now)
    session.flush()
    return user


def reinstate(session: Session, actor: Actor, user: User, reason: str, *, now: datetime) -> User:
    """Lift a restriction or ban (revoked sessions and keys stay revoked)."""
    return _set_status(session, actor, user, "active", "user.reinstate", reason, now)


def delete_user(
    session: Session, actor: Actor, user: User, reason: str, *, now: datetime
) -> list[str]:
    """Erase the account (images, personal data); the audit entry names it by id only."""
    if actor.id == user.id:
        raise Conflict("Delete your own account from your account page.", code="cannot_target_self")
    _not_deleted(user)
    audit.record(
        session,
        actor,
        "user.delete",
        reason=reason,
        now=now,
        target_user_id=user.id,
    )
    return privacy.erase_account(session, user, now=now)


def grant_credits(
    session: Session,
    actor: Actor,
    user: User,
    amount: int,
    reason: str,
    *,
    now: datetime,
    days: int,
) -> CreditLot:
    """A lot of `amount` credits that expires after `days` (callers pass the operator's
    default, REMOVEANY_ADMIN_CREDIT_DAYS, when the admin names none)."""
    _not_deleted(user)
    if amount <= 0 or amount > 1_000_000:
        raise DomainError("Grant between 1 and 1,000,000 credits.", code="invalid_amount")
    if not 1 <= days <= 3650:
        raise DomainError("Granted credits last between 1 and 3650 days.", code="invalid_days")
    reason = audit.require_reason(reason)
    entry = audit.record(
        session,
        actor,
        "credits.grant",
        reason=reason,
        now=now,
        target_user_id=user.id,
        details={"amount": amount, "days": days},
    )
    lot = ledger.grant(
        session,
        user.id,
        amount,
        source="admin",
        now=now,
        expires_at=now + timedelta(days=days),
        reference=f"admin:{entry.id}",
        idempotency_key=f"admin-grant:{entry.id}",
    )
    assert lot is not None  # the key is this new audit entry's
    return lot


def revoke_credits(
    session: Session, actor: Actor, user: User, amount: int, reason: str, *, now: datetime
) -> int:
    _not_deleted(user)
    if amount <= 0:
        raise DomainError("Revoke at least 1 credit.", code="invalid_amount")
    reason = audit.require_reason(reason)
    available = ledger.balance(session, user.id, now).available
    if amount > available:
        raise Conflict(
            f"The user has {available} unspent credits; you cannot revoke {amount}.",
            code="insufficient_credits",
        )
    entry = audit.record(
        session,
        actor,
        "credits.revoke",
        reason=reason,
        now=now,
        target_user_id=user.id,
        details={"amount": amount},
    )
    return ledger.revoke(session, user.id, amount, reference=f"admin:{entry.id}", now=now)


# --- services --------------------------------------------------------------------------------


def service_statuses(session: Session) -> Sequence[ServiceStatus]:
    return session.scalars(select(ServiceStatus).order_by(ServiceStatus.service)).all()


def service_status(session: Session, service: str) -> ServiceStatus | None:
    return session.get(ServiceStatus, service)


# What an operator can suspend or disable, with the names people see: each processing service,
# and batch processing as a whole (which then refuses new batches of any service).
SERVICE_NAMES = {
    "remove_background": N_("Background removal"),
    "portrait": N_("Portrait cutout"),
    "id_photo": N_("ID photos"),
    "remove_watermark": N_("Watermark removal"),
    "batch": N_("Batch processing"),
}
CONTROLLED_SERVICES = tuple(SERVICE_NAMES)


def set_service_status(
    session: Session,
    actor: Actor,
    service: str,
    status: str,
    message: str,
    reason: str,
    *,
    now: datetime,
) -> ServiceStatus:
    if status not in STATUSES:
        raise DomainError(f"status must be one of {', '.join(STATUSES)}.", code="invalid_status")
    service = service.strip()
    if service not in CONTROLLED_SERVICES:
        raise DomainError(
            f"There is no service {service!r}; use one of {', '.join(CONTROLLED_SERVICES)}.",
            code="invalid_service",
        )
    if status != "active" and not message.strip():
        raise DomainError(
            "Write the message users will see (what and until when).", code="message_required"
        )
    row = session.get(ServiceStatus, service)
    before = row.status if row is not None else "active"
    if row is None:
        row = ServiceStatus(service=service)
        session.add(row)
    row.status = status
    row.message = message.strip()[:2000]
    row.updated_at = now
    row.updated_by_id, row.updated_by = actor.id, audit.label(actor)
    details: dict[str, object] = {
        "service": service,
        "from": before,
        "to": status,
        "message": row.message,
    }
    if status != "active":
        details["cancelled_jobs"] = stop_waiting_work(session, row, now=now)
    audit.record(
        session,
        actor,
        f"service.{status}",
        reason=reason,
        now=now,
        target=f"service {service}",
        details=details,
    )
    return row


class ServiceUnavailable(DomainError):
    status_code = 503


def unavailable(row: ServiceStatus) -> ServiceUnavailable:
    """What a user is told about a service that is not active: a refused submission, or a
    queued job the change cancelled."""
    code = "service_suspended" if row.status == "suspended" else "service_disabled"
    return ServiceUnavailable(ERROR_FORMS[code].format(message=row.message), code=code)


def require_service_available(session: Session, service: str) -> None:
    row = session.get(ServiceStatus, service)
    if row is not None and row.status != "active":
        raise unavailable(row)


def stop_waiting_work(session: Session, row: ServiceStatus, *, now: datetime) -> int:
    """Cancel, without charge, the queued jobs of a service that is not active (what has
    started finishes); returns how many. The workers never claim such jobs either."""
    error = unavailable(row)
    return jobs.cancel_queued_of_service(
        session, row.service, now, code=error.code, message=error.message
    )


def stop_work_of_stopped_services(session: Session, *, now: datetime) -> int:
    """For the sweep: jobs submitted as their service was suspended or disabled (the status
    change did not see them yet)."""
    stopped = session.scalars(select(ServiceStatus).where(ServiceStatus.status != "active")).all()
    return sum(stop_waiting_work(session, row, now=now) for row in stopped)


# --- announcements ---------------------------------------------------------------------------


def announce(
    session: Session,
    actor: Actor,
    message: str,
    *,
    now: datetime,
    level: str = "info",
    ends_at: datetime | None = None,
) -> Announcement:
    text = message.strip()
    if not text or len(text) > 2000:
        raise DomainError(
            "Write the announcement (up to 2,000 characters).", code="invalid_request"
        )
    if level not in ("info", "warning"):
        raise DomainError("level must be info or warning.", code="invalid_request")
    row = Announcement(
        message=text,
        level=level,
        starts_at=now,
        ends_at=ends_at,
        created_at=now,
        created_by_id=actor.id,
        created_by=audit.label(actor),
    )
    session.add(row)
    session.flush()
    audit.record(
        session,
        actor,
        "announcement.create",
        reason=text[:200],
        now=now,
        target=f"announcement {row.id}",
        details={"id": row.id, "level": level},
    )
    return row


def withdraw(session: Session, actor: Actor, announcement_id: int, *, now: datetime) -> None:
    row = session.get(Announcement, announcement_id)
    if row is None:
        raise NotFound("No such announcement.")
    if row.withdrawn_at is None:
        row.withdrawn_at = now
        audit.record(
            session,
            actor,
            "announcement.withdraw",
            reason="withdrawn",
            now=now,
            target=f"announcement {row.id}",
            details={"id": row.id},
        )
    session.flush()


def current_announcements(session: Session, now: datetime) -> Sequence[Announcement]:
    stmt = (
        select(Announcement)
        .where(
            Announcement.withdrawn_at.is_(None),
            Announcement.starts_at <= now,
            or_(Announcement.ends_at.is_(None), Announcement.ends_at > now),
        )
        .order_by(Announcement.id.desc())
        .limit(5)
    )
    return session.scalars(stmt).all()
