"""`removeany serve` behind a reverse proxy: X-Forwarded-For is believed only from
REMOVEANY_TRUSTED_PROXIES, so records and per-IP throttles see the visitor, not the proxy,
and nobody else can forge their address."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from tests.helpers import wait_until_serving


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _register_through(trusted: str, data_dir: Path, model_dir: Path) -> str:
    """Start serve with `trusted` proxies, register with a forwarded address, return the
    address the terms acceptance recorded."""
    port = _free_port()
    env = {
        **os.environ,
        "REMOVEANY_DATA_DIR": str(data_dir),
        "REMOVEANY_MODEL_DIR": str(model_dir),
        "REMOVEANY_TRUSTED_PROXIES": trusted,
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "removeany", "serve", "--port", str(port), "--no-workers"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        wait_until_serving(base)
        body = json.dumps(
            {"email": "visitor@example.com", "password": "a long enough pw", "accept_terms": True}
        ).encode()
        request = urllib.request.Request(
            f"{base}/api/v1/auth/register",
            data=body,
            method="POST",
            headers={"Content-Type": "application/json", "X-Forwarded-For": "203.0.113.7"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            assert response.status == 202
    finally:
        server.terminate()
        server.wait(timeout=30)
    engine = create_engine(f"sqlite:///{data_dir / 'removeany.db'}")
    with engine.connect() as conn:
        ip = conn.execute(text("SELECT ip FROM terms_acceptances")).scalar_one()
    engine.dispose()
    return str(ip)


@pytest.mark.parametrize(
    ("trusted", "recorded"),
    [("127.0.0.1", "203.0.113.7"), ("10.0.0.1", "127.0.0.1")],
    ids=["trusted-proxy", "untrusted-sender"],
)
def test_forwarded_address_only_from_trusted_proxies(
    tmp_path: Path, model_dir: Path, trusted: str, recorded: str
) -> None:
    assert _register_through(trusted, tmp_path / "data", model_dir) == recorded
