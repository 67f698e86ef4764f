"""Every jobs query lives here."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import ColumnElement, func, or_, select, update
from sqlalchemy.orm import Session

from removeany.accounts.models import User
from removeany.infra import paging
from removeany.jobs.models import Job
from removeany.moderation.models import ServiceStatus

# The name an operator suspends batch processing by (moderation.service.SERVICE_NAMES): it
# stops every batch's items, whatever their service.
BATCH = "batch"


def get(session: Session, job_id: str) -> Job | None:
    return session.get(Job, job_id)


def get_for_user(session: Session, job_id: str, user_id: int) -> Job | None:
    return session.scalar(select(Job).where(Job.id == job_id, Job.user_id == user_id))


def by_idempotency_key(session: Session, user_id: int, key: str) -> Job | None:
    return session.scalar(select(Job).where(Job.user_id == user_id, Job.idempotency_key == key))


def for_user_by_ids(session: Session, user_id: int, ids: Sequence[str]) -> Sequence[Job]:
    """The user's jobs among `ids` (others' ids are simply not found)."""
    return session.scalars(select(Job).where(Job.user_id == user_id, Job.id.in_(ids))).all()


def recent_for_user(session: Session, user_id: int, limit: int = 20) -> Sequence[Job]:
    stmt = select(Job).where(Job.user_id == user_id).order_by(Job.created_at.desc()).limit(limit)
    return session.scalars(stmt).all()


def page_for_user(
    session: Session, user_id: int, *, limit: int, before: str | None = None
) -> tuple[list[Job], Job | None]:
    """One keyset page of the user's jobs, newest first (infra.paging), and its last job when
    older ones remain. DomainError invalid_cursor when `before` is not one of their jobs."""
    mine = select(Job).where(Job.user_id == user_id)
    return paging.page(
        session, mine, Job.created_at, Job.id, limit=limit, before=before, what="jobs"
    )


def claim(session: Session, job_id: str, now: datetime) -> bool:
    """Move a queued job to running; False if someone else already did (at-most-once start).
    Each claim is a new attempt: only the holder of the latest attempt may settle the job."""
    result = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status == "queued")
        .values(status="running", started_at=now, heartbeat_at=now, attempts=Job.attempts + 1)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def claim_next(session: Session, now: datetime, *, max_running_per_user: int) -> Job | None:
    """Fair scheduling: claim the oldest queued job of the user who has the fewest running jobs
    and was served least recently, skipping users already at their concurrency cap.

    Claims for one user are serialised by a row lock on the user (PostgreSQL; SQLite serialises
    every write transaction), so the cap holds with many workers. A user whose row is locked
    (say, by a batch submission in progress) is skipped rather than waited for."""
    queued = session.execute(
        select(Job.user_id, func.min(Job.created_at))
        .where(Job.status == "queued")
        .group_by(Job.user_id)
    ).all()
    if not queued:
        return None
    user_ids = [row[0] for row in queued]
    oldest = {row[0]: row[1] for row in queued}
    running = dict(
        session.execute(
            select(Job.user_id, func.count())
            .where(Job.status == "running", Job.user_id.in_(user_ids))
            .group_by(Job.user_id)
        ).all()
    )
    last_served = dict(
        session.execute(
            select(Job.user_id, func.max(Job.started_at))
            .where(Job.user_id.in_(user_ids), Job.started_at.is_not(None))
            .group_by(Job.user_id)
        ).all()
    )
    never = datetime.min.replace(tzinfo=now.tzinfo)
    runnable = _not_stopped(session)

    def turn(user_id: int) -> tuple[int, datetime, datetime]:
        served = last_served.get(user_id)
        return (
            running.get(user_id, 0),
            _aware(served, now) if served is not None else never,
            _aware(oldest[user_id], now),
        )

    for user_id in sorted(user_ids, key=turn):
        if running.get(user_id, 0) >= max_running_per_user:
            continue
        # A restricted, banned or locked user's jobs never start (the change cancels them too).
        locked = session.scalar(
            select(User.id)
            .where(User.id == user_id, User.status == "active", User.locked_at.is_(None))
            .with_for_update(skip_locked=True)
        )
        if locked is None:
            continue
        busy = session.scalar(
            select(func.count()).where(Job.user_id == user_id, Job.status == "running")
        )
        if (busy or 0) >= max_running_per_user:
            continue
        job_id = session.scalar(
            select(Job.id)
            .where(Job.user_id == user_id, Job.status == "queued", *runnable)
            .order_by(Job.created_at, Job.id)
            .limit(1)
        )
        if job_id is not None and claim(session, job_id, now):
            job = session.get(Job, job_id)
            if job is not None:
                session.refresh(job)
            return job
    return None


def _not_stopped(session: Session) -> list[ColumnElement[bool]]:
    """Conditions that leave out jobs of a service an operator suspended or disabled: the
    change cancels those queued then, and the sweep any that slipped in around it."""
    stopped = set(
        session.scalars(select(ServiceStatus.service).where(ServiceStatus.status != "active"))
    )
    conditions: list[ColumnElement[bool]] = []
    if stopped - {BATCH}:
        conditions.append(Job.service.not_in(stopped - {BATCH}))
    if BATCH in stopped:
        conditions.append(Job.batch_id.is_(None))
    return conditions


def queued_of_service(session: Session, service: str) -> Sequence[tuple[int, str]]:
    """(user id, job id) of every queued job of `service` (`batch`: every batch item)."""
    which = Job.batch_id.is_not(None) if service == BATCH else Job.service == service
    rows = session.execute(
        select(Job.user_id, Job.id).where(Job.status == "queued", which).order_by(Job.user_id)
    )
    return [(user_id, job_id) for user_id, job_id in rows]


def _aware(value: datetime, now: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=now.tzinfo)


def running_attempt(session: Session, job_id: str, attempt: int) -> Job | None:
    """The job, locked, if it is still running under this attempt; None if a lease expired and
    another attempt took it over or it was settled already (settle at most once)."""
    return session.scalar(
        select(Job)
        .where(Job.id == job_id, Job.status == "running", Job.attempts == attempt)
        .with_for_update()
    )


def lock_owner(session: Session, user_id: int) -> None:
    """Row lock on the user before any of their jobs (PostgreSQL; SQLite serialises every
    write transaction anyway): the order claims and the ledger take their locks in, so a
    change to a user's jobs never deadlocks with a worker claiming one of them."""
    session.execute(select(User.id).where(User.id == user_id).with_for_update())


def queued_ids_of(session: Session, user_id: int) -> Sequence[str]:
    return session.scalars(
        select(Job.id).where(Job.user_id == user_id, Job.status == "queued")
    ).all()


def suspended_owners_of_queued(session: Session) -> Sequence[int]:
    """Users who are no longer active, or locked, yet have jobs waiting (submitted as they
    were suspended or locked)."""
    return session.scalars(
        select(Job.user_id)
        .join(User, User.id == Job.user_id)
        .where(Job.status == "queued", or_(User.status != "active", User.locked_at.is_not(None)))
        .distinct()
    ).all()


def cancel_unsettled(
    session: Session,
    job_id: str,
    now: datetime,
    *,
    code: str,
    message: str,
    queued_only: bool = False,
) -> bool:
    """Queued (or, unless ``queued_only``, running) → cancelled; False if it was settled or
    started first. A worker still running it then finds no running attempt to settle, and
    discards its result."""
    unsettled = ("queued",) if queued_only else ("queued", "running")
    result = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status.in_(unsettled))
        .values(status="cancelled", finished_at=now, error_code=code, error_message=message)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def owns(session: Session, job_id: str, attempt: int) -> bool:
    """Whether the job is still running under this attempt (a read: no heartbeat written)."""
    found = session.scalar(
        select(Job.id).where(Job.id == job_id, Job.status == "running", Job.attempts == attempt)
    )
    return found is not None


def heartbeat(session: Session, job_id: str, attempt: int, now: datetime) -> bool:
    result = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status == "running", Job.attempts == attempt)
        .values(heartbeat_at=now)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def stale_running(session: Session, cutoff: datetime) -> Sequence[Job]:
    """Running jobs whose worker stopped beating before `cutoff` (a lost worker)."""
    return session.scalars(
        select(Job).where(
            Job.status == "running",
            func.coalesce(Job.heartbeat_at, Job.started_at) < cutoff,
        )
    ).all()


def requeue_if_stale(session: Session, job_id: str, attempt: int, cutoff: datetime) -> bool:
    result = session.execute(
        update(Job)
        .where(
            Job.id == job_id,
            Job.status == "running",
            Job.attempts == attempt,
            func.coalesce(Job.heartbeat_at, Job.started_at) < cutoff,
        )
        .values(status="queued", heartbeat_at=None)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def requeue_attempt(session: Session, job_id: str, attempt: int) -> bool:
    """Running under this attempt → queued (its worker gives it back); False if it was
    settled, cancelled or taken over meanwhile."""
    result = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status == "running", Job.attempts == attempt)
        .values(status="queued", heartbeat_at=None)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def has_queued(session: Session) -> bool:
    return session.scalar(select(Job.id).where(Job.status == "queued").limit(1)) is not None


def unfinished_ids(session: Session) -> Sequence[str]:
    return session.scalars(select(Job.id).where(Job.status.in_(("queued", "running")))).all()


def requeue_running(session: Session) -> None:
    session.execute(update(Job).where(Job.status == "running").values(status="queued"))


def batch_input_keys(
    session: Session, batch_id: str, width: int, height: int, limit: int
) -> Sequence[str]:
    """Originals of a batch's items of one size, in a fixed order (by path within the batch),
    so every worker that reads them picks the same ones."""
    return session.scalars(
        select(Job.input_key)
        .where(Job.batch_id == batch_id, Job.input_width == width, Job.input_height == height)
        .order_by(Job.relative_path, Job.id)
        .limit(limit)
    ).all()
