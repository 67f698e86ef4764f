"""Trying the service on the home page without an account: a preview-size cut-out made in the
request, never stored, limited per address, with the JSON API's error codes and sentences."""

from __future__ import annotations

import base64
import io
import json
import re
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import func, select

from removeany.context import Context
from removeany.credits.models import CreditEntry
from removeany.infra.settings import Settings
from removeany.jobs.models import Job
from removeany.moderation import service as moderation
from removeany.moderation.audit import Actor
from tests.conftest import TestClock, eval_image
from tests.engine._colour import wide_gamut_profile
from tests.helpers import make_api_key, make_user
from tests.web.test_pages import form_token, text_of

LIMIT = 2
JSON = {"Accept": "application/json"}


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """A low try-out limit, and a small upload limit to test "too large" cheaply."""
    return settings.model_copy(
        update={"trial_per_ip_per_hour": LIMIT, "max_upload_bytes": 2 * 1024 * 1024}
    )


def _try(
    client: TestClient, data: bytes, name: str = "photo.jpg", *, as_json: bool = True
) -> tuple[int, dict[str, str], str]:
    token = form_token(client.get("/").text)
    response = client.post(
        "/try",
        data={"csrf_token": token},
        files={"file": (name, data)},
        headers=JSON if as_json else {},
    )
    return response.status_code, dict(response.headers), response.text


def _stored_files(ctx: Context) -> list[Path]:
    root = ctx.settings.files_dir
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


def _decode(data_url: str) -> Image.Image:
    prefix = "data:image/png;base64,"
    assert data_url.startswith(prefix)
    return Image.open(io.BytesIO(base64.b64decode(data_url[len(prefix) :])))


def test_home_page_offers_the_try_out(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200
    text = text_of(page.text)
    assert "Try it now, no account needed" in text
    assert "not stored" in text
    assert 'action="/try#try"' in page.text and 'name="csrf_token"' in page.text


def test_a_visitor_gets_a_preview_and_nothing_is_stored(client: TestClient, ctx: Context) -> None:
    photo = eval_image("object", "davis16_dog_00030")
    with Image.open(photo) as original:
        width, height = original.size
    assert width * height > 250_000  # so the preview really is scaled down

    status, _, body = _try(client, photo.read_bytes(), photo.name)
    assert status == 200, body
    out = json.loads(body)
    preview = _decode(out["result"])
    assert preview.format == "PNG" and preview.mode == "RGBA"
    assert preview.size == (out["width"], out["height"])
    assert preview.width * preview.height <= 250_000
    assert abs(preview.width / preview.height - width / height) < 0.01
    low, high = preview.getchannel("A").getextrema()
    assert low == 0 and high == 255, "the background is transparent, the subject opaque"
    assert out["tries_left"] == LIMIT - 1

    # Without JavaScript: the home page again, with the comparison and the call to action.
    status, _, page = _try(client, photo.read_bytes(), photo.name, as_json=False)
    assert status == 200
    text = text_of(page)
    assert "Your preview" in text
    assert "Sign up free to download full size" in text
    assert "No free tries left this hour." in text
    assert page.count("data:image/") == 2  # before and after, inline

    # Nothing was kept: no file, no job, no credit movement.
    assert _stored_files(ctx) == []
    with ctx.db.transaction() as session:
        assert session.scalar(select(func.count()).select_from(Job)) == 0
        assert session.scalar(select(func.count()).select_from(CreditEntry)) == 0


def test_a_tagged_photo_is_shown_in_its_colours_before_and_after(client: TestClient) -> None:
    """Without JavaScript the page shows the photo and its cut-out side by side, both from
    the server: the photo's colour profile is on both (the "before" JPEG had none while the
    cut-out kept it, so a wide-gamut photo's colours jumped across the slider)."""
    with Image.open(eval_image("object", "davis16_dog_00030")) as im:
        photo = io.BytesIO()
        im.save(photo, "JPEG", quality=95, icc_profile=wide_gamut_profile())
    status, _, page = _try(client, photo.getvalue(), "dog.jpg", as_json=False)
    assert status == 200, page
    urls = re.findall(r'src="(data:image/[a-z]+;base64,[^"]+)"', page)
    assert len(urls) == 2
    for url in urls:
        data = base64.b64decode(url.split(",", 1)[1])
        with Image.open(io.BytesIO(data)) as shown:
            assert shown.info.get("icc_profile") == wide_gamut_profile(), shown.format


def test_tries_are_limited_per_address(client: TestClient, ctx: Context, clock: TestClock) -> None:
    ctx.clock = clock
    photo = eval_image("object", "davis16_dog_00030").read_bytes()
    for _ in range(LIMIT):
        assert _try(client, photo)[0] == 200

    status, headers, body = _try(client, photo)
    assert status == 429
    error = json.loads(body)["error"]
    assert error["code"] == "trial_limit_reached"
    assert f"You have used the {LIMIT} free tries of this hour." in error["message"]
    assert "Sign up free" in error["message"]
    assert 1 <= int(headers["retry-after"]) <= 3600

    status, _, page = _try(client, photo, as_json=False)
    assert status == 429
    assert f"You have used the {LIMIT} free tries of this hour." in text_of(page)

    # An hour later the address may try again.
    clock.now += timedelta(hours=1, seconds=1)
    assert _try(client, photo)[0] == 200


def test_bad_files_get_the_api_codes_and_sentences(client: TestClient, ctx: Context) -> None:
    key = make_api_key(ctx, make_user(ctx, credits=5))
    truncated = eval_image("object", "davis16_dog_00030").read_bytes()[:5000]
    cases = {
        "unsupported_format": b"%PDF-1.4 not an image at all",
        "corrupt_image": truncated,
        "file_too_large": b"\xff\xd8\xff" + b"0" * (2 * 1024 * 1024),
    }
    for code, data in cases.items():
        api = client.post(
            "/api/v1/jobs", headers={"X-Api-Key": key}, files={"file": ("bad.jpg", data)}
        )
        assert api.status_code == 400 and api.json()["error"]["code"] == code, api.text
        status, _, body = _try(client, data, "bad.jpg")
        assert status == 400, body
        assert json.loads(body)["error"] == api.json()["error"]
        # The page without JavaScript shows the same sentence.
        status, _, page = _try(client, data, "bad.jpg", as_json=False)
        assert status == 400
        assert api.json()["error"]["message"] in text_of(page)

    # A photo without a subject: the engine's code, as a job of the API would fail with.
    buf = io.BytesIO()
    Image.new("RGB", (300, 300), (10, 120, 10)).save(buf, "PNG")
    status, _, body = _try(client, buf.getvalue(), "green.png")
    assert status == 400
    assert json.loads(body)["error"]["code"] == "unknown_foreground"
    assert _stored_files(ctx) == []


def test_the_form_needs_its_token_and_a_file(client: TestClient) -> None:
    client.get("/")
    photo = eval_image("object", "davis16_dog_00030").read_bytes()
    forged = client.post(
        "/try", data={"csrf_token": "forged"}, files={"file": ("a.jpg", photo)}, headers=JSON
    )
    assert forged.status_code == 403
    assert forged.json()["error"]["code"] == "csrf_failed"

    token = form_token(client.get("/").text)
    empty = client.post("/try", data={"csrf_token": token}, headers=JSON)
    assert empty.status_code == 422
    assert json.loads(empty.text)["error"]["code"] == "invalid_request"


def test_the_try_out_can_be_turned_off(client: TestClient, ctx: Context) -> None:
    ctx.settings.trial_per_ip_per_hour = 0
    page = client.get("/")
    assert 'action="/try' not in page.text
    assert "Sign up" in page.text
    token = form_token(client.get("/register").text)
    response = client.post(
        "/try",
        data={"csrf_token": token},
        files={"file": ("a.jpg", eval_image("object", "davis16_dog_00030").read_bytes())},
        headers=JSON,
    )
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "trial_disabled"


@pytest.mark.parametrize("status", ["suspended", "disabled"])
def test_no_try_while_background_removal_is_off(
    client: TestClient, ctx: Context, status: str
) -> None:
    """The operator's switch for the service covers its free try as well; no try is used."""
    with ctx.db.transaction() as session:
        moderation.set_service_status(
            session,
            Actor(None, "operator"),
            "remove_background",
            status,
            "Back at 14:00 UTC.",
            "upgrade",
            now=ctx.now(),
        )
    photo = eval_image("object", "davis16_dog_00030").read_bytes()
    code, _, body = _try(client, photo)
    assert code == 503 and json.loads(body)["error"]["code"] == f"service_{status}"
    with ctx.db.transaction() as session:
        moderation.set_service_status(
            session,
            Actor(None, "operator"),
            "remove_background",
            "active",
            "",
            "back",
            now=ctx.now(),
        )
    assert _try(client, photo)[0] == 200  # the refused request used none of the tries
    assert _try(client, photo)[0] == 200
