"""Real `removeany worker` processes (Celery on Redis) against a real database, for tests."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

REDIS_HOST = os.environ.get("REMOVEANY_TEST_REDIS_HOST", "127.0.0.1:6379")
REQUIRE = os.environ.get("REMOVEANY_REQUIRE_POSTGRES") == "1"


def redis_broker() -> tuple[str, str]:
    """A broker URL on a random Redis DB and a queue name of our own, so parallel test runs
    never share messages; skips (or fails where required) without Redis."""
    import redis

    url = f"redis://{REDIS_HOST}/{random.randint(1, 15)}"
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=2)
        client.ping()
        client.close()
    except Exception as exc:
        if REQUIRE:
            pytest.fail(f"Redis is required here but unreachable at {url}: {exc}")
        pytest.skip(f"Redis not reachable at {url}: {exc}")
    return url, f"removeany-test-{uuid.uuid4().hex[:12]}"


def forget_queue(url: str, queue: str) -> None:
    import redis

    client = redis.Redis.from_url(url)
    client.delete(queue)
    client.close()


def settings_env(values: dict[str, object]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REMOVEANY_")}
    env.update({f"REMOVEANY_{k.upper()}": str(v) for k, v in values.items()})
    return env


class Workers:
    """`removeany worker` processes, each in its own process group so a test can kill one
    outright (parent and pool children) like a machine dying."""

    def __init__(self, env: dict[str, str], logs: Path):
        self.env = env
        self.logs = logs
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, concurrency: int = 1, pool: str = "prefork") -> subprocess.Popen[bytes]:
        log = (self.logs / f"worker{len(self.procs)}.log").open("wb")
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "removeany",
                "worker",
                f"--concurrency={concurrency}",
                f"--pool={pool}",
                "--loglevel=warning",
            ],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.procs.append(proc)
        return proc

    def kill(self, proc: subprocess.Popen[bytes]) -> None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)

    def log_tail(self) -> str:
        return "\n".join(
            f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}"
            for p in sorted(self.logs.glob("worker*.log"))
        )


@contextmanager
def workers(env: dict[str, str], logs: Path) -> Iterator[Workers]:
    pool = Workers(env, logs)
    try:
        yield pool
    finally:
        pool.stop_all()
