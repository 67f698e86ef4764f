"""A request the server fails (a bug, a failing disk) is logged once, with its traceback.
Under `removeany serve` (uvicorn) every such traceback was logged twice: once by the app's
handler ("unhandled error on ...") and once more by uvicorn ("Exception in ASGI
application"), because Starlette raises the error again after the app's handler answered.
Reproduced with the real server, its own stderr read back, and a data folder damaged the
way a full or failing disk leaves it (a file where the originals folder should be), which
any upload then hits."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
import uuid
from pathlib import Path

from PIL import Image

from removeany.context import build_context
from removeany.infra.settings import Settings
from tests.helpers import make_api_key, make_user, wait_until_serving
from tests.test_serve_proxy import _free_port


def _png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 60, 40)).save(buffer, "PNG")
    return buffer.getvalue()


def _post_form(url: str, field: str, data: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
    boundary = uuid.uuid4().hex
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"; filename="a.png"\r\n'
            "Content-Type: image/png\r\n\r\n"
        ).encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    request = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={**headers, "Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as refused:
        return refused.code, refused.read()


def test_a_failed_request_is_logged_once_under_serve(tmp_path: Path, model_dir: Path) -> None:
    data_dir = tmp_path / "data"
    ctx = build_context(Settings(data_dir=data_dir, model_dir=model_dir), migrate=True)
    try:
        key = make_api_key(ctx, make_user(ctx, credits=10))
    finally:
        ctx.close()
    originals = data_dir / "files" / "originals"
    originals.parent.mkdir(parents=True, exist_ok=True)
    originals.write_bytes(b"not a folder")
    port = _free_port()
    env = {**os.environ, "REMOVEANY_DATA_DIR": str(data_dir), "REMOVEANY_MODEL_DIR": str(model_dir)}
    log_path = tmp_path / "serve.log"
    with log_path.open("wb") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "removeany", "serve", "--port", str(port), "--no-workers"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            wait_until_serving(base)
            removebg = _post_form(
                f"{base}/v1.0/removebg",
                "image_file",
                _png(),
                {"X-Api-Key": key, "X-Request-ID": "req-7f3a"},
            )
            api = _post_form(f"{base}/api/v1/jobs", "file", _png(), {"X-Api-Key": key})
        finally:
            server.terminate()
            server.wait(timeout=30)
    assert removebg[0] == 500 and api[0] == 500
    assert json.loads(removebg[1])["errors"][0]["code"] == "internal_error"
    assert json.loads(api[1])["error"]["code"] == "internal_error"
    output = log_path.read_text()
    assert output.count("Traceback (most recent call last)") == 2, output
    assert "Exception in ASGI application" not in output
    assert output.count("FileExistsError") == 2
    lines = [line for line in output.splitlines() if "unhandled error on" in line]
    assert lines == [
        "unhandled error on POST '/v1.0/removebg' (request id req-7f3a)",
        "unhandled error on POST '/api/v1/jobs'",
    ], output
