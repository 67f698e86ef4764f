"""`removeany worker-check`, a worker container's HEALTHCHECK: against real Redis and a real
`removeany worker` process, it exits 0 while that worker answers and consumes this
installation's queue, and 1 with one line saying why otherwise."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from removeany.infra.db import upgrade
from tests.batches._scale import forget_queue, redis_broker, settings_env, workers
from tests.helpers import closed_port


@pytest.fixture
def worker_env(tmp_path: Path, model_dir: Path) -> Iterator[dict[str, str]]:
    broker_url, queue = redis_broker()
    database = tmp_path / "removeany.db"
    upgrade(f"sqlite:///{database}")
    yield settings_env(
        {
            "data_dir": tmp_path / "data",
            "database_url": f"sqlite:///{database}",
            "model_dir": model_dir,
            "secret_key": "test-secret-key",
            "queue_backend": "celery",
            "broker_url": broker_url,
            "queue_name": queue,
        }
    )
    forget_queue(broker_url, queue)


def worker_check(env: dict[str, str], **overrides: str) -> tuple[int, str]:
    changed = {**env, **{f"REMOVEANY_{k.upper()}": v for k, v in overrides.items()}}
    done = subprocess.run(
        [sys.executable, "-m", "removeany", "worker-check", "--timeout", "1"],
        env=changed,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return done.returncode, done.stdout + done.stderr


def test_worker_check_follows_a_real_worker(worker_env: dict[str, str], tmp_path: Path) -> None:
    queue = worker_env["REMOVEANY_QUEUE_NAME"]
    code, line = worker_check(worker_env)
    assert code == 1 and line.startswith("no worker celery@"), line

    with workers(worker_env, tmp_path) as pool:
        worker = pool.start(concurrency=1)
        deadline = time.monotonic() + 90
        while (answer := worker_check(worker_env))[0] != 0:
            assert time.monotonic() < deadline, f"{answer}\n{pool.log_tail()}"
            time.sleep(0.5)
        code, line = answer
        assert line.strip().endswith(f"answers and consumes the queue {queue}"), line
        assert line.count("\n") == 1

        code, line = worker_check(worker_env, queue_name="another-installation")
        assert code == 1 and "does not consume the queue another-installation" in line, line

        down = f"redis://:broker-password@127.0.0.1:{closed_port()}/0"
        code, line = worker_check(worker_env, broker_url=down)
        assert code == 1 and line.startswith("cannot reach the broker: "), line
        assert "broker-password" not in line

        pool.kill(worker)
        code, line = worker_check(worker_env)
        assert code == 1 and line.startswith("no worker celery@"), line


def test_worker_check_without_celery_says_there_is_no_worker(
    worker_env: dict[str, str],
) -> None:
    code, line = worker_check(worker_env, queue_backend="inline")
    assert code == 2 and "REMOVEANY_QUEUE_BACKEND is not celery" in line, line
