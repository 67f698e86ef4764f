"""A process started on a model directory without the weights it runs refuses to start
(exit 2, one `error:` line naming the setting), as docs/deployment.md promises: before, a
`removeany worker` pointed at an empty REMOVEANY_MODEL_DIR connected to Redis, took wake-ups
and failed every job it claimed (`service_unavailable`), and a web process answered every
try-out on the home page with 503 `engine_unavailable`."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from removeany.engine.models import U2NETP_INT8
from tests.batches._scale import forget_queue, redis_broker, settings_env
from tests.smtp import free_port


def _start(command: list[str], values: dict[str, object]) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            [sys.executable, "-m", "removeany", *command],
            env=settings_env(values),
            text=True,
            capture_output=True,
            timeout=60,  # before: the process started and ran on without its weights
            check=False,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"`removeany {' '.join(command)}` started without the model weights")


def test_a_worker_without_its_weights_refuses_to_start(tmp_path: Path, model_dir: Path) -> None:
    broker_url, queue = redis_broker()
    empty = tmp_path / "models"
    empty.mkdir()
    values: dict[str, object] = {
        "data_dir": tmp_path / "data",
        "model_dir": empty,
        "secret_key": "test-secret-key",
        "queue_backend": "celery",
        "broker_url": broker_url,
        "queue_name": queue,
    }
    try:
        done = _start(["worker", "--pool=solo", "--loglevel=warning"], values)
        assert done.returncode == 2, done.stderr
        assert "REMOVEANY_CUTOUT_MODEL (u2netp-int8)" in done.stderr
        assert "is missing" in done.stderr and f"REMOVEANY_MODEL_DIR ({empty})" in done.stderr
        assert "Traceback" not in done.stderr

        # The cutout model in place, the portrait model not: still refused, naming that one.
        shutil.copy(model_dir / U2NETP_INT8.filename, empty)
        shutil.copy(model_dir / f"{U2NETP_INT8.filename}.sha256", empty)
        done = _start(["worker", "--pool=solo", "--loglevel=warning"], values)
        assert done.returncode == 2, done.stderr
        assert "REMOVEANY_PORTRAIT_MODEL (u2net-int8)" in done.stderr

        # A damaged file is refused too (its hash was recorded when `models fetch` made it).
        target = empty / U2NETP_INT8.filename
        target.write_bytes(target.read_bytes()[:4096])
        done = _start(["worker", "--pool=solo", "--loglevel=warning"], values)
        assert done.returncode == 2, done.stderr
        assert "REMOVEANY_CUTOUT_MODEL (u2netp-int8)" in done.stderr
        assert "checksum" in done.stderr
    finally:
        forget_queue(broker_url, queue)


def test_a_web_process_needs_the_cutout_model_only_for_the_try_out(tmp_path: Path) -> None:
    empty = tmp_path / "models"
    empty.mkdir()
    values: dict[str, object] = {
        "data_dir": tmp_path / "data",
        "model_dir": empty,
        "secret_key": "test-secret-key",
    }
    serve = ["serve", "--no-workers", "--port", str(free_port())]
    done = _start(serve, values)
    assert done.returncode == 2, done.stderr
    assert "REMOVEANY_CUTOUT_MODEL (u2netp-int8)" in done.stderr
    assert "REMOVEANY_TRIAL_PER_IP_PER_HOUR=0" in done.stderr

    # With the try-out off, a web process runs no model: it starts (and serves until stopped).
    log = tmp_path / "serve.log"
    with log.open("w") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "removeany", *serve],
            env=settings_env({**values, "trial_per_ip_per_hour": 0}),
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            for _ in range(600):
                if "Application startup complete" in log.read_text() or server.poll() is not None:
                    break
                time.sleep(0.1)
            assert server.poll() is None, log.read_text()
            assert "Application startup complete" in log.read_text()
        finally:
            server.terminate()
            server.wait(timeout=30)
