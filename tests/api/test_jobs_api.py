"""The native job API: submit, follow, download; failures release their hold."""

from __future__ import annotations

import io
import json

from fastapi.testclient import TestClient
from PIL import Image

from removeany.context import Context
from tests.conftest import eval_image
from tests.helpers import make_api_key, make_user, wait_for_batch


def test_submit_poll_and_download(client: TestClient, ctx: Context) -> None:
    key = make_api_key(ctx, make_user(ctx, credits=3))
    headers = {"X-Api-Key": key}
    photo = eval_image("portrait", "davis16_breakdance_00008")
    response = client.post(
        "/api/v1/jobs",
        headers=headers,
        data={"wait": "true"},
        files={"file": (photo.name, photo.read_bytes())},
    )
    assert response.status_code == 202, response.text
    job = response.json()
    assert job["status"] == "succeeded" and job["charged"] == 1 == job["cost"]
    assert client.get(f"/api/v1/jobs/{job['id']}", headers=headers).json()["id"] == job["id"]
    result = client.get(job["result_url"], headers=headers)
    assert result.headers["content-type"] == "image/png"
    assert "attachment" in result.headers["content-disposition"]
    image = Image.open(io.BytesIO(result.content))
    assert image.mode == "RGBA" and image.size == (job["input_width"], job["input_height"])
    original = client.get(job["original_url"], headers=headers)
    assert original.content == photo.read_bytes()
    assert [j["id"] for j in client.get("/api/v1/jobs", headers=headers).json()] == [job["id"]]
    assert client.get("/api/v1/credits", headers=headers).json()["available"] == 2


def test_downloads_keep_names_in_any_language(client: TestClient, ctx: Context) -> None:
    """A photo named 照片.png (or é.png) could not be downloaded: its name went into the
    Content-Disposition header, whose values are Latin-1, and the answer was a 500. The same
    for a batch's results ZIP. The name now travels as RFC 6266's filename*."""
    headers = {"X-Api-Key": make_api_key(ctx, make_user(ctx, credits=5))}
    photo = io.BytesIO()
    Image.effect_noise((96, 72), 40).convert("RGB").save(photo, "PNG")
    for name, expected in (("照片.png", "%E7%85%A7%E7%89%87"), ("é.png", "%C3%A9")):
        job = client.post(
            "/api/v1/jobs",
            headers=headers,
            data={"wait": "true", "size": "preview"},
            files={"file": (name, photo.getvalue())},
        ).json()
        assert job["status"] == "succeeded", job
        result = client.get(job["result_url"], headers=headers)
        assert result.status_code == 200 and result.headers["content-type"] == "image/png"
        disposition = result.headers["content-disposition"]
        assert disposition == (
            f"attachment; filename=\"removeany.png\"; filename*=UTF-8''{expected}-removeany.png"
        )
    batch = client.post(
        "/api/v1/batches",
        headers=headers,
        data={"name": "旅行.zip", "options": json.dumps({"size": "preview"})},
        files={"files": ("a.png", photo.getvalue())},
    ).json()
    assert wait_for_batch(client, batch["id"], headers)["counts"]["succeeded"] == 1
    results = client.get(f"/api/v1/batches/{batch['id']}/results", headers=headers)
    assert results.status_code == 200
    assert results.headers["content-disposition"] == (
        "attachment; filename=\"results.zip\"; filename*=UTF-8''%E6%97%85%E8%A1%8C-results.zip"
    )


def test_jobs_are_private(client: TestClient, ctx: Context) -> None:
    owner = make_api_key(ctx, make_user(ctx, credits=3))
    other = make_api_key(ctx, make_user(ctx, "eve@example.com", credits=3))
    photo = eval_image("object", "alphamatting_GT03")
    job = client.post(
        "/api/v1/jobs",
        headers={"X-Api-Key": owner},
        data={"wait": "true"},
        files={"file": (photo.name, photo.read_bytes())},
    ).json()
    for path in (
        f"/api/v1/jobs/{job['id']}",
        f"/api/v1/jobs/{job['id']}/result",
        f"/api/v1/jobs/{job['id']}/original",
    ):
        assert client.get(path, headers={"X-Api-Key": other}).status_code == 404


def test_failed_job_releases_its_hold(client: TestClient, ctx: Context) -> None:
    key = make_api_key(ctx, make_user(ctx, credits=2))
    buf = io.BytesIO()
    Image.new("RGB", (300, 300), (10, 120, 10)).save(buf, "PNG")
    job = client.post(
        "/api/v1/jobs",
        headers={"X-Api-Key": key},
        data={"wait": "true"},
        files={"file": ("green.png", buf.getvalue())},
    ).json()
    assert job["status"] == "failed" and job["error_code"] == "unknown_foreground"
    assert job["charged"] == 0
    credits = client.get("/api/v1/credits", headers={"X-Api-Key": key}).json()
    assert credits["available"] == 2 and credits["held"] == 0
    assert [e["kind"] for e in credits["entries"]][:2] == ["release", "reserve"]


def test_openapi_describes_the_api(client: TestClient) -> None:
    spec = client.get("/api/openapi.json").json()
    assert "/v1.0/removebg" in spec["paths"] and "/api/v1/jobs" in spec["paths"]
    assert client.get("/api/docs").status_code == 200
