"""The append-only admin audit log: write and read, never update or delete.

An entry names accounts (the admin who acted, the user acted on) by id only: it outlives
their erasure, and must not carry their address then. Reading it shows each account's address
as it is now (`deleted-<id>@invalid` once erased)."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session, aliased

from removeany.accounts.models import User
from removeany.errors import DomainError
from removeany.i18n import N_, t
from removeany.moderation.models import AuditEntry


class ReasonRequired(DomainError):
    code = "reason_required"


@dataclass(frozen=True)
class Actor:
    """Who did it: an admin user (`id`; `name` is their address, never stored) or an operator
    at the command line (`name` only: `cli:<os user>`)."""

    id: int | None
    name: str


# Stored as the label of what came with the software (the built-in terms): shown translated.
BUILT_IN = N_("built in")


def shown(name: str) -> str:
    """A name from `names` as a page shows it: the built-in label in the reader's language,
    addresses and `cli:<os user>` as they are."""
    return t(BUILT_IN) if name == BUILT_IN else name


def label(actor: Actor) -> str:
    """What is stored as text beside the acting account's id: nothing for an admin account
    (its address is read from the account), the operator's `cli:<os user>` otherwise."""
    return "" if actor.id is not None else actor.name[:320]


def names(session: Session, actors: Iterable[tuple[int | None, str]]) -> list[str]:
    """Who acted, as shown, for each stored (account id, label): the account's address as it
    is now (`deleted-<id>@invalid` once erased), or the label."""
    actors = list(actors)
    ids = {actor_id for actor_id, _ in actors if actor_id is not None}
    emails: dict[int, str] = {}
    if ids:
        stmt = select(User.id, User.email).where(User.id.in_(ids))
        emails = {user_id: email for user_id, email in session.execute(stmt)}
    return [
        emails.get(actor_id, text) if actor_id is not None else text for actor_id, text in actors
    ]


def require_reason(reason: str | None) -> str:
    """A few words: three characters, or two Chinese ones ("维护", "违规": a word each)."""
    text = (reason or "").strip()
    wide = all(unicodedata.east_asian_width(char) in ("W", "F") for char in text)
    if len(text) < (2 if wide else 3):
        raise ReasonRequired("Give a reason for this action (at least a few words).")
    return text[:2000]


def record(
    session: Session,
    actor: Actor,
    action: str,
    *,
    reason: str,
    now: datetime,
    target_user_id: int | None = None,
    target: str = "",
    details: dict[str, Any] | None = None,
) -> AuditEntry:
    """`target` names what is not an account (a service, terms); an account is
    `target_user_id`."""
    entry = AuditEntry(
        created_at=now,
        actor_id=actor.id,
        actor=label(actor),
        action=action,
        target_user_id=target_user_id,
        target=target[:320],
        reason=require_reason(reason),
        details=details or {},
    )
    session.add(entry)
    session.flush()
    return entry


@dataclass(frozen=True)
class Line:
    """An entry as it is read: accounts by their address now."""

    id: int
    created_at: datetime
    actor: str
    action: str
    target_user_id: int | None
    target: str
    reason: str
    details: dict[str, Any]


def entries(
    session: Session, *, query: str = "", user_id: int | None = None, limit: int = 100
) -> list[Line]:
    acting, acted_on = aliased(User), aliased(User)
    actor = func.coalesce(acting.email, AuditEntry.actor)
    target = func.coalesce(acted_on.email, AuditEntry.target)
    stmt = (
        select(AuditEntry, actor, target)
        .outerjoin(acting, acting.id == AuditEntry.actor_id)
        .outerjoin(acted_on, acted_on.id == AuditEntry.target_user_id)
        .order_by(AuditEntry.id.desc())
        .limit(min(max(limit, 1), 1000))
    )
    if user_id is not None:
        stmt = stmt.where(AuditEntry.target_user_id == user_id)
    if query:
        like = f"%{query.lower()}%"
        stmt = stmt.where(or_(target.ilike(like), AuditEntry.action.ilike(like), actor.ilike(like)))
    return [
        Line(
            id=e.id,
            created_at=e.created_at,
            actor=actor_name or "",
            action=e.action,
            target_user_id=e.target_user_id,
            target=target_name or "",
            reason=e.reason,
            details=e.details or {},
        )
        for e, actor_name, target_name in session.execute(stmt)
    ]
