"""Every batches query lives here."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from removeany.batches.models import Batch
from removeany.infra import paging
from removeany.jobs.models import Job


def get_for_user(session: Session, batch_id: str, user_id: int) -> Batch | None:
    return session.scalar(select(Batch).where(Batch.id == batch_id, Batch.user_id == user_id))


def page_for_user(
    session: Session, user_id: int, *, limit: int, before: str | None = None
) -> tuple[list[Batch], Batch | None]:
    """One keyset page of the user's batches, newest first (infra.paging, as the jobs list),
    and its last batch when older ones remain. DomainError invalid_cursor when `before` is not
    one of their batches."""
    mine = select(Batch).where(Batch.user_id == user_id)
    return paging.page(
        session, mine, Batch.created_at, Batch.id, limit=limit, before=before, what="batches"
    )


def status_counts(session: Session, batch_id: str) -> dict[str, int]:
    rows = session.execute(
        select(Job.status, func.count()).where(Job.batch_id == batch_id).group_by(Job.status)
    ).all()
    return {status: int(count) for status, count in rows}


def charged(session: Session, batch_id: str) -> int:
    """Credits spent: each succeeded item captured its whole hold, which is its cost."""
    total = session.scalar(
        select(func.coalesce(func.sum(Job.cost), 0)).where(
            Job.batch_id == batch_id, Job.status == "succeeded"
        )
    )
    return int(total or 0)


def first_started(session: Session, batch_id: str) -> datetime | None:
    return session.scalar(select(func.min(Job.started_at)).where(Job.batch_id == batch_id))


def last_finished(session: Session, batch_id: str) -> datetime | None:
    return session.scalar(select(func.max(Job.finished_at)).where(Job.batch_id == batch_id))


def items(
    session: Session,
    batch_id: str,
    *,
    status: str | None = None,
    offset: int = 0,
    limit: int | None = None,
) -> Sequence[Job]:
    stmt = select(Job).where(Job.batch_id == batch_id)
    if status is not None:
        stmt = stmt.where(Job.status == status)
    stmt = stmt.order_by(Job.relative_path, Job.id).offset(offset)
    if limit is not None:
        stmt = stmt.limit(limit)
    return session.scalars(stmt).all()


def item_statuses(session: Session, batch_id: str) -> list[tuple[str, str]]:
    """Each item's id and status only: what an events stream compares, without loading rows."""
    rows = session.execute(select(Job.id, Job.status).where(Job.batch_id == batch_id)).all()
    return [(row[0], row[1]) for row in rows]


def items_by_ids(session: Session, job_ids: Sequence[str], chunk: int = 500) -> list[Job]:
    found: list[Job] = []
    for start in range(0, len(job_ids), chunk):
        part = job_ids[start : start + chunk]
        found.extend(session.scalars(select(Job).where(Job.id.in_(part)).order_by(Job.id)))
    return found


def items_changed_since(session: Session, batch_id: str, since: datetime) -> Sequence[Job]:
    """Items started or finished at or after `since` (claims and endings set those times)."""
    stmt = (
        select(Job)
        .where(
            Job.batch_id == batch_id,
            or_(Job.started_at >= since, Job.finished_at >= since),
        )
        .order_by(Job.relative_path, Job.id)
    )
    return session.scalars(stmt).all()


def queued_item_ids(session: Session, batch_id: str) -> Sequence[tuple[str, int]]:
    rows = session.execute(
        select(Job.id, Job.user_id).where(Job.batch_id == batch_id, Job.status == "queued")
    ).all()
    return [(row[0], row[1]) for row in rows]


def lock(session: Session, batch_id: str) -> Batch | None:
    return session.scalar(select(Batch).where(Batch.id == batch_id).with_for_update())
