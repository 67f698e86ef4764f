"""Fair claiming, per-user concurrency caps, leases and at-most-once settlement, on the real
database (SQLite and PostgreSQL) without any queue: the worker's own functions, step by step."""

from __future__ import annotations

from datetime import timedelta

import pytest

from removeany.accounts.models import User
from removeany.batches.models import Batch
from removeany.context import Context
from removeany.credits import repository as credits_repo
from removeany.credits import service as ledger
from removeany.jobs import repository as repo
from removeany.jobs import service as jobs
from removeany.jobs import worker
from removeany.jobs.models import Job
from removeany.maintenance import run_sweeps
from removeany.moderation import service as moderation
from removeany.moderation.audit import Actor
from removeany.privacy import service as privacy
from tests.batches._images import photo_paths, small_photo
from tests.batches._ledger import audit
from tests.conftest import TestClock
from tests.helpers import make_user


def submit(
    ctx: Context, user_id: int, count: int, data: bytes, *, service: str = "remove_background"
) -> list[str]:
    ids = []
    for _ in range(count):
        with ctx.db.transaction() as session:
            owner = session.get(User, user_id)
            assert owner is not None
            job = jobs.submit(
                session,
                ctx.storage,
                owner,
                service=service,
                options={"size": "full", "format": "png"},
                original=data,
                input_name="p.jpg",
                width=1,
                height=1,
                now=ctx.now(),
                reserve_ttl=timedelta(hours=1),
            )
            ids.append(job.id)
        ctx.clock.now += timedelta(seconds=1)  # type: ignore[attr-defined]
    return ids


def claim(ctx: Context) -> Job | None:
    with ctx.db.transaction() as session:
        return repo.claim_next(
            session, ctx.now(), max_running_per_user=ctx.settings.max_running_jobs_per_user
        )


def test_a_big_backlog_does_not_starve_other_users(ctx: Context, clock: TestClock) -> None:
    ctx.clock = clock
    ctx.settings.max_running_jobs_per_user = 3
    photo = small_photo(photo_paths(1)[0], 64)
    big = make_user(ctx, "big@example.com", credits=50)
    small = make_user(ctx, "small@example.com", credits=5)
    backlog = submit(ctx, big.id, 6, photo)
    (late,) = submit(ctx, small.id, 1, photo)
    order = []
    while (job := claim(ctx)) is not None:
        order.append(job.id)
    # The late job of the second user runs second, not seventh; the first user is capped at 3.
    assert order == [backlog[0], late, backlog[1], backlog[2]]
    with ctx.db.transaction() as session:
        statuses = {j: session.get(Job, j).status for j in backlog}  # type: ignore[union-attr]
    assert list(statuses.values()).count("running") == 3


def test_equal_users_take_turns(ctx: Context, clock: TestClock) -> None:
    ctx.clock = clock
    ctx.settings.max_running_jobs_per_user = 100
    photo = small_photo(photo_paths(1)[0], 64)
    ann = make_user(ctx, "ann@example.com", credits=10)
    bob = make_user(ctx, "bob@example.com", credits=10)
    a = submit(ctx, ann.id, 3, photo)
    b = submit(ctx, bob.id, 3, photo)
    order = []
    while (job := claim(ctx)) is not None:
        order.append(job.id)
        clock.now += timedelta(seconds=1)
    assert order == [a[0], b[0], a[1], b[1], a[2], b[2]]


def test_lost_worker_job_is_retried_and_charged_once(ctx: Context, clock: TestClock) -> None:
    ctx.clock = clock
    user = make_user(ctx, credits=3)
    (job_id,) = submit(ctx, user.id, 1, small_photo(photo_paths(1)[0], 160))
    first = worker.claim_next(ctx)
    assert first is not None and first.attempt == 1
    # The worker holding attempt 1 goes silent; before the lease ends nobody may take the job.
    clock.now += timedelta(seconds=ctx.settings.job_lease_seconds - 1)
    assert worker.sweep_stale(ctx) == 0 and worker.claim_next(ctx) is None
    clock.now += timedelta(seconds=2)
    assert worker.sweep_stale(ctx) == 1
    second = worker.claim_next(ctx)
    assert second is not None and second.id == job_id and second.attempt == 2
    # The lost worker wakes up and finishes: its result is discarded, nothing is charged.
    worker.run_claimed(ctx, first)
    with ctx.db.transaction() as session:
        assert session.get(Job, job_id).status == "running"  # type: ignore[union-attr]
    worker.run_claimed(ctx, second)
    worker.run_claimed(ctx, second)  # a duplicate delivery of the same attempt settles nothing
    ledger = audit(ctx, user.id)
    assert ledger["statuses"] == {"succeeded": 1}
    assert ledger["captured"] == 1 and ledger["held"] == 0 and ledger["available"] == 2
    assert not ledger["double_captures"]


def test_an_abandoned_job_is_never_charged(ctx: Context, clock: TestClock) -> None:
    """A synchronous caller that timed out abandons its job, queued or running: the running
    one's worker finishes, finds nothing to settle and deletes its result; no credit moves."""
    ctx.clock = clock
    user = make_user(ctx, credits=3)
    running_id, queued_id = submit(ctx, user.id, 2, small_photo(photo_paths(1)[0], 160))
    claimed = worker.claim_next(ctx)
    assert claimed is not None and claimed.id == running_id
    for job_id in (running_id, queued_id):
        with ctx.db.transaction() as session:
            job = session.get(Job, job_id)
            assert job is not None and jobs.abandon(session, job, ctx.now())
    worker.run_claimed(ctx, claimed)
    assert worker.claim_next(ctx) is None
    with ctx.db.transaction() as session:
        settled = [session.get(Job, j) for j in (running_id, queued_id)]
        assert all(j is not None and j.error_code == "timeout" for j in settled)
        # settled already: abandoning again changes nothing
        assert not jobs.abandon(session, settled[0], ctx.now())  # type: ignore[arg-type]
    assert not ctx.storage.exists(f"results/{running_id}.{claimed.attempt}")
    ledger = audit(ctx, user.id)
    assert ledger["statuses"] == {"cancelled": 2}
    assert ledger["captured"] == 0 and ledger["held"] == 0 and ledger["available"] == 3


def test_a_finished_job_is_not_abandoned(ctx: Context, clock: TestClock) -> None:
    ctx.clock = clock
    user = make_user(ctx, credits=3)
    (job_id,) = submit(ctx, user.id, 1, small_photo(photo_paths(1)[0], 160))
    claimed = worker.claim_next(ctx)
    assert claimed is not None
    worker.run_claimed(ctx, claimed)
    with ctx.db.transaction() as session:
        job = session.get(Job, job_id)
        assert job is not None and not jobs.abandon(session, job, ctx.now())
        assert job.status == "succeeded" and job.result_key is not None
        assert ctx.storage.exists(job.result_key)
    assert audit(ctx, user.id)["captured"] == 1


def test_a_job_queued_past_its_hold_ttl_is_still_charged(ctx: Context, clock: TestClock) -> None:
    """The sweep gives back holds of work that will never settle, not of work still waiting:
    a job queued for two hours (a long batch) is charged when it runs, once."""
    ctx.clock = clock
    user = make_user(ctx, credits=3)
    (waiting,) = submit(ctx, user.id, 1, small_photo(photo_paths(1)[0], 160))
    clock.now += timedelta(hours=2)
    assert run_sweeps(ctx).released_credits == 0
    claimed = worker.claim_next(ctx)
    assert claimed is not None and claimed.id == waiting
    clock.now += timedelta(hours=2)
    assert run_sweeps(ctx).released_credits == 0  # running: still held
    worker.run_claimed(ctx, claimed)
    ledger = audit(ctx, user.id)
    assert ledger["statuses"] == {"succeeded": 1}
    assert ledger["captured"] == 1 and ledger["held"] == 0 and ledger["available"] == 2


@pytest.mark.parametrize("action", ["ban", "restrict"])
def test_a_suspended_account_s_queued_jobs_never_run(
    ctx: Context, clock: TestClock, action: str
) -> None:
    """Moderation cancels what has not started, without charge; what was submitted in the
    same moment is not claimed either."""
    ctx.clock = clock
    user = make_user(ctx, credits=3)
    first, second = submit(ctx, user.id, 2, small_photo(photo_paths(1)[0], 160))
    with ctx.db.transaction() as session:
        target = session.get(User, user.id)
        assert target is not None
        getattr(moderation, action)(
            session, Actor(None, "operator"), target, "abuse report", now=ctx.now()
        )
    with ctx.db.transaction() as session:
        for job_id in (first, second):
            job = session.get(Job, job_id)
            assert job is not None and job.status == "cancelled"
            assert job.error_code == "account_suspended"
        repo.cancel_unsettled(session, first, ctx.now(), code="x", message="x")  # no effect
    # a job that slipped in around the moderation (jobs.submit checks no status; the routes
    # refuse a suspended account before it): queued, but never claimed
    (late,) = submit(ctx, user.id, 1, small_photo(photo_paths(1)[0], 160))
    assert worker.claim_next(ctx) is None
    assert audit(ctx, user.id)["held"] == 1
    run_sweeps(ctx)  # ... and cancelled by the next sweep
    with ctx.db.transaction() as session:
        assert session.get(Job, late).status == "cancelled"  # type: ignore[union-attr]
    ledger = audit(ctx, user.id)
    assert ledger["captured"] == 0 and ledger["held"] == 0 and ledger["available"] == 3


def in_a_batch(ctx: Context, user_id: int, job_ids: list[str]) -> None:
    """Make these queued jobs the items of one batch, as batches.service.create does."""
    with ctx.db.transaction() as session:
        batch = Batch(
            id="b" * 32,
            user_id=user_id,
            service="remove_background",
            total_items=len(job_ids),
            total_bytes=0,
            total_pixels=0,
            created_at=ctx.now(),
        )
        session.add(batch)
        session.flush()
        for job_id in job_ids:
            job = session.get(Job, job_id)
            assert job is not None
            job.batch_id, job.relative_path = batch.id, job.input_name


@pytest.mark.parametrize(
    ("service", "status"), [("remove_background", "suspended"), ("batch", "disabled")]
)
def test_a_stopped_service_s_queued_jobs_never_run(
    ctx: Context, clock: TestClock, service: str, status: str
) -> None:
    """An operator who suspends or disables a service stops the work waiting for it, not only
    new submissions: a queued job is cancelled without charge, in the words users are shown
    for a refusal; one that slipped in around the change is never claimed, and the next sweep
    cancels it. Other services' jobs, and what had started, go on."""
    ctx.clock = clock
    user = make_user(ctx, credits=10)
    photo = small_photo(photo_paths(1)[0], 160)
    single = submit(ctx, user.id, 2, photo)
    items = submit(ctx, user.id, 2, photo)
    in_a_batch(ctx, user.id, items)
    other = submit(ctx, user.id, 1, photo, service="remove_watermark")
    started = worker.claim_next(ctx)
    assert started is not None and started.id == single[0]
    with ctx.db.transaction() as session:
        moderation.set_service_status(
            session,
            Actor(None, "operator"),
            service,
            status,
            "Back at noon.",
            "maintenance",
            now=ctx.now(),
        )
    stopped = set(single[1:] + items) if service == "remove_background" else set(items)
    ledger = audit(ctx, user.id)
    jobs_now: dict[str, Job] = ledger["jobs"]  # type: ignore[assignment]
    for job_id, job in jobs_now.items():
        if job_id in stopped:
            assert job.status == "cancelled" and job.error_code == f"service_{status}"
            assert "Back at noon." in (job.error_message or "")
        else:
            assert job.status == ("running" if job_id == started.id else "queued")
    assert ledger["captured"] == 0 and ledger["held"] == 5 - len(stopped)
    # submitted in the same moment (jobs.submit checks no status; the routes refuse first)
    late = submit(ctx, user.id, 1, photo)
    if service == "batch":
        with ctx.db.transaction() as session:
            job = session.get(Job, late[0])
            assert job is not None
            job.batch_id = "b" * 32
    claimed = set()
    while (next_job := worker.claim_next(ctx)) is not None:
        claimed.add(next_job.id)
    allowed = set(single + other) - stopped - {started.id}
    assert claimed == allowed
    run_sweeps(ctx)
    with ctx.db.transaction() as session:
        assert session.get(Job, late[0]).status == "cancelled"  # type: ignore[union-attr]
    assert audit(ctx, user.id)["held"] == 1 + len(allowed)


def test_a_cancelled_job_s_files_go_like_a_finished_one_s(ctx: Context, clock: TestClock) -> None:
    """Cancelled before it ran, a job keeps nothing the user may not delete: its original is
    deleted on request, or by the retention sweep."""
    ctx.clock = clock
    user = make_user(ctx, credits=3)
    asked, swept = submit(ctx, user.id, 2, small_photo(photo_paths(1)[0], 160))
    with ctx.db.transaction() as session:
        jobs.cancel_queued_of(session, user.id, ctx.now())
        job = session.get(Job, asked)
        assert job is not None
        keys = privacy.delete_job_files(session, job, now=ctx.now())
    privacy.delete_files(ctx.storage, keys)
    assert keys and not any(ctx.storage.exists(k) for k in keys)
    clock.now += timedelta(hours=ctx.settings.retention_hours + 1)
    assert privacy.run_retention(ctx) == 1
    with ctx.db.transaction() as session:
        job = session.get(Job, swept)
        assert job is not None and not ctx.storage.exists(job.input_key)


def test_a_deleted_account_s_running_job_leaves_no_result(ctx: Context, clock: TestClock) -> None:
    """Erased while a worker runs its job: the job is cancelled, the worker's result deleted
    as soon as it is made, nothing charged."""
    ctx.clock = clock
    user = make_user(ctx, credits=3)
    (job_id,) = submit(ctx, user.id, 1, small_photo(photo_paths(1)[0], 160))
    claimed = worker.claim_next(ctx)
    assert claimed is not None
    with ctx.db.transaction() as session:
        owner = session.get(User, user.id)
        assert owner is not None
        keys = privacy.erase_account(session, owner, now=ctx.now())
    privacy.delete_files(ctx.storage, keys)
    worker.run_claimed(ctx, claimed)
    with ctx.db.transaction() as session:
        job = session.get(Job, job_id)
        assert job is not None and job.status == "cancelled" and job.result_key is None
        assert not ctx.storage.exists(job.input_key)
    assert not ctx.storage.exists(f"results/{job_id}.{claimed.attempt}")
    assert audit(ctx, user.id)["captured"] == 0


def test_sweeps_running_at_once_share_the_work(ctx: Context, clock: TestClock) -> None:
    """Every web process runs the sweeps (and cron may too): while one sweep holds expiring
    lots and jobs due for retention, another must skip them, not mail the same warning twice
    or record the same job's deletion (its transaction then failed on the key)."""
    if ctx.settings.sqlalchemy_url.startswith("sqlite"):
        pytest.skip("SQLite runs one write transaction at a time (BEGIN IMMEDIATE)")
    ctx.clock = clock
    user = make_user(ctx, credits=3)
    with ctx.db.transaction() as session:
        ledger.grant(
            session,
            user.id,
            5,
            source="promo",
            now=ctx.now(),
            expires_at=ctx.now() + timedelta(days=2),
        )
    (job_id,) = submit(ctx, user.id, 1, small_photo(photo_paths(1)[0], 160))
    with ctx.db.transaction() as session:
        jobs.cancel_queued_of(session, user.id, ctx.now())
    clock.now += timedelta(hours=ctx.settings.retention_hours + 1)
    horizon = ctx.now() + timedelta(days=ctx.settings.expiry_warning_days)
    with ctx.db.transaction() as first:
        assert len(credits_repo.lots_to_warn(first, ctx.now(), horizon)) == 1
        assert len(privacy.due_for_retention(first, ctx.now(), ctx.settings.retention_hours)) == 1
        assert run_sweeps(ctx).expiry_warnings == 0
        assert privacy.run_retention(ctx) == 0
    assert run_sweeps(ctx).expiry_warnings == 1  # and the retention sweep took the job
    with ctx.db.transaction() as session:
        assert privacy.deletion_of(session, job_id) is not None


def test_a_lost_worker_s_stored_result_goes_with_its_job(ctx: Context, clock: TestClock) -> None:
    """A worker that died after storing its attempt's result, before settling, left an object
    no job row names: the retention sweep deletes every attempt's result, not only the one
    the job settled with, so the bucket does not keep a photo past the retention period."""
    ctx.clock = clock
    user = make_user(ctx, credits=3)
    (job_id,) = submit(ctx, user.id, 1, small_photo(photo_paths(1)[0], 160))
    first = worker.claim_next(ctx)
    assert first is not None
    ctx.storage.put(f"results/{job_id}.1", b"\x89PNG from the lost worker")
    clock.now += timedelta(seconds=ctx.settings.job_lease_seconds + 1)
    assert worker.sweep_stale(ctx) == 1
    second = worker.claim_next(ctx)
    assert second is not None and second.attempt == 2
    worker.run_claimed(ctx, second)
    with ctx.db.transaction() as session:
        job = session.get(Job, job_id)
        assert job is not None and job.result_key == f"results/{job_id}.2"
    clock.now += timedelta(hours=ctx.settings.retention_hours + 1)
    assert privacy.run_retention(ctx) == 1
    assert not any(ctx.storage.exists(f"results/{job_id}.{n}") for n in (1, 2))
