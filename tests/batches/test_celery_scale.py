"""Scaled deployment end to end: the API publishes to Redis, real `removeany worker` processes
(Celery, prefork) run a 50-item batch against PostgreSQL, and one worker is SIGKILLed mid-batch.
Every item must succeed exactly once, charges must equal the items that succeeded, and no hold
may be left."""

from __future__ import annotations

import io
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import text

from removeany.app import create_app
from removeany.context import Context, build_context
from removeany.infra.settings import Settings
from tests.batches._images import photo_zip
from tests.batches._ledger import audit
from tests.batches._scale import forget_queue, redis_broker, settings_env, workers
from tests.helpers import make_api_key, make_user

ITEMS = 50


@pytest.fixture
def scaled(tmp_path: Path, postgres_url: str, model_dir: Path) -> Iterator[Settings]:
    broker_url, queue = redis_broker()
    settings = Settings(
        data_dir=tmp_path / "data",
        database_url=postgres_url,
        model_dir=model_dir,
        secret_key="test-secret-key",
        queue_backend="celery",
        broker_url=broker_url,
        queue_name=queue,
        job_lease_seconds=4,
        lease_sweep_seconds=1,
        max_running_jobs_per_user=4,
    )
    yield settings
    forget_queue(broker_url, queue)


def env_for(settings: Settings) -> dict[str, str]:
    return settings_env(
        {
            key: getattr(settings, key)
            for key in (
                "data_dir",
                "database_url",
                "model_dir",
                "secret_key",
                "queue_backend",
                "broker_url",
                "queue_name",
                "job_lease_seconds",
                "lease_sweep_seconds",
                "max_running_jobs_per_user",
            )
        }
    )


def running_now(ctx: Context) -> int:
    with ctx.db.transaction() as session:
        return int(
            session.execute(text("SELECT count(*) FROM jobs WHERE status = 'running'")).scalar_one()
        )


@pytest.mark.postgres
@pytest.mark.timeout(600)
def test_fifty_item_batch_survives_a_killed_worker(scaled: Settings, tmp_path: Path) -> None:
    archive, names = photo_zip(ITEMS, side=320)
    ctx = build_context(scaled)
    try:
        with workers(env_for(scaled), tmp_path) as pool, TestClient(create_app(ctx)) as client:
            victim = pool.start()
            pool.start()
            user = make_user(ctx, credits=ITEMS + 10)
            headers = {"X-Api-Key": make_api_key(ctx, user)}
            created = client.post(
                "/api/v1/batches", headers=headers, files={"archive": ("photos.zip", archive)}
            )
            assert created.status_code == 202, created.text
            batch_id = created.json()["id"]

            # Both workers busy and some items done: kill one outright, mid-job.
            deadline = time.monotonic() + 180
            while True:
                batch = client.get(f"/api/v1/batches/{batch_id}", headers=headers).json()
                if batch["counts"]["succeeded"] >= 5 and running_now(ctx) >= 2:
                    break
                assert time.monotonic() < deadline, f"workers never got busy\n{pool.log_tail()}"
                time.sleep(0.02)
            pool.kill(victim)
            killed_at = batch["counts"]["succeeded"]
            assert killed_at < ITEMS

            deadline = time.monotonic() + 420
            while batch["status"] != "completed":
                assert time.monotonic() < deadline, f"batch stuck: {batch}\n{pool.log_tail()}"
                time.sleep(0.25)
                batch = client.get(f"/api/v1/batches/{batch_id}", headers=headers).json()

            assert batch["counts"]["succeeded"] == ITEMS, batch
            assert batch["charged"] == ITEMS
            results = client.get(batch["results_url"], headers=headers)
            with zipfile.ZipFile(io.BytesIO(results.content)) as zf:
                assert sorted(zf.namelist()) == sorted(n[:-4] + ".png" for n in names)
                scaled_results = {name: zf.read(name) for name in zf.namelist()}

        ledger = audit(ctx, user.id)
        assert ledger["statuses"] == {"succeeded": ITEMS}
        assert ledger["captured"] == ITEMS and ledger["available"] == 10
        assert ledger["held"] == 0 and not ledger["open_holds"]
        assert not ledger["double_captures"]
        jobs = ledger["jobs"]
        assert isinstance(jobs, dict)
        # The killed worker's job was retried by another worker after its lease ran out.
        assert max(job.attempts for job in jobs.values()) >= 2, pool.log_tail()
    finally:
        ctx.close()

    # The embedded default (SQLite, local files, in-process worker) gives the same results.
    embedded = embedded_results(archive, tmp_path / "embedded", scaled.model_dir)
    assert embedded.keys() == scaled_results.keys()
    for name, data in embedded.items():
        with (
            Image.open(io.BytesIO(data)) as one,
            Image.open(io.BytesIO(scaled_results[name])) as two,
        ):
            assert one.mode == two.mode == "RGBA" and one.size == two.size, name
            difference = np.abs(np.asarray(one, np.int16) - np.asarray(two, np.int16))
        assert difference.max() <= 1, f"{name}: results differ by up to {difference.max()}"


def embedded_results(archive: bytes, data_dir: Path, model_dir: Path | None) -> dict[str, bytes]:
    """Run the same ZIP as a batch on the embedded default; the results ZIP's files by name."""
    ctx = build_context(Settings(data_dir=data_dir, model_dir=model_dir), migrate=True)
    try:
        with TestClient(create_app(ctx)) as client:
            user = make_user(ctx, credits=ITEMS)
            headers = {"X-Api-Key": make_api_key(ctx, user)}
            created = client.post(
                "/api/v1/batches", headers=headers, files={"archive": ("photos.zip", archive)}
            )
            assert created.status_code == 202, created.text
            url = f"/api/v1/batches/{created.json()['id']}"
            deadline = time.monotonic() + 420
            batch = client.get(url, headers=headers).json()
            while batch["status"] != "completed":
                assert time.monotonic() < deadline, f"embedded batch stuck: {batch}"
                time.sleep(0.25)
                batch = client.get(url, headers=headers).json()
            assert batch["counts"]["succeeded"] == ITEMS, batch
            results = client.get(batch["results_url"], headers=headers)
            with zipfile.ZipFile(io.BytesIO(results.content)) as zf:
                return {name: zf.read(name) for name in zf.namelist()}
    finally:
        ctx.close()
