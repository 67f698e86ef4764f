"""Every jobs query lives here."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from removeany.jobs.models import Job


def get(session: Session, job_id: str) -> Job | None:
    return session.get(Job, job_id)


def get_for_user(session: Session, job_id: str, user_id: int) -> Job | None:
    return session.scalar(select(Job).where(Job.id == job_id, Job.user_id == user_id))


def recent_for_user(session: Session, user_id: int, limit: int = 20) -> Sequence[Job]:
    stmt = select(Job).where(Job.user_id == user_id).order_by(Job.created_at.desc()).limit(limit)
    return session.scalars(stmt).all()


def claim(session: Session, job_id: str, now: datetime) -> bool:
    """Move a queued job to running; False if someone else already did (at-most-once start)."""
    result = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status == "queued")
        .values(status="running", started_at=now)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def unfinished_ids(session: Session) -> Sequence[str]:
    return session.scalars(select(Job.id).where(Job.status.in_(("queued", "running")))).all()


def requeue_running(session: Session) -> None:
    session.execute(update(Job).where(Job.status == "running").values(status="queued"))
