"""A scaled deployment's dependencies failing under a submission: the broker (Redis) down
after the job was committed, the file store (S3) down before it was."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from removeany.app import create_app
from removeany.context import Context, build_context
from removeany.credits import service as ledger
from removeany.infra.settings import Settings
from removeany.jobs import repository as repo
from removeany.jobs.models import Job
from removeany.jobs.worker import process_job
from tests.batches._images import photo_paths, small_photo
from tests.helpers import closed_port, make_api_key, make_user


@pytest.fixture
def broker_down(settings: Settings) -> Iterator[Context]:
    ctx = build_context(
        settings.model_copy(
            update={
                "queue_backend": "celery",
                "broker_url": f"redis://127.0.0.1:{closed_port()}/0",
            }
        )
    )
    yield ctx
    ctx.close()


def test_a_job_accepted_while_redis_is_down_is_answered_202_and_runs_later(
    broker_down: Context,
) -> None:
    """The job row and its hold are committed before the wake-up is published; a publish that
    fails must not answer 500 (a client would retry and pay twice): the job stays queued and
    the next wake-up (the workers' sweepers send one while work is queued) runs it once."""
    ctx = broker_down
    user = make_user(ctx, credits=3)
    with TestClient(create_app(ctx)) as client:
        answer = client.post(
            "/api/v1/jobs",
            headers={"X-Api-Key": make_api_key(ctx, user)},
            files={"file": ("p.jpg", small_photo(photo_paths(1)[0], 200))},
        )
        assert answer.status_code == 202, answer.text
        job_id = answer.json()["id"]
        assert answer.json()["status"] == "queued"
        with ctx.db.transaction() as session:
            assert repo.has_queued(session)
            assert ledger.balance(session, user.id, ctx.now()).held == 1
        process_job(ctx, "sweeper")
        with ctx.db.transaction() as session:
            job = session.get(Job, job_id)
            assert job is not None and job.status == "succeeded" and job.attempts == 1
            balance = ledger.balance(session, user.id, ctx.now())
            assert (balance.available, balance.held) == (2, 0)


@pytest.fixture
def bucket_down(settings: Settings) -> Iterator[Context]:
    ctx = build_context(
        settings.model_copy(
            update={
                "storage_backend": "s3",
                "s3_bucket": "removeany-files",
                "s3_endpoint_url": f"http://127.0.0.1:{closed_port()}",
                "s3_access_key_id": "testing",
                "s3_secret_access_key": "testing",
            }
        )
    )
    yield ctx
    ctx.close()


def test_a_submission_while_the_bucket_is_down_is_a_clear_503_and_charges_nothing(
    bucket_down: Context,
) -> None:
    ctx = bucket_down
    user = make_user(ctx, credits=3)
    headers = {"X-Api-Key": make_api_key(ctx, user)}
    photo = small_photo(photo_paths(1)[0], 200)
    with TestClient(create_app(ctx)) as client:
        answer = client.post("/api/v1/jobs", headers=headers, files={"file": ("p.jpg", photo)})
        assert answer.status_code == 503, answer.text
        assert answer.json()["error"]["code"] == "storage_unavailable"
        assert "Nothing was charged" in answer.json()["error"]["message"]
        removebg = client.post("/v1.0/removebg", headers=headers, files={"image_file": photo})
        assert removebg.status_code == 503
        assert removebg.json()["errors"][0]["code"] == "storage_unavailable"
    with ctx.db.transaction() as session:
        assert session.query(Job).count() == 0
        balance = ledger.balance(session, user.id, ctx.now())
        assert (balance.available, balance.held) == (3, 0)
