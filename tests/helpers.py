"""Small builders shared by tests: real users through the real services."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient

from removeany.accounts import service as accounts
from removeany.accounts.models import User
from removeany.context import Context
from removeany.credits import service as ledger
from removeany.legal import service as legal


def make_user(ctx: Context, email: str = "ada@example.com", *, credits: int = 10) -> User:
    with ctx.db.transaction() as session:
        user = accounts.create_user(
            session, email, "correct horse battery", now=ctx.now(), verified=True
        )
        legal.accept(session, user, legal.current(session).version, now=ctx.now())
        if credits:
            ledger.grant(
                session,
                user.id,
                credits,
                source="admin",
                now=ctx.now(),
                expires_at=ctx.now() + timedelta(days=365),
                reference="test",
            )
        return user


def make_api_key(ctx: Context, user: User) -> str:
    with ctx.db.transaction() as session:
        return accounts.create_api_key(session, user, "test", now=ctx.now())[0]


def wait_for_batch(
    client: TestClient, batch_id: str, headers: dict[str, str] | None = None
) -> dict[str, Any]:
    """Poll a batch (with an API key in ``headers``, or the client's session cookie, as
    batch.js's fallback does) until it is completed or cancelled."""
    deadline = time.monotonic() + 240
    batch: dict[str, Any] = {}
    while time.monotonic() < deadline:
        batch = client.get(f"/api/v1/batches/{batch_id}", headers=headers).json()
        if batch["status"] in ("completed", "cancelled"):
            return batch
        time.sleep(0.1)
    raise AssertionError(f"batch did not finish: {batch}")


def closed_port() -> int:
    """A local port nobody listens on: connections to it are refused at once (a service
    that is down)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def wait_until_serving(base: str, timeout: float = 60.0) -> None:
    """Until a `removeany serve` process at ``base`` answers (it migrates before it listens)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            urllib.request.urlopen(f"{base}/api/v1/prices", timeout=2).read()
            return
        except OSError:
            assert time.monotonic() < deadline, "serve did not start"
            time.sleep(0.2)


def removeany(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """The `removeany` command in a child process, as an operator runs it, with ``env``."""
    return subprocess.run(
        [sys.executable, "-m", "removeany", *args],
        env=env,
        text=True,
        capture_output=True,
        timeout=300,
        check=False,
    )


@contextmanager
def serving(env: dict[str, str], *options: str) -> Iterator[str]:
    """`removeany serve` (with ``options``) on a free local port in a child process until the
    block ends; its base URL once it answers."""
    port = closed_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "removeany", "serve", "--port", str(port), *options],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(base)
        yield base
    finally:
        server.terminate()
        server.wait(timeout=60)
