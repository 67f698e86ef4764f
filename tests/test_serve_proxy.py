"""`removeany serve` behind a reverse proxy: X-Forwarded-For is believed only from
REMOVEANY_TRUSTED_PROXIES, so records and per-IP throttles see the visitor, not the proxy,
and nobody else can forge their address."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import urllib.error
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


def test_the_access_log_has_no_tokens_keys_or_addresses_from_urls(
    tmp_path: Path, model_dir: Path
) -> None:
    """Emailed links and remove.bg's `?api_key=` put secrets in URLs: `serve`'s request log
    names the parameters, not their values."""
    port = _free_port()
    env = {
        **os.environ,
        "REMOVEANY_DATA_DIR": str(tmp_path / "data"),
        "REMOVEANY_MODEL_DIR": str(model_dir),
    }
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "removeany", "serve", "--port", str(port), "--no-workers"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            wait_until_serving(base)
            for path in (
                "/verify?token=eyJlIjoiYWRhQGV4YW1wbGUuY29tIn0.secret-signature",
                "/reset-password?token=single-use-reset-token",
                "/v1.0/account?api_key=rak_secretkeyvalue",
                "/api/v1/admin/audit?q=ada@example.com&limit=5",
            ):
                # refused or not found: the request is logged all the same
                with contextlib.suppress(urllib.error.HTTPError):
                    urllib.request.urlopen(f"{base}{path}", timeout=30).read()
        finally:
            server.terminate()
            server.wait(timeout=30)
    text_logged = log.read_text()
    assert '"GET /verify?token=[hidden] HTTP/1.1"' in text_logged, text_logged
    assert "/api/v1/admin/audit?q=[hidden]&limit=[hidden]" in text_logged
    for secret in ("eyJlIjoi", "single-use-reset-token", "rak_secretkeyvalue", "ada@example.com"):
        assert secret not in text_logged
