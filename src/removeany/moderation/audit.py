"""The append-only admin audit log: write and read, never update or delete."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from removeany.errors import DomainError
from removeany.moderation.models import AuditEntry


class ReasonRequired(DomainError):
    code = "reason_required"


@dataclass(frozen=True)
class Actor:
    """Who did it: an admin user (id + email) or an operator at the command line."""

    id: int | None
    name: str


def require_reason(reason: str | None) -> str:
    text = (reason or "").strip()
    if len(text) < 3:
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
    entry = AuditEntry(
        created_at=now,
        actor_id=actor.id,
        actor=actor.name[:320],
        action=action,
        target_user_id=target_user_id,
        target=target[:320],
        reason=require_reason(reason),
        details=details or {},
    )
    session.add(entry)
    session.flush()
    return entry


def entries(
    session: Session, *, query: str = "", user_id: int | None = None, limit: int = 100
) -> Sequence[AuditEntry]:
    stmt = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(min(max(limit, 1), 1000))
    if user_id is not None:
        stmt = stmt.where(AuditEntry.target_user_id == user_id)
    if query:
        like = f"%{query.lower()}%"
        stmt = stmt.where(
            or_(
                AuditEntry.target.ilike(like),
                AuditEntry.action.ilike(like),
                AuditEntry.actor.ilike(like),
            )
        )
    return session.scalars(stmt).all()
