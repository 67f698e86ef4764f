"""Item 7: hostile input. Schemathesis generates requests (valid and invalid) for every
operation in the OpenAPI spec and none may answer 5xx; Hypothesis fuzzes uploads through the
real job path (API → storage → queue → worker) and no worker may crash."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from PIL import Image
from schemathesis import GenerationMode

from removeany.accounts.models import User
from removeany.api.uploads import BODY_LIMIT
from removeany.app import create_app
from removeany.context import Context
from tests.helpers import make_api_key, make_user

EXAMPLES = 6


@pytest.fixture
def app_client(ctx: Context) -> Iterator[TestClient]:
    with TestClient(create_app(ctx)) as client:
        yield client


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_no_operation_answers_5xx(app_client: TestClient, ctx: Context) -> None:
    key = make_api_key(ctx, make_user(ctx, credits=50))
    admin = make_user(ctx, "root@example.com", credits=0)
    with ctx.db.transaction() as s:
        row = s.get(User, admin.id)
        assert row is not None
        row.is_admin = True
    admin_key = make_api_key(ctx, admin)
    schema = schemathesis.openapi.from_asgi("/api/openapi.json", app_client.app)
    failures: list[str] = []
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 20
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            try:
                # Admin operations run as an admin, so the fuzzer gets past the role check.
                who = admin_key if operation.path.startswith("/api/v1/admin") else key
                fuzz(operation, mode, who, failures)
            except Unsatisfiable:  # nothing to make invalid (no parameters, no body)
                assert mode is GenerationMode.NEGATIVE, operation.label
    assert failures == [], "\n".join(failures[:20])


def fuzz(operation: Any, mode: GenerationMode, key: str, failures: list[str]) -> None:
    """Up to EXAMPLES generated requests for one operation; 5xx answers are collected."""

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    def call(case: schemathesis.Case) -> None:
        response = case.call(headers={"X-Api-Key": key})
        if response.status_code >= 500:
            failures.append(
                f"{operation.label} [{mode.value}] -> {response.status_code}: {response.text[:200]}"
            )

    call()


def _image(draw: st.DrawFn) -> bytes:
    fmt = draw(st.sampled_from(["PNG", "JPEG", "WEBP", "GIF", "BMP", "TIFF"]))
    w, h = draw(st.integers(1, 48)), draw(st.integers(1, 48))
    mode = draw(st.sampled_from(["RGB", "RGBA", "L", "P", "1", "LA"]))
    image = Image.new(mode, (w, h), draw(st.integers(0, 255)) if mode in ("L", "P", "1") else None)
    buffer = io.BytesIO()
    try:
        image.save(buffer, fmt)
    except (OSError, ValueError):  # this format cannot hold this mode: save it as RGB
        buffer = io.BytesIO()
        image.convert("RGB").save(buffer, fmt)
    return buffer.getvalue()


@st.composite
def uploads(draw: st.DrawFn) -> bytes:
    data = _image(draw)
    how = draw(st.sampled_from(["as is", "truncate", "flip bytes", "append", "random"]))
    if how == "truncate":
        return data[: draw(st.integers(0, max(len(data) - 1, 0)))]
    if how == "flip bytes":
        buf = bytearray(data)
        for _ in range(draw(st.integers(1, 8))):
            i = draw(st.integers(0, len(buf) - 1))
            buf[i] = draw(st.integers(0, 255))
        return bytes(buf)
    if how == "append":
        return data + draw(st.binary(max_size=256))
    if how == "random":
        return draw(st.sampled_from([b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"RIFF", b""])) + (
            draw(st.binary(max_size=512))
        )
    return data


class CrashWatch(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_fuzzed_uploads_never_crash_a_worker(app_client: TestClient, ctx: Context) -> None:
    key = make_api_key(ctx, make_user(ctx, credits=10_000))
    watch = CrashWatch()
    for name in ("removeany", "removeany.infra.queue", "removeany.jobs.worker"):
        logging.getLogger(name).addHandler(watch)
    statuses: set[str] = set()

    @given(data=uploads(), fmt=st.sampled_from(["png", "jpg", "webp"]))
    @settings(
        max_examples=40,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    def upload(data: bytes, fmt: str) -> None:
        r = app_client.post(
            "/api/v1/jobs",
            headers={"X-Api-Key": key},
            files={"file": ("x", data, "application/octet-stream")},
            data={"wait": "true", "format": fmt, "size": "preview"},
        )
        assert r.status_code in (202, 400), r.text
        if r.status_code == 202:
            job = r.json()
            statuses.add(job["status"])
            assert job["status"] in ("succeeded", "failed"), job
            assert job["error_code"] != "processing_failed", job
            if job["status"] == "failed":
                assert job["charged"] == 0
        else:
            assert r.json()["error"]["code"]

    try:
        upload()
    finally:
        for name in ("removeany", "removeany.infra.queue", "removeany.jobs.worker"):
            logging.getLogger(name).removeHandler(watch)
    crashes = [r.getMessage() for r in watch.records if "crash" in r.getMessage()]
    assert crashes == []
    assert "failed" in statuses  # uploads that decode but have no subject reached the worker
    # The worker is still alive: a photo with a subject still works.
    image = Image.new("RGB", (64, 48), (240, 240, 240))
    image.paste((20, 90, 200), (20, 12, 44, 36))
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    r = app_client.post(
        "/api/v1/jobs",
        headers={"X-Api-Key": key},
        files={"file": ("ok.png", buffer.getvalue(), "image/png")},
        data={"wait": "true"},
    )
    assert r.json()["status"] == "succeeded"


def test_request_bodies_are_bounded(app_client: TestClient, ctx: Context) -> None:
    """FastAPI reads a JSON body whole before validating it: a sign-in of 200 MB, from
    anyone, held 200 MB of the server's memory before its 422. Bodies are now refused past
    a bound (413) before they are read; routes that take files or long texts allow those."""
    big = b'{"email": "ada@example.com", "password": "' + b"x" * BODY_LIMIT + b'"}'
    json_type = {"Content-Type": "application/json"}
    for path in ("/api/v1/auth/login", "/api/v1/auth/register", "/api/v1/auth/password-reset"):
        refused = app_client.post(path, content=big, headers=json_type)
        assert refused.status_code == 413, path
        # In the API's shape, with a sentence saying what to do (not a bare "Content Too Large").
        assert refused.json()["error"]["code"] == "request_too_large"
        assert "Send a smaller file" in refused.json()["error"]["message"]
    # A remove.bg client gets remove.bg's shape and code.
    huge = b"x" * (3 * ctx.settings.max_upload_bytes + BODY_LIMIT + 1)
    removebg = app_client.post("/v1.0/removebg", files={"image_file": ("big.png", huge)})
    assert removebg.status_code == 413
    assert removebg.json()["errors"][0]["code"] == "file_too_large"

    def chunked() -> Iterator[bytes]:  # no Content-Length to refuse it by
        yield b'{"email": "ada@example.com", "password": "'
        for _ in range(BODY_LIMIT // 65536 + 1):
            yield b"x" * 65536
        yield b'"}'

    refused = app_client.post("/api/v1/auth/login", content=chunked(), headers=json_type)
    assert refused.status_code == 413
    form = {"email": "x" * 900_000, "other": "y" * 900_000}
    assert app_client.post("/forgot-password", data=form).status_code == 413
    # A sign-in of the usual size is answered as before; new terms may be long texts.
    wrong = app_client.post(
        "/api/v1/auth/login", json={"email": "ada@example.com", "password": "not it at all"}
    )
    assert wrong.status_code == 401
    long_terms = {"summary": "s", "terms_en": "t" * 180_000, "terms_zh": "条" * 180_000}
    long_terms |= {"privacy_en": "p" * 180_000, "privacy_zh": "隐" * 180_000}
    terms = app_client.post("/api/v1/admin/legal", json=long_terms)
    assert len(terms.request.content) > BODY_LIMIT and terms.status_code == 401
    # A photo as large as uploads may be is read, not refused by the bound.
    user = make_user(ctx)
    photo = io.BytesIO()
    Image.effect_noise((1024, 1024), 64).convert("RGB").save(photo, "PNG")
    assert len(photo.getvalue()) > BODY_LIMIT
    job = app_client.post(
        "/api/v1/jobs",
        headers={"X-Api-Key": make_api_key(ctx, user)},
        files={"file": ("big.png", photo.getvalue())},
    )
    assert job.status_code == 202, job.text
