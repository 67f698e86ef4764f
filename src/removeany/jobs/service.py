"""Submitting jobs and settling them. Flushes, never commits: callers own the transaction."""

from __future__ import annotations

import hashlib
import json
import re
import time
import unicodedata
import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from removeany.accounts.models import User
from removeany.accounts.service import require_verified
from removeany.catalog.models import Price
from removeany.catalog.prices import price_for, price_of_result
from removeany.credits import free
from removeany.credits import service as ledger
from removeany.errors import Conflict, NotFound
from removeany.infra.db import Database
from removeany.infra.storage import Storage
from removeany.jobs import processors
from removeany.jobs import repository as repo
from removeany.jobs.models import Job

_PATH_SEPARATORS = re.compile(r"[\\/]")


def visible_name(raw: str) -> str:
    """A file or folder name as it may be kept and shown: without control characters or
    invisible formatting ones (Unicode category C: a right-to-left override would show
    `photo<U+202E>gnp.exe` as `photoexe.png`), surrounding spaces stripped. Single uploads
    and batches (each part of a path) keep names by this one rule."""
    return "".join(c for c in raw if not unicodedata.category(c).startswith("C")).strip()


def upload_name(raw: str) -> str:
    """An uploaded file's name as it is kept and shown: its last path component (clients
    send paths such as `C:\\Users\\me\\photo.jpg` or `../photo.png`), by `visible_name`,
    at most 255 characters; "image" when none is left. It names results in ZIPs and
    downloads, so it must not climb out of a folder there."""
    name = visible_name(_PATH_SEPARATORS.split(raw)[-1])
    return name[:255] if name not in ("", ".", "..") else "image"


def new_job_id() -> str:
    return uuid.uuid4().hex


def submit(
    session: Session,
    storage: Storage,
    user: User,
    *,
    service: str,
    options: dict[str, Any],
    original: bytes,
    input_name: str,
    width: int,
    height: int,
    now: datetime,
    reserve_ttl: timedelta,
    idempotency_key: str | None = None,
    monthly_allowance: int = 0,
) -> Job:
    """Create the job and hold its price in ONE transaction; the original is written last so a
    refused job leaves nothing behind. The caller deletes the file if its commit fails.
    Callers with an idempotency key ask `find_repeat` first."""
    require_verified(user)
    digest = request_digest(service, options, original)
    free.ensure_monthly_allowance(session, user.id, now=now, credits=monthly_allowance)
    price = price_of(session, service, options, width, height)
    job = Job(
        id=new_job_id(),
        user_id=user.id,
        service=service,
        status="queued",
        options=options,
        cost=price.credits,
        price_id=price.id,
        idempotency_key=idempotency_key or None,
        request_hash=digest,
        input_key="",
        input_name=upload_name(input_name),
        input_width=width,
        input_height=height,
        created_at=now,
    )
    job.input_key = f"originals/{job.id}"
    session.add(job)
    session.flush()
    if price.credits > 0:
        ledger.reserve(
            session,
            user.id,
            price.credits,
            reference=job_reference(job.id),
            now=now,
            ttl=reserve_ttl,
        )
    storage.put(job.input_key, original)
    return job


def price_of(
    session: Session, service: str, options: dict[str, Any], width: int, height: int
) -> Price:
    """What a job of this photo holds until it finishes: the price of the tier of the largest
    result it can make (`processors.result_pixels`), which is its result's exactly unless it
    crops; a cropped job's result can be smaller, and is charged less (`succeed`)."""
    pixels = processors.result_pixels(service, options, width, height)
    return price_for(session, service, str(options.get("size", "full")), pixels)


def find_repeat(
    session: Session,
    user: User,
    idempotency_key: str,
    *,
    service: str,
    options: dict[str, Any],
    original: bytes,
) -> Job | None:
    """The job an earlier request with this key created, if it was the same request; the same
    key with a different request is refused with 409."""
    previous = repo.by_idempotency_key(session, user.id, idempotency_key)
    if previous is None:
        return None
    if previous.request_hash != request_digest(service, options, original):
        raise Conflict(
            "This Idempotency-Key was already used for a different request. "
            "Use a new key for a new request.",
            code="idempotency_key_reused",
        )
    return previous


def request_digest(service: str, options: dict[str, Any], original: bytes) -> str:
    """What makes two submissions "the same request" for idempotency."""
    canonical = json.dumps({"service": service, "options": options}, sort_keys=True)
    return hashlib.sha256(canonical.encode() + hashlib.sha256(original).digest()).hexdigest()


def result_key(job_id: str, attempt: int) -> str:
    """Where an attempt stores its result: one key per attempt, so a lost attempt that wakes
    up never touches the result of the attempt that took over."""
    return f"results/{job_id}.{attempt}"


def job_reference(job_id: str) -> str:
    return f"job:{job_id}"


def get_for_user(session: Session, user: User, job_id: str) -> Job:
    job = repo.get_for_user(session, job_id, user.id)
    if job is None:
        raise NotFound("No such job. It may have been deleted after the retention period.")
    return job


def page_for_user(
    session: Session, user: User, *, limit: int, before: str | None
) -> tuple[list[Job], str | None]:
    """One page of the user's jobs, newest first, and the id to pass as `before` for the next
    (None on the last page)."""
    page, last = repo.page_for_user(session, user.id, limit=limit, before=before)
    return page, (last.id if last is not None else None)


def succeed(
    session: Session,
    job: Job,
    *,
    result_key: str,
    media_type: str,
    width: int,
    height: int,
    detected_type: str | None,
    foreground: dict[str, int] | None,
    now: datetime,
) -> int:
    job.status = "succeeded"
    job.result_key = result_key
    job.result_media_type = media_type
    job.result_width = width
    job.result_height = height
    job.detected_type = detected_type
    job.foreground = foreground
    job.finished_at = now
    # Charged at the tier of the result it made, never more than it held: a cropped result
    # can come out smaller than the largest it could have been, whose price was held.
    price = price_of_result(session, job.service, width * height, job.created_at)
    charge = None if price is None else min(price.credits, job.cost)
    charged = ledger.capture(
        session, job.user_id, reference=job_reference(job.id), now=now, amount=charge
    )
    if price is not None and charge == price.credits:
        job.price_id = price.id
    job.cost = charged
    session.flush()
    return charged


def fail(session: Session, job: Job, *, code: str, message: str, now: datetime) -> None:
    """A failed job costs nothing: its hold goes back to the lots it came from."""
    job.status = "failed"
    job.error_code = code
    job.error_message = message
    job.finished_at = now
    ledger.release(session, job.user_id, reference=job_reference(job.id), now=now)
    session.flush()


def cancel(
    session: Session,
    job_id: str,
    user_id: int,
    now: datetime,
    *,
    code: str,
    message: str,
    queued_only: bool = False,
) -> bool:
    """Cancel an unsettled job (only a queued one with ``queued_only``) and give back its
    hold; False when it was settled (or started) first. The caller holds the owner's lock."""
    if not repo.cancel_unsettled(
        session, job_id, now, code=code, message=message, queued_only=queued_only
    ):
        return False
    ledger.release(session, user_id, reference=job_reference(job_id), now=now)
    return True


def abandon(session: Session, job: Job, now: datetime) -> bool:
    """A job whose caller stopped waiting for it (a synchronous request that timed out and
    was answered with an error) is cancelled, queued or running, and never charged: its hold
    goes back. False when it was settled first; then its outcome stands."""
    repo.lock_owner(session, job.user_id)
    return cancel(
        session,
        job.id,
        job.user_id,
        now,
        code="timeout",
        message="The request timed out before the result was ready. You were not charged.",
    )


SUSPENDED = "The account was suspended before this image was processed. You were not charged."
LOCKED = (
    "The account was locked after a report of unauthorized use, before this image was "
    "processed. You were not charged."
)


def cancel_queued_of(session: Session, user_id: int, now: datetime) -> int:
    """Cancel every job of the user that has not started (its account was restricted or
    banned, or locked by a report of unauthorized use: the work may be the intruder's) and
    give back its held credits; returns how many."""
    repo.lock_owner(session, user_id)
    owner = session.get(User, user_id)
    locked = owner is not None and owner.status == "active" and owner.locked_at is not None
    code, message = ("account_locked", LOCKED) if locked else ("account_suspended", SUSPENDED)
    return sum(
        cancel(session, job_id, user_id, now, code=code, message=message, queued_only=True)
        for job_id in repo.queued_ids_of(session, user_id)
    )


def cancel_queued_of_service(
    session: Session, service: str, now: datetime, *, code: str, message: str
) -> int:
    """Cancel every job of `service` (`batch`: every batch item) that has not started, as an
    operator suspended or disabled it, and give back its held credits; returns how many."""
    by_owner: dict[int, list[str]] = {}
    for user_id, job_id in repo.queued_of_service(session, service):
        by_owner.setdefault(user_id, []).append(job_id)
    cancelled = 0
    for user_id, job_ids in by_owner.items():
        repo.lock_owner(session, user_id)
        cancelled += sum(
            cancel(session, job_id, user_id, now, code=code, message=message, queued_only=True)
            for job_id in job_ids
        )
    return cancelled


def wait_until_finished(db: Database, job_id: str, timeout: float) -> Job:
    """Poll until the job leaves the queue; works for every queue backend."""
    deadline = time.monotonic() + timeout
    delay = 0.02
    while True:
        with db.transaction() as session:
            job = repo.get(session, job_id)
            assert job is not None
            if job.status in ("succeeded", "failed", "cancelled") or time.monotonic() > deadline:
                return job
        time.sleep(delay)
        delay = min(delay * 1.5, 0.25)
