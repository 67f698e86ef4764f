"""A bucket outage while a worker runs a job: the original cannot be read or the result cannot
be written (connection refused, S3's 503 SlowDown). The job stays running while the worker
retries with backoff, is charged once when the bucket comes back, and fails uncharged with
`storage_unavailable` when it does not come back in time; a missing original is not retried.

A real S3 API server (moto) sits behind a TCP forwarder whose port closes, or answers SlowDown,
the moment the worker sends the chosen request; the embedded in-process worker and a real
`removeany worker` (Celery on Redis) both run the jobs."""

from __future__ import annotations

import logging
import signal
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from removeany.accounts.models import User
from removeany.app import create_app
from removeany.context import Context, build_context
from removeany.infra.settings import Settings
from removeany.infra.storage import S3Storage
from tests.batches._images import photo_paths, small_photo
from tests.batches._ledger import audit
from tests.batches._scale import forget_queue, redis_broker, settings_env, workers
from tests.helpers import make_api_key, make_user
from tests.jobs._bucket import FlakyEndpoint, moto_endpoint, wait_until

pytest.importorskip("moto.server")


@pytest.fixture(scope="module")
def s3_server() -> Iterator[str]:
    with moto_endpoint() as endpoint:
        yield endpoint


@pytest.fixture
def bucket(s3_server: str) -> Iterator[tuple[FlakyEndpoint, str]]:
    """The forwarder in front of the server, and a fresh bucket name."""
    flaky = FlakyEndpoint(s3_server)
    yield flaky, f"outage-{uuid.uuid4().hex[:12]}"
    flaky.close()


def on_bucket(settings: Settings, flaky: FlakyEndpoint, name: str, **update: Any) -> Settings:
    return settings.model_copy(
        update={
            "storage_backend": "s3",
            "s3_bucket": name,
            "s3_endpoint_url": flaky.url,
            "s3_access_key_id": "testing",
            "s3_secret_access_key": "testing",
            **update,
        }
    )


def direct(s3_server: str, name: str) -> S3Storage:
    """The bucket on the server itself, not through the forwarder."""
    return S3Storage(
        name, endpoint_url=s3_server, access_key_id="testing", secret_access_key="testing"
    )


def stored(s3_server: str, name: str) -> list[str]:
    listed = direct(s3_server, name).client.list_objects_v2(Bucket=name).get("Contents", [])
    return sorted(str(obj["Key"]) for obj in listed)


def submit(client: TestClient, headers: dict[str, str]) -> str:
    answer = client.post(
        "/api/v1/jobs",
        headers=headers,
        files={"file": ("p.jpg", small_photo(photo_paths(1)[0], 200))},
    )
    assert answer.status_code == 202, answer.text
    return str(answer.json()["id"])


def job_of(client: TestClient, headers: dict[str, str], job_id: str) -> dict[str, Any]:
    answer = client.get(f"/api/v1/jobs/{job_id}", headers=headers)
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def finished(
    client: TestClient, headers: dict[str, str], job_id: str, timeout: float = 120
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while (job := job_of(client, headers, job_id))["status"] in ("queued", "running"):
        assert time.monotonic() < deadline, job
        time.sleep(0.1)
    return job


@contextmanager
def on_s3(settings: Settings) -> Iterator[tuple[Context, User, dict[str, str]]]:
    """A context on the (flaky) bucket, with a user of 3 credits and their API key's headers."""
    ctx = build_context(settings)
    assert isinstance(ctx.storage, S3Storage)
    ctx.storage.ensure_bucket()
    try:
        user = make_user(ctx, credits=3)
        yield ctx, user, {"X-Api-Key": make_api_key(ctx, user)}
    finally:
        ctx.close()


def stays_running_while_down(
    client: TestClient, headers: dict[str, str], job_id: str, flaky: FlakyEndpoint
) -> None:
    """The outage began under the worker; for the next seconds the job shows as running."""
    wait_until(lambda: not flaky.is_up, 60, "the worker never reached the chosen request")
    for _ in range(20):
        assert job_of(client, headers, job_id)["status"] == "running"
        time.sleep(0.1)


def test_an_original_unreadable_for_a_while_is_read_when_the_bucket_is_back(
    settings: Settings, bucket: tuple[FlakyEndpoint, str], s3_server: str
) -> None:
    flaky, name = bucket
    with on_s3(on_bucket(settings, flaky, name, storage_retry_seconds=120)) as (ctx, user, headers):
        flaky.refuse_from(f"GET /{name}/originals/".encode())
        with TestClient(create_app(ctx)) as client:
            job_id = submit(client, headers)
            stays_running_while_down(client, headers, job_id, flaky)
            assert audit(ctx, user.id)["held"] == 1
            flaky.up()
            job = finished(client, headers, job_id)
        assert job["status"] == "succeeded", job
        ledger = audit(ctx, user.id)
        assert ledger["captured"] == 1 and ledger["held"] == 0 and ledger["available"] == 2
        assert stored(s3_server, name) == [f"originals/{job_id}", f"results/{job_id}.1"]


def test_a_result_unwritable_for_a_while_is_written_once_when_the_bucket_is_back(
    settings: Settings, bucket: tuple[FlakyEndpoint, str], s3_server: str
) -> None:
    """The outage cuts the PUT of the result itself: the same attempt writes it again (the
    engine does not run again), and the job is charged once."""
    flaky, name = bucket
    with on_s3(on_bucket(settings, flaky, name, storage_retry_seconds=120)) as (ctx, user, headers):
        flaky.refuse_from(f"PUT /{name}/results/".encode())
        with TestClient(create_app(ctx)) as client:
            job_id = submit(client, headers)
            stays_running_while_down(client, headers, job_id, flaky)
            flaky.up()
            job = finished(client, headers, job_id)
            assert job["status"] == "succeeded", job
            redirect = client.get(job["result_url"], headers=headers, follow_redirects=False)
            result = httpx.get(redirect.headers["location"])
            assert result.status_code == 200 and result.content.startswith(b"\x89PNG")
        ledger = audit(ctx, user.id)
        assert ledger["captured"] == 1 and ledger["held"] == 0 and ledger["available"] == 2
        assert not ledger["double_captures"]
        jobs = ledger["jobs"]
        assert isinstance(jobs, dict) and jobs[job_id].attempts == 1
        assert stored(s3_server, name) == [f"originals/{job_id}", f"results/{job_id}.1"]


# boto's own retries back off for several seconds under SlowDown: one database suffices.
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_bucket_that_stays_down_fails_the_job_uncharged_and_a_missing_file_at_once(
    settings: Settings, bucket: tuple[FlakyEndpoint, str], s3_server: str
) -> None:
    """Past storage_retry_seconds of SlowDown the job fails with storage_unavailable and its
    hold is released, leaving no result in the bucket. A permanent error (the original is
    gone) is not waited on: that job fails at once."""
    flaky, name = bucket
    with on_s3(on_bucket(settings, flaky, name, storage_retry_seconds=120)) as (ctx, user, headers):
        with TestClient(create_app(ctx)) as client:
            # The original vanishes (deleted behind the platform's back) before the job runs.
            gone = make_user(ctx, "gone@example.com", credits=3)
            gone_headers = {"X-Api-Key": make_api_key(ctx, gone)}
            flaky.refuse_from(f"GET /{name}/originals/".encode())
            gone_id = submit(client, gone_headers)
            wait_until(lambda: not flaky.is_up, 60, "the worker never read the original")
            direct(s3_server, name).delete(f"originals/{gone_id}")
            flaky.up()
            started = time.monotonic()
            missing = finished(client, gone_headers, gone_id)
            assert missing["status"] == "failed", missing
            assert missing["error_code"] not in (None, "storage_unavailable"), missing
            assert time.monotonic() - started < 10

            ctx.settings.storage_retry_seconds = 1
            flaky.slow_down_from(f"PUT /{name}/results/".encode())
            job_id = submit(client, headers)
            job = finished(client, headers, job_id)
        assert job["status"] == "failed", job
        assert job["error_code"] == "storage_unavailable"
        assert "Nothing was charged" in job["error_message"]
        for owner in (user, gone):
            ledger = audit(ctx, owner.id)
            assert ledger["captured"] == 0 and ledger["held"] == 0 and ledger["available"] == 3
        assert stored(s3_server, name) == [f"originals/{job_id}"]


def test_a_server_stopping_during_an_outage_gives_its_job_back(
    settings: Settings, bucket: tuple[FlakyEndpoint, str], s3_server: str
) -> None:
    """`serve` shut down while its worker waits for the bucket: the shutdown does not wait out
    the retries, the job goes back to the queue uncharged, and the next start runs it."""
    flaky, name = bucket
    scaled = on_bucket(settings, flaky, name, storage_retry_seconds=300)
    ctx = build_context(scaled)
    assert isinstance(ctx.storage, S3Storage)
    ctx.storage.ensure_bucket()
    user = make_user(ctx, credits=3)
    headers = {"X-Api-Key": make_api_key(ctx, user)}
    flaky.refuse_from(f"GET /{name}/originals/".encode())
    with TestClient(create_app(ctx)) as client:
        job_id = submit(client, headers)
        stays_running_while_down(client, headers, job_id, flaky)
        stopping = time.monotonic()
    ctx.close()
    assert time.monotonic() - stopping < 30
    flaky.up()
    ctx = build_context(scaled)
    try:
        ledger = audit(ctx, user.id)
        assert ledger["statuses"] == {"queued": 1} and ledger["held"] == 1
        with TestClient(create_app(ctx)) as client:
            job = finished(client, headers, job_id)
        assert job["status"] == "succeeded", job
        ledger = audit(ctx, user.id)
        assert ledger["captured"] == 1 and ledger["held"] == 0 and ledger["available"] == 2
    finally:
        ctx.close()


def celery_on_s3(
    tmp_path: Path,
    postgres_url: str,
    model_dir: Path,
    endpoint: str,
    bucket_name: str,
    broker_url: str,
    queue: str,
) -> dict[str, object]:
    """Settings for Celery workers on Redis and PostgreSQL storing in the flaky bucket,
    waiting out its outages for up to 120 s."""
    return {
        "data_dir": tmp_path / "data",
        "database_url": postgres_url,
        "model_dir": model_dir,
        "secret_key": "test-secret-key",
        "queue_backend": "celery",
        "broker_url": broker_url,
        "queue_name": queue,
        "storage_backend": "s3",
        "s3_bucket": bucket_name,
        "s3_endpoint_url": endpoint,
        "s3_access_key_id": "testing",
        "s3_secret_access_key": "testing",
        "storage_retry_seconds": 120,
    }


@pytest.mark.postgres
@pytest.mark.timeout(300)
def test_a_celery_worker_waits_out_the_bucket_and_charges_once(
    tmp_path: Path,
    postgres_url: str,
    model_dir: Path,
    bucket: tuple[FlakyEndpoint, str],
    s3_server: str,
) -> None:
    flaky, name = bucket
    broker_url, queue = redis_broker()
    values = celery_on_s3(tmp_path, postgres_url, model_dir, flaky.url, name, broker_url, queue)
    scaled = Settings(**values)  # type: ignore[arg-type]
    try:
        with on_s3(scaled) as (ctx, user, headers):
            flaky.refuse_from(f"PUT /{name}/results/".encode())
            with (
                workers(settings_env(values), tmp_path) as pool,
                TestClient(create_app(ctx)) as client,
            ):
                pool.start()
                job_id = submit(client, headers)
                try:
                    stays_running_while_down(client, headers, job_id, flaky)
                except AssertionError as exc:
                    raise AssertionError(pool.log_tail()) from exc
                time.sleep(2)  # several retries fail against the closed port
                assert job_of(client, headers, job_id)["status"] == "running"
                flaky.up()
                job = finished(client, headers, job_id)
                assert job["status"] == "succeeded", (job, pool.log_tail())
            ledger = audit(ctx, user.id)
            assert ledger["captured"] == 1 and ledger["held"] == 0 and ledger["available"] == 2
            jobs = ledger["jobs"]
            assert isinstance(jobs, dict) and jobs[job_id].attempts == 1
            assert stored(s3_server, name) == [f"originals/{job_id}", f"results/{job_id}.1"]
    finally:
        forget_queue(broker_url, queue)


@pytest.mark.postgres
@pytest.mark.timeout(300)
@pytest.mark.parametrize("pool", ["prefork", "solo"])
def test_a_celery_worker_stopped_while_it_waits_for_the_bucket_gives_its_job_back(
    tmp_path: Path,
    postgres_url: str,
    model_dir: Path,
    bucket: tuple[FlakyEndpoint, str],
    s3_server: str,
    pool: str,
) -> None:
    """SIGTERM to a `removeany worker` (its main process, as `docker stop` sends it) while
    its job waits out a bucket outage: the warm shutdown does not wait out the retries
    (storage_retry_seconds, 120 here): the job goes back on the queue, uncharged, with a
    wake-up, and the next worker runs it once the bucket is back. Before, the shutdown held
    the job until the retries ran out and then failed it (storage_unavailable)."""
    flaky, name = bucket
    broker_url, queue = redis_broker()
    values = celery_on_s3(tmp_path, postgres_url, model_dir, flaky.url, name, broker_url, queue)
    scaled = Settings(**values)  # type: ignore[arg-type]
    try:
        with on_s3(scaled) as (ctx, user, headers):
            flaky.refuse_from(f"GET /{name}/originals/".encode())
            with (
                workers(settings_env(values), tmp_path) as running,
                TestClient(create_app(ctx)) as client,
            ):
                first = running.start(pool=pool)
                job_id = submit(client, headers)
                try:
                    stays_running_while_down(client, headers, job_id, flaky)
                except AssertionError as exc:
                    raise AssertionError(running.log_tail()) from exc
                time.sleep(2)  # several retries fail against the closed port
                stopping = time.monotonic()
                first.send_signal(signal.SIGTERM)  # the main process only
                first.wait(timeout=150)
                stopped_in = time.monotonic() - stopping
                assert stopped_in < 15, (stopped_in, running.log_tail())
                assert first.returncode == 0, running.log_tail()
                ledger = audit(ctx, user.id)
                assert ledger["statuses"] == {"queued": 1}, running.log_tail()
                assert ledger["held"] == 1 and ledger["captured"] == 0
                flaky.up()
                running.start(pool=pool)
                job = finished(client, headers, job_id)
                assert job["status"] == "succeeded", (job, running.log_tail())
            ledger = audit(ctx, user.id)
            assert ledger["captured"] == 1 and ledger["held"] == 0 and ledger["available"] == 2
            jobs = ledger["jobs"]
            assert isinstance(jobs, dict) and jobs[job_id].attempts == 2
            assert stored(s3_server, name) == [f"originals/{job_id}", f"results/{job_id}.2"]
    finally:
        forget_queue(broker_url, queue)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_bucket_that_refuses_the_worker_fails_the_job_at_once_and_tells_the_operator(
    settings: Settings,
    bucket: tuple[FlakyEndpoint, str],
    s3_server: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The bucket is deleted while the worker waits for it (an operator's mistake, not an
    outage): the job fails uncharged with storage_unavailable as soon as the store answers,
    not after storage_retry_seconds, and the log names the setting to fix. A submission then
    is answered 503 storage_unavailable (it was a 500 from a raw ClientError)."""
    flaky, name = bucket
    with on_s3(on_bucket(settings, flaky, name, storage_retry_seconds=300)) as (ctx, user, headers):
        flaky.refuse_from(f"GET /{name}/originals/".encode())
        with TestClient(create_app(ctx)) as client, caplog.at_level(logging.ERROR):
            job_id = submit(client, headers)
            stays_running_while_down(client, headers, job_id, flaky)
            gone = direct(s3_server, name)
            gone.delete(f"originals/{job_id}")
            gone.client.delete_bucket(Bucket=name)
            flaky.up()
            started = time.monotonic()
            job = finished(client, headers, job_id)
            assert time.monotonic() - started < 10
            assert job["status"] == "failed", job
            assert job["error_code"] == "storage_unavailable", job
            assert "Nothing was charged" in job["error_message"]
            refused = client.post(
                "/api/v1/jobs",
                headers=headers,
                files={"file": ("p.jpg", small_photo(photo_paths(1)[0], 200))},
            )
            assert refused.status_code == 503, refused.text
            assert refused.json()["error"]["code"] == "storage_unavailable"
        ledger = audit(ctx, user.id)
        assert ledger["captured"] == 0 and ledger["held"] == 0 and ledger["available"] == 3
        refusals = [
            r.getMessage() for r in caplog.records if "refuses this server" in r.getMessage()
        ]
        assert len(refusals) == 2, caplog.text
        assert all(f"'{name}' does not exist" in line for line in refusals)
        assert all("check REMOVEANY_S3_BUCKET" in line for line in refusals)
        assert job_id in refusals[0]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_job_called_off_while_its_worker_waits_for_the_bucket_stops_the_wait(
    settings: Settings,
    bucket: tuple[FlakyEndpoint, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A remove.bg call gives up on its job while the worker waits out an outage: the job is
    cancelled, and the worker, which looks whether its job is still its own every
    JOB_CHECK_SECONDS (2), stops waiting within seconds and is free for other work, instead
    of retrying for the rest of storage_retry_seconds. With the default lease (300 s): before,
    only the next heartbeat (every third of the lease, 100 s) told it."""
    flaky, name = bucket
    scaled = on_bucket(settings, flaky, name, storage_retry_seconds=300, job_wait_seconds=2)
    assert scaled.job_lease_seconds == 300
    try:
        with on_s3(scaled) as (ctx, user, headers):
            flaky.refuse_from(f"GET /{name}/originals/".encode())
            with TestClient(create_app(ctx)) as client, caplog.at_level(logging.WARNING):
                called_off = client.post(
                    "/v1.0/removebg",
                    headers=headers,
                    files={"image_file": ("p.jpg", small_photo(photo_paths(1)[0], 200))},
                )
                assert called_off.status_code == 503, called_off.text
                assert called_off.json()["errors"][0]["code"] == "timeout"
                assert not flaky.is_up  # the worker is waiting for the bucket
                (job,) = client.get("/api/v1/jobs", headers=headers).json()
                assert job["status"] == "cancelled", job
                assert ctx.queue is not None
                idle = threading.Thread(target=ctx.queue.shutdown)  # waits for the running job
                idle.start()
                idle.join(8)
                assert not idle.is_alive(), "the worker still waits for a job that was called off"
            assert (
                f"job {job['id']} attempt 1 was settled meanwhile; stopped waiting" in caplog.text
            )
            ledger = audit(ctx, user.id)
            assert ledger["captured"] == 0 and ledger["held"] == 0 and ledger["available"] == 3
    finally:
        flaky.up()  # after on_s3 closed the context (before the fix, closing ended the wait)


def test_a_remove_bg_result_the_bucket_cannot_give_back_says_where_to_get_it(
    settings: Settings, bucket: tuple[FlakyEndpoint, str], s3_server: str
) -> None:
    """/v1.0/removebg waits for its job and then reads the result from the bucket. When that
    read fails, the job has succeeded and been charged: the answer said "Nothing was charged"
    (storage_unavailable's sentence for a submission). Now it says what was charged and where
    the kept result is, and the result is there once the bucket is back."""
    flaky, name = bucket
    with on_s3(on_bucket(settings, flaky, name)) as (ctx, user, headers):
        with TestClient(create_app(ctx)) as client:
            flaky.refuse_from(f"GET /{name}/results/".encode())
            answer = client.post(
                "/v1.0/removebg",
                headers=headers,
                files={"image_file": ("p.jpg", small_photo(photo_paths(1)[0], 200))},
            )
            assert answer.status_code == 503, answer.text
            (error,) = answer.json()["errors"]
            (job,) = client.get("/api/v1/jobs", headers=headers).json()
            assert job["status"] == "succeeded" and job["charged"] == 1, job
            assert error["code"] == "storage_unavailable"
            assert "Nothing was charged" not in error["detail"]
            assert "1 credit charged" in error["detail"]
            assert f"/api/v1/jobs/{job['id']}/result" in error["detail"]
            flaky.up()
            kept = client.get(
                f"/api/v1/jobs/{job['id']}/result", headers=headers, follow_redirects=False
            )
            assert kept.status_code == 307, kept.text  # to the bucket itself
            assert httpx.get(kept.headers["location"]).content.startswith(b"\x89PNG")
        ledger = audit(ctx, user.id)
        assert ledger["captured"] == 1 and ledger["held"] == 0 and ledger["available"] == 2
