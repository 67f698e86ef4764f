"""The task every queue backend runs: claim work fairly, run the engine, settle the job.

A queue message is a wake-up call, not an assignment: `process_job` claims whichever queued
job is fairest to run next (see `repository.claim_next`), so one user's 5,000-item batch cannot
starve others even though its messages sit ahead of theirs in the broker. Each claim is a new
*attempt*; a worker beats a heartbeat while it runs, and a job whose heartbeat is older than the
lease belongs to a lost worker: the sweeper puts it back on the queue, and only the latest
attempt may settle it, so a job is charged at most once however often it is delivered.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import column, select, table
from sqlalchemy.orm import Session

from removeany.engine.errors import ImageError, ModelError, OptionError
from removeany.engine.io import decode_image, source_encoding
from removeany.engine.watermark import SharedMark
from removeany.infra.storage import (
    RetryingStorage,
    Storage,
    StorageMisconfigured,
    StorageUnavailable,
)
from removeany.jobs import processors, service, shared_marks
from removeany.jobs import repository as repo

if TYPE_CHECKING:
    from removeany.context import Context

log = logging.getLogger(__name__)

INTERNAL_ERROR = "Something went wrong on our side. You were not charged; please try again later."
# Jobs one wake-up runs before handing over to a fresh message: keeps tasks short so workers
# shut down promptly and broker redeliveries stay rare.
DRAIN_LIMIT = 10

_batches = table("batches", column("id"), column("cancelled_at"))


@dataclass(frozen=True)
class Claimed:
    id: str
    attempt: int
    service: str
    options: dict[str, Any]
    input_key: str
    batch_id: str | None
    user_id: int


def process_job(ctx: Context, job_id: str | None = None) -> None:
    """Run queued work until none is eligible (or DRAIN_LIMIT jobs ran, then hand over).
    `job_id` is the job whose submission sent this wake-up; it is only used in logs."""
    log.debug("woken for job %s", job_id)
    sweep_stale(ctx)
    for _ in range(DRAIN_LIMIT):
        if ctx.stopping.is_set():
            return
        claimed = claim_next(ctx)
        if claimed is None:
            return
        run_claimed(ctx, claimed)
    if ctx.queue is not None and not ctx.stopping.is_set():
        with ctx.db.transaction() as session:
            more = repo.has_queued(session)
        if more:
            ctx.queue.enqueue("next")


def claim_next(ctx: Context) -> Claimed | None:
    with ctx.db.transaction() as session:
        job = repo.claim_next(
            session, ctx.now(), max_running_per_user=ctx.settings.max_running_jobs_per_user
        )
        if job is None:
            return None
        return Claimed(
            job.id,
            job.attempts,
            job.service,
            dict(job.options),
            job.input_key,
            job.batch_id,
            job.user_id,
        )


class _CalledOff(Exception):
    """The job is no longer this attempt's (cancelled, settled or re-queued elsewhere)."""


def run_claimed(ctx: Context, claimed: Claimed) -> None:
    # A bucket outage is waited out (with backoff, storage_retry_seconds) while the job stays
    # running and its heartbeat keeps its lease; the engine runs once however long the wait.
    # The wait ends early when the heartbeat finds the job no longer this attempt's (it looks
    # every job_check_seconds); the engine is then not started and no result is stored.
    heartbeat = _Heartbeat(ctx, claimed)
    files = RetryingStorage(
        ctx.storage,
        within=ctx.settings.storage_retry_seconds,
        stopping=ctx.stopping,
        lost=heartbeat.lost,
    )
    with heartbeat:
        try:
            original = files.get(claimed.input_key)
            _still_ours(heartbeat)
            image = decode_image(
                original,
                max_bytes=ctx.settings.max_upload_bytes,
                max_pixels=ctx.settings.max_upload_pixels,
            )
            output = processors.run(
                claimed.service,
                image,
                claimed.options,
                ctx.model_dir,
                models=ctx.service_models,
                source=source_encoding(original),
                shared_mark=_shared_mark(ctx, files, claimed, image.size),
            )
            # A retried PUT rewrites the same whole object (S3 stores a PUT whole or not).
            result_key = service.result_key(claimed.id, claimed.attempt)
            _still_ours(heartbeat)
            files.put(result_key, output.data)
        except _CalledOff:
            log.warning("job %s attempt %d was settled meanwhile; stopped", *_ids(claimed))
            return
        except (ImageError, OptionError) as exc:
            _fail(ctx, claimed, exc.code, exc.message)
            return
        except ModelError as exc:
            log.error("model problem while processing %s: %s", claimed.id, exc.message)
            _fail(ctx, claimed, "service_unavailable", INTERNAL_ERROR)
            return
        except StorageMisconfigured as exc:
            log.error("job %s: file storage refuses this server: %s", claimed.id, exc.reason)
            _fail(ctx, claimed, exc.code, exc.message)
            return
        except StorageUnavailable as exc:
            if heartbeat.lost.is_set():
                log.warning(
                    "job %s attempt %d was settled meanwhile; stopped waiting for storage",
                    *_ids(claimed),
                )
                return
            if ctx.stopping.is_set():
                _give_back(ctx, claimed)
                return
            log.error("job %s: file storage still unavailable, giving up", claimed.id)
            _fail(ctx, claimed, exc.code, exc.message)
            return
        except Exception:
            log.exception("job %s crashed", claimed.id)
            _fail(ctx, claimed, "processing_failed", INTERNAL_ERROR)
            return
    with ctx.db.transaction() as session:
        repo.lock_owner(session, claimed.user_id)  # the owner before the job, as everywhere
        job = repo.running_attempt(session, claimed.id, claimed.attempt)
        if job is not None:
            service.succeed(
                session,
                job,
                result_key=result_key,
                media_type=output.media_type,
                width=output.width,
                height=output.height,
                detected_type=output.detected_type,
                foreground=output.foreground,
                now=ctx.now(),
            )
    if job is None:
        log.warning("job %s attempt %d was settled meanwhile; result discarded", *_ids(claimed))
        _discard(ctx, result_key)


def _still_ours(heartbeat: _Heartbeat) -> None:
    if heartbeat.lost.is_set():
        raise _CalledOff


def _discard(ctx: Context, result_key: str) -> None:
    """Delete an attempt's unwanted result, outside any transaction (no row stays locked
    while the store answers). If the store is down, retention deletes it with its job."""
    try:
        ctx.storage.delete(result_key)
    except StorageUnavailable:
        log.warning("could not delete discarded result %s; retention will", result_key)


def _shared_mark(
    ctx: Context, files: Storage, claimed: Claimed, size: tuple[int, int]
) -> SharedMark | None:
    """For an item of a watermark batch, the mark the batch's photos share (if they do). A
    failed estimate is logged and the item is processed on its own; a store that stays
    unavailable fails the item like its own original would."""
    if claimed.service != "remove_watermark" or claimed.batch_id is None:
        return None
    try:
        return shared_marks.for_item(ctx, files, claimed.batch_id, size, claimed.options)
    except StorageUnavailable:
        raise
    except Exception:
        log.exception("batch %s: shared watermark estimate failed", claimed.batch_id)
        return None


def _give_back(ctx: Context, claimed: Claimed) -> None:
    """This process is shutting down while the store is unavailable: the job goes back on
    the queue, untouched and uncharged, with a wake-up for the next worker (embedded
    `serve`, whose own queue is closing, runs it again when it starts)."""
    with ctx.db.transaction() as session:
        requeued = repo.requeue_attempt(session, claimed.id, claimed.attempt)
    if requeued:
        log.warning("job %s: stopping while storage is unavailable; re-queued", claimed.id)
        if ctx.queue is not None:
            ctx.queue.enqueue(claimed.id)


def _fail(ctx: Context, claimed: Claimed, code: str, message: str) -> None:
    with ctx.db.transaction() as session:
        repo.lock_owner(session, claimed.user_id)
        job = repo.running_attempt(session, claimed.id, claimed.attempt)
        if job is None:
            log.warning("job %s attempt %d lost its lease; failure discarded", *_ids(claimed))
            return
        service.fail(session, job, code=code, message=message, now=ctx.now())


def _ids(claimed: Claimed) -> tuple[str, int]:
    return claimed.id, claimed.attempt


class _Heartbeat:
    """Beats every third of the lease while a job runs, so a slow job keeps its lease, and
    in between looks every `job_check_seconds` whether the job is still this attempt's. A
    look or a beat that finds it no longer is (cancelled, settled, re-queued) sets `lost`
    and stops."""

    def __init__(self, ctx: Context, claimed: Claimed):
        self._ctx = ctx
        self._claimed = claimed
        self._stop = threading.Event()
        self.lost = threading.Event()
        self._thread = threading.Thread(target=self._run, name="job-heartbeat", daemon=True)

    def __enter__(self) -> None:
        self._thread.start()

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        beat_every = self._ctx.settings.job_lease_seconds / 3
        look_every = min(self._ctx.settings.job_check_seconds, beat_every)
        beaten = time.monotonic()
        job_id, attempt = _ids(self._claimed)
        while not self._stop.wait(look_every):
            # Half a look early rather than a look late: the lease is three beats long.
            beat = time.monotonic() - beaten >= beat_every - look_every / 2
            try:
                with self._ctx.db.transaction() as session:
                    if beat:
                        owned = repo.heartbeat(session, job_id, attempt, self._ctx.now())
                    else:
                        owned = repo.owns(session, job_id, attempt)
            except Exception:
                if beat:  # a look that fails is tried again in seconds: not logged each time
                    log.exception("heartbeat for job %s failed", job_id)
                continue
            if beat:
                beaten = time.monotonic()
            if not owned:
                self.lost.set()
                return


def sweep_stale(ctx: Context) -> int:
    """Put running jobs whose worker vanished (heartbeat older than the lease) back on the
    queue, or cancel them if their batch was cancelled meanwhile. Safe to run anywhere, any
    number of times at once: every change is a conditional UPDATE."""
    now = ctx.now()
    cutoff = now - timedelta(seconds=ctx.settings.job_lease_seconds)
    requeued = 0
    with ctx.db.transaction() as session:
        stale = [
            (j.id, j.attempts, j.user_id, j.batch_id) for j in repo.stale_running(session, cutoff)
        ]
    for job_id, attempt, user_id, batch_id in stale:
        with ctx.db.transaction() as session:
            if not repo.requeue_if_stale(session, job_id, attempt, cutoff):
                continue
            if batch_id is not None and _batch_cancelled(session, batch_id):
                cancel_queued(session, job_id, user_id, now)
                continue
            requeued += 1
            log.warning("job %s: worker lost during attempt %d; re-queued", job_id, attempt)
    if requeued and ctx.queue is not None:
        for _ in range(requeued):
            ctx.queue.enqueue("requeued")
    return requeued


def _batch_cancelled(session: Session, batch_id: str) -> bool:
    cancelled = session.scalar(select(_batches.c.cancelled_at).where(_batches.c.id == batch_id))
    return cancelled is not None


def cancel_queued(session: Session, job_id: str, user_id: int, now: datetime) -> bool:
    """A cancelled batch's item: queued → cancelled and its hold released; False if a worker
    claimed it first."""
    return service.cancel(
        session,
        job_id,
        user_id,
        now,
        code="cancelled",
        message="The batch was cancelled before this item started. You were not charged for it.",
        queued_only=True,
    )


def resume_unfinished(ctx: Context) -> None:
    """Embedded deployments, after a restart: this process was the only worker, so jobs that
    were mid-run go back on the queue at once; then wake the workers."""
    with ctx.db.transaction() as session:
        repo.requeue_running(session)
        ids = list(repo.unfinished_ids(session))
    assert ctx.queue is not None
    for job_id in ids[: max(1, ctx.settings.inline_workers)]:
        ctx.queue.enqueue(job_id)


def wake(ctx: Context) -> None:
    """Periodic insurance for lost wake-ups: if work is queued, send one more message."""
    with ctx.db.transaction() as session:
        more = repo.has_queued(session)
    if more and ctx.queue is not None:
        ctx.queue.enqueue("sweeper")
