"""`POST /v1.0/removebg` as remove.bg's clients use it, on real photos and the real model."""

from __future__ import annotations

import base64
import io
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from httpx2 import Response
from PIL import Image
from sqlalchemy import func, select

from removeany.api.removebg import prefers_json
from removeany.context import Context
from removeany.credits import service as ledger
from removeany.engine.compose import foreground_box
from tests.conftest import eval_image
from tests.engine._colour import convert, srgb_profile, wide_gamut_profile
from tests.helpers import make_api_key, make_user


@pytest.fixture
def photo() -> bytes:
    return eval_image("object", "alphamatting_GT01").read_bytes()


@pytest.fixture
def api_key(ctx: Context) -> str:
    return make_api_key(ctx, make_user(ctx, credits=5))


def balance(ctx: Context, email: str = "ada@example.com") -> int:
    from removeany.accounts import repository

    with ctx.db.transaction() as s:
        user = repository.user_by_email(s, email)
        assert user is not None
        return ledger.balance(s, user.id, ctx.now()).available


def stored_files(ctx: Context) -> list[Path]:
    return [p for p in ctx.settings.files_dir.rglob("*") if p.is_file()]


def test_full_size_png_with_headers(
    client: TestClient, ctx: Context, api_key: str, photo: bytes
) -> None:
    response = client.post(
        "/v1.0/removebg",
        headers={"X-Api-Key": api_key},
        files={"image_file": ("GT01.png", photo, "image/png")},
        data={"size": "full"},
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/png"
    assert response.headers["X-Credits-Charged"] == "1"
    result = Image.open(io.BytesIO(response.content))
    original = Image.open(io.BytesIO(photo))
    assert result.mode == "RGBA" and result.size == original.size
    assert (response.headers["X-Width"], response.headers["X-Height"]) == tuple(
        str(v) for v in original.size
    )
    alpha = np.asarray(result.getchannel("A"))
    truth = (
        np.asarray(
            Image.open(
                eval_image("object", "alphamatting_GT01").with_name("alphamatting_GT01.alpha.png")
            ).convert("L")
        )
        >= 128
    )
    iou = np.logical_and(alpha >= 128, truth).sum() / np.logical_or(alpha >= 128, truth).sum()
    assert iou > 0.6
    assert int(response.headers["X-Foreground-Width"]) > 0
    assert balance(ctx) == 4


def test_preview_jpg_on_a_colour_via_base64(client: TestClient, api_key: str, photo: bytes) -> None:
    response = client.post(
        "/v1.0/removebg",
        headers={"X-Api-Key": api_key},
        data={
            "image_file_b64": base64.b64encode(photo).decode(),
            "size": "preview",
            "format": "jpg",
            "bg_color": "81d4fa",
            "crop": "true",
        },
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/jpeg"
    result = Image.open(io.BytesIO(response.content))
    assert result.mode == "RGB"
    assert result.width * result.height <= 250_000
    pixels = np.asarray(result).reshape(-1, 3).astype(int)
    on_colour = (np.abs(pixels - [0x81, 0xD4, 0xFA]).max(axis=1) < 12).mean()
    assert on_colour > 0.02, "the background colour should show around the subject"


def test_json_answer_when_asked(client: TestClient, api_key: str, photo: bytes) -> None:
    response = client.post(
        "/v1.0/removebg",
        headers={"X-Api-Key": api_key, "Accept": "application/json"},
        files={"image_file": ("a.png", photo)},
        data={"size": "preview"},
    )
    assert response.status_code == 200
    data = response.json()["data"]
    result = Image.open(io.BytesIO(base64.b64decode(data["result_b64"])))
    assert result.mode == "RGBA"
    assert data["foreground_width"] > 0


def test_json_request_body_as_remove_bg_clients_send_it(
    client: TestClient, ctx: Context, api_key: str, photo: bytes
) -> None:
    response = client.post(
        "/v1.0/removebg",
        headers={"X-Api-Key": api_key},
        json={
            "image_file_b64": base64.b64encode(photo).decode(),
            "size": "preview",
            "format": "png",
            "crop": True,
        },
    )
    assert response.status_code == 200, response.text
    assert response.headers["X-Credits-Charged"] == "1"
    result = Image.open(io.BytesIO(response.content))
    with Image.open(io.BytesIO(photo)) as original:
        assert result.mode == "RGBA"
        assert result.width < original.width, "crop: true should trim to the subject"
    assert balance(ctx) == 4


def test_zip_format_holds_colour_and_alpha(client: TestClient, api_key: str, photo: bytes) -> None:
    import zipfile

    response = client.post(
        "/v1.0/removebg",
        headers={"X-Api-Key": api_key},
        files={"image_file": ("GT01.png", photo, "image/png")},
        data={"size": "preview", "format": "zip"},
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        color = Image.open(io.BytesIO(archive.read("color.jpg")))
        alpha = Image.open(io.BytesIO(archive.read("alpha.png")))
    assert color.mode == "RGB" and alpha.mode == "L" and color.size == alpha.size
    matte = np.asarray(alpha)
    assert (matte > 250).mean() > 0.05 and (matte < 5).mean() > 0.05


def test_type_person_takes_the_portrait_path_and_is_reported(
    client: TestClient, api_key: str
) -> None:
    portrait = eval_image("portrait", "davis16_parkour_00050").read_bytes()
    response = client.post(
        "/v1.0/removebg",
        headers={"X-Api-Key": api_key},
        files={"image_file": ("p.jpg", portrait, "image/jpeg")},
        data={"size": "preview", "type": "person"},
    )
    assert response.status_code == 200, response.text
    assert response.headers["X-Type"] == "person"
    product = client.post(
        "/v1.0/removebg",
        headers={"X-Api-Key": api_key},
        files={"image_file": ("p.jpg", portrait, "image/jpeg")},
        data={"size": "preview", "type": "product"},
    )
    assert product.headers["X-Type"] == "product"


def test_background_image_roi_position_and_shadow(
    client: TestClient, api_key: str, photo: bytes
) -> None:
    backdrop = io.BytesIO()
    Image.new("RGB", (300, 200), (10, 200, 30)).save(backdrop, "PNG")
    response = client.post(
        "/v1.0/removebg",
        headers={"X-Api-Key": api_key},
        files={
            "image_file": ("GT01.png", photo, "image/png"),
            "bg_image_file": ("green.png", backdrop.getvalue(), "image/png"),
        },
        data={"size": "preview", "scale": "50%", "position": "0% 100%", "add_shadow": "true"},
    )
    assert response.status_code == 200, response.text
    result = np.asarray(Image.open(io.BytesIO(response.content)).convert("RGB")).astype(int)
    height, width = result.shape[:2]
    green = np.abs(result - [10, 200, 30]).max(axis=2) < 12
    assert green[: height // 3, width // 2 :].mean() > 0.95, "top right is all backdrop"
    assert green[height // 2 :, : width // 2].mean() < 0.8, "the subject sits bottom left"
    roi = client.post(
        "/v1.0/removebg",
        headers={"X-Api-Key": api_key},
        files={"image_file": ("GT01.png", photo, "image/png")},
        data={"size": "preview", "roi": "0% 0% 30% 100%"},
    )
    alpha = np.asarray(Image.open(io.BytesIO(roi.content)).getchannel("A"))
    assert alpha[:, int(alpha.shape[1] * 0.31) :].max() == 0


@pytest.mark.parametrize("backdrop_profile", [None, "wide"])
def test_a_tagged_photo_keeps_its_colours_in_front_of_a_backdrop(
    client: TestClient, api_key: str, photo: bytes, backdrop_profile: str | None
) -> None:
    """A photo in a wide-gamut profile keeps it on a result with a background (the profile
    was dropped, so its colours shifted), and the backdrop shows its own colours: it was
    stored without its profile and pasted as plain values."""
    wide = wide_gamut_profile()
    tagged = io.BytesIO()
    Image.open(io.BytesIO(photo)).save(tagged, "PNG", icc_profile=wide)
    backdrop = io.BytesIO()
    Image.new("RGB", (300, 200), (10, 200, 30)).save(
        backdrop, "PNG", icc_profile=wide if backdrop_profile else None
    )
    response = client.post(
        "/v1.0/removebg",
        headers={"X-Api-Key": api_key},
        files={
            "image_file": ("GT01.png", tagged.getvalue(), "image/png"),
            "bg_image_file": ("green.png", backdrop.getvalue(), "image/png"),
        },
        data={"size": "preview", "format": "png"},
    )
    assert response.status_code == 200, response.text
    result = Image.open(io.BytesIO(response.content))
    assert result.info.get("icc_profile") == wide
    corner = np.asarray(result.convert("RGB"))[:10, :10].reshape(-1, 3).astype(int)
    if backdrop_profile:  # the same colour space: the same values
        assert np.abs(corner - (10, 200, 30)).max() <= 3
    else:  # seen in sRGB, the colour the backdrop was
        seen = np.asarray(convert(result, wide, srgb_profile()))[:10, :10].reshape(-1, 3)
        assert np.abs(seen.astype(int) - (10, 200, 30)).max() <= 3


@pytest.mark.parametrize(
    ("field", "value", "code"),
    [
        ("roi", "0 0 10", "invalid_roi"),
        ("scale", "500%", "invalid_scale"),
        ("position", "somewhere", "invalid_position"),
        ("type", "spaceship", "invalid_type"),
        ("bg_image_url", "https://example.com/bg.jpg", "image_url_unsupported"),
    ],
)
def test_bad_cutout_options_are_400_and_cost_nothing(
    client: TestClient, ctx: Context, api_key: str, photo: bytes, field: str, value: str, code: str
) -> None:
    response = client.post(
        "/v1.0/removebg",
        headers={"X-Api-Key": api_key},
        files={"image_file": ("GT01.png", photo, "image/png")},
        data={"size": "preview", field: value},
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] == code
    assert balance(ctx) == 5


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"{not json", "invalid_json"),
        (b"[1, 2]", "invalid_json"),
        (b'{"image_file_b64": {"nested": 1}}', "invalid_json"),
        (b'{"size": "preview"}', "missing_source"),
    ],
)
def test_bad_json_bodies_are_400_and_cost_nothing(
    client: TestClient, ctx: Context, api_key: str, body: bytes, code: str
) -> None:
    response = client.post(
        "/v1.0/removebg",
        headers={"X-Api-Key": api_key, "Content-Type": "application/json"},
        content=body,
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] == code
    assert balance(ctx) == 5


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        (b"this is a text file, not an image", "invalid_file_type"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, "failed_to_read_image"),
    ],
)
def test_bad_files_are_400_and_cost_nothing(
    client: TestClient, ctx: Context, api_key: str, payload: bytes, code: str
) -> None:
    response = client.post(
        "/v1.0/removebg", headers={"X-Api-Key": api_key}, files={"image_file": ("x.png", payload)}
    )
    assert response.status_code == 400
    error = response.json()["errors"][0]
    assert error["code"] == code and error["title"] and error["detail"].endswith(".")
    assert balance(ctx) == 5
    assert stored_files(ctx) == []


def test_truncated_jpeg_is_refused(client: TestClient, ctx: Context, api_key: str) -> None:
    buf = io.BytesIO()
    Image.open(eval_image("object", "alphamatting_GT02")).convert("RGB").save(buf, "JPEG")
    jpeg = buf.getvalue()[: len(buf.getvalue()) // 2]
    response = client.post(
        "/v1.0/removebg", headers={"X-Api-Key": api_key}, files={"image_file": ("half.jpg", jpeg)}
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] == "failed_to_read_image"
    assert balance(ctx) == 5 and stored_files(ctx) == []


def test_over_the_byte_and_pixel_limits(
    client: TestClient, ctx: Context, api_key: str, photo: bytes
) -> None:
    ctx.settings.max_upload_bytes = len(photo) - 1
    response = client.post(
        "/v1.0/removebg", headers={"X-Api-Key": api_key}, files={"image_file": ("a.png", photo)}
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] == "file_too_large"
    ctx.settings.max_upload_bytes = 10 * len(photo)
    ctx.settings.max_upload_pixels = 1000
    response = client.post(
        "/v1.0/removebg", headers={"X-Api-Key": api_key}, files={"image_file": ("a.png", photo)}
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] == "resolution_too_high"
    assert balance(ctx) == 5 and stored_files(ctx) == []


def test_decompression_bomb_is_refused(client: TestClient, ctx: Context, api_key: str) -> None:
    buf = io.BytesIO()
    Image.new("L", (20000, 20000), 0).save(buf, "PNG", optimize=True)
    assert len(buf.getvalue()) < 1_000_000
    response = client.post(
        "/v1.0/removebg",
        headers={"X-Api-Key": api_key},
        files={"image_file": ("bomb.png", buf.getvalue())},
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] == "resolution_too_high"
    assert balance(ctx) == 5 and stored_files(ctx) == []


def test_no_subject_fails_without_charge(client: TestClient, ctx: Context, api_key: str) -> None:
    buf = io.BytesIO()
    Image.new("RGB", (400, 300), (200, 200, 200)).save(buf, "PNG")
    response = client.post(
        "/v1.0/removebg",
        headers={"X-Api-Key": api_key},
        files={"image_file": ("flat.png", buf.getvalue())},
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] == "unknown_foreground"
    assert balance(ctx) == 5


def test_bad_key_is_403_and_no_credits_is_402(
    client: TestClient, ctx: Context, photo: bytes
) -> None:
    response = client.post(
        "/v1.0/removebg", headers={"X-Api-Key": "rak_wrong"}, files={"image_file": ("a.png", photo)}
    )
    assert response.status_code == 403
    assert response.json()["errors"][0]["code"] == "auth_failed"
    broke = make_api_key(ctx, make_user(ctx, "broke@example.com", credits=0))
    response = client.post(
        "/v1.0/removebg", headers={"X-Api-Key": broke}, files={"image_file": ("a.png", photo)}
    )
    assert response.status_code == 402
    error = response.json()["errors"][0]
    assert error["code"] == "insufficient_credits" and error["title"] == "Insufficient credits"
    assert "Buy more" in error["detail"]
    assert stored_files(ctx) == []


def test_invalid_option_is_400_before_charging(
    client: TestClient, ctx: Context, api_key: str, photo: bytes
) -> None:
    response = client.post(
        "/v1.0/removebg",
        headers={"X-Api-Key": api_key},
        files={"image_file": ("a.png", photo)},
        data={"bg_color": "nope!"},
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] == "invalid_bg_color"
    assert balance(ctx) == 5


def test_account_reports_bought_and_granted_credits(
    client: TestClient, ctx: Context, api_key: str
) -> None:
    """remove.bg clients ask `GET /v1.0/account` what they may still spend."""
    from datetime import timedelta

    from removeany.accounts import repository

    with ctx.db.transaction() as s:
        user = repository.user_by_email(s, "ada@example.com")
        assert user is not None
        for amount, source, days in ((20, "purchase", 365), (7, "purchase", -1), (3, "promo", 30)):
            ledger.grant(
                s, user.id, amount, source=source, now=ctx.now() - timedelta(days=2),
                expires_at=ctx.now() + timedelta(days=days),
            )  # fmt: skip
    response = client.get("/v1.0/account", headers={"X-Api-Key": api_key})
    assert response.status_code == 200, response.text
    # 5 admin + 3 promo credits granted, 20 bought; the 7 bought ones have expired. As on
    # remove.bg, `total` is the sum of the three kinds of credits, and `free_calls` (free
    # previews, which cost credits here) are extra: clients add them up, and granted credits
    # counted in both places would show 36 where 28 can be spent.
    assert response.json() == {
        "data": {
            "attributes": {
                "credits": {"total": 28, "subscription": 8, "payg": 20, "enterprise": 0},
                "api": {"free_calls": 0, "sizes": "all"},
            }
        }
    }
    assert balance(ctx) == 28
    response = client.get("/v1.0/account", headers={"X-Api-Key": "rak_wrong"})
    assert response.status_code == 403
    assert response.json()["errors"][0]["code"] == "auth_failed"
    response = client.get("/v1.0/account")
    assert response.status_code == 403
    assert response.json()["errors"][0]["code"] == "auth_failed"


# --- remove.bg's documented behaviour, as its clients rely on it -----------------------------


@pytest.fixture
def many_credits_key(ctx: Context) -> str:
    return make_api_key(ctx, make_user(ctx, "bea@example.com", credits=40))


def removebg(
    client: TestClient, key: str, photo: bytes, data: dict[str, str], accept: str | None = None
) -> Response:
    headers = {"X-Api-Key": key} | ({"Accept": accept} if accept is not None else {})
    response = client.post(
        "/v1.0/removebg",
        headers=headers,
        files={"image_file": ("GT01.png", photo, "image/png")},
        data=data,
    )
    assert response.status_code == 200, response.text
    return response


def header_box(response: Response) -> tuple[int, ...]:
    return tuple(
        int(response.headers[f"X-Foreground-{side}"]) for side in ("Left", "Top", "Width", "Height")
    )


def subject_box(result: bytes) -> tuple[int, ...]:
    """Where the subject is in a returned RGBA image (the engine's own threshold)."""
    return foreground_box(np.asarray(Image.open(io.BytesIO(result)).getchannel("A")))


@pytest.mark.parametrize(
    ("accept", "json_wanted"),
    [
        ("application/json", True),
        ("application/json, text/plain, */*", False),  # axios's default
        ("image/png, application/json;q=0.1", False),
        ("image/*", False),
        ("", False),
        ("*/*;q=0.1, application/json", True),
        ("application/json;q=0.9, image/*;q=0.5", True),
        ("application/*", True),
        ("application/json;q=0, */*", False),
        ("application/json;q=abc, image/png", False),
        ("nonsense, application/json", True),
    ],
)
def test_accept_is_weighed_by_q_values(accept: str, json_wanted: bool) -> None:
    assert prefers_json(accept, "image/png") is json_wanted


@pytest.mark.parametrize(
    "accept", ["application/json, text/plain, */*", "image/png, application/json;q=0.1"]
)
def test_the_image_comes_back_unless_json_is_preferred(
    client: TestClient, many_credits_key: str, photo: bytes, accept: str
) -> None:
    """remove.bg's Node sample (axios) writes the body it gets to no-bg.png."""
    response = removebg(client, many_credits_key, photo, {"size": "preview"}, accept)
    assert response.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(response.content)).mode == "RGBA"


def test_base64_form_fields_may_be_as_large_as_an_upload(
    client: TestClient, ctx: Context, many_credits_key: str, photo: bytes
) -> None:
    """remove.bg's PyPI client and `curl -F image_file_b64=...` send base64 as a form field."""
    big = io.BytesIO()
    with Image.open(io.BytesIO(photo)) as original:
        original.convert("RGB").resize((1600, 994)).save(big, "PNG")
    b64 = base64.b64encode(big.getvalue()).decode()
    assert len(b64) > 1024 * 1024, "past Starlette's default 1 MB per field"
    headers = {"X-Api-Key": many_credits_key}
    urlencoded = client.post(
        "/v1.0/removebg", headers=headers, data={"image_file_b64": b64, "size": "preview"}
    )
    multipart = client.post(
        "/v1.0/removebg",
        headers=headers,
        files={"image_file_b64": (None, b64), "size": (None, "preview")},
    )
    for response in (urlencoded, multipart):
        assert response.status_code == 200, response.text
        assert Image.open(io.BytesIO(response.content)).mode == "RGBA"
    # Past what the upload limit allows, Starlette's refusal comes in remove.bg's shape.
    ctx.settings.max_upload_bytes = 200_000
    response = client.post("/v1.0/removebg", headers=headers, files={"image_file_b64": (None, b64)})
    assert response.status_code == 400
    error = response.json()["errors"][0]
    assert error["code"] == "bad_request" and "maximum size" in error["detail"]


@pytest.mark.parametrize(
    "data",
    [
        {"size": "preview"},
        {"size": "full", "crop": "true", "crop_margin": "10px 20px 30px 40px"},
        {"size": "preview", "crop": "true", "crop_margin": "10%"},
        {"size": "full", "scale": "50%", "position": "0% 100%"},
        {"size": "preview", "roi": "0% 0% 60% 100%"},
    ],
)
def test_foreground_headers_describe_the_returned_image(
    client: TestClient, many_credits_key: str, photo: bytes, data: dict[str, str]
) -> None:
    response = removebg(client, many_credits_key, photo, data)
    assert (response.headers["X-Width"], response.headers["X-Height"]) == tuple(
        str(v) for v in Image.open(io.BytesIO(response.content)).size
    )
    reported, actual = header_box(response), subject_box(response.content)
    assert np.abs(np.subtract(reported, actual)).max() <= 1, (reported, actual)


def test_foreground_of_a_result_on_an_opaque_colour(
    client: TestClient, many_credits_key: str, photo: bytes
) -> None:
    """The result is opaque everywhere, so the box must come from the cutout's geometry."""
    data = {"size": "preview", "crop": "true", "crop_margin": "30px 10%", "scale": "70%"}
    transparent = removebg(client, many_credits_key, photo, data)
    coloured = removebg(
        client, many_credits_key, photo, data | {"bg_color": "white"}, "application/json"
    )
    box = header_box(transparent)
    assert np.abs(np.subtract(box, subject_box(transparent.content))).max() <= 1
    assert header_box(coloured) == box
    answer = coloured.json()["data"]
    assert tuple(answer[f"foreground_{side}"] for side in ("left", "top", "width", "height")) == box


def test_auth_failures_are_403_auth_failed_on_v1_only(client: TestClient, photo: bytes) -> None:
    missing = client.post("/v1.0/removebg", files={"image_file": ("a.png", photo)})
    wrong = client.post(
        "/v1.0/removebg", headers={"X-Api-Key": "rak_wrong"}, files={"image_file": ("a.png", photo)}
    )
    for response, title in ((missing, "Missing API Key"), (wrong, "Invalid API Key")):
        assert response.status_code == 403
        error = response.json()["errors"][0]
        assert (error["code"], error["title"]) == ("auth_failed", title)
        assert "X-Api-Key" in error["detail"] or "API key" in error["detail"]
    # Our own API keeps its answers.
    own_missing = client.get("/api/v1/credits")
    assert own_missing.status_code == 401
    assert own_missing.json()["error"]["code"] == "not_authenticated"
    own_wrong = client.get("/api/v1/credits", headers={"X-Api-Key": "rak_wrong"})
    assert own_wrong.status_code == 403
    assert own_wrong.json()["error"]["code"] == "invalid_api_key"


@pytest.mark.parametrize(
    ("margin", "extra", "offset"),
    [
        ("10px 20px", (40, 20), (20, 10)),
        ("10px 20px 30px 40px", (60, 40), (40, 10)),
        ("5% 10%", None, None),
    ],
)
def test_crop_margin_takes_two_or_four_values_in_css_order(
    client: TestClient,
    many_credits_key: str,
    photo: bytes,
    margin: str,
    extra: tuple[int, int] | None,
    offset: tuple[int, int] | None,
) -> None:
    tight = removebg(client, many_credits_key, photo, {"size": "full", "crop": "true"})
    width, height = Image.open(io.BytesIO(tight.content)).size
    if extra is None:  # 5% of the height above and below, 10% of the width left and right
        extra = (2 * round(width * 0.10), 2 * round(height * 0.05))
        offset = (round(width * 0.10), round(height * 0.05))
    response = removebg(
        client, many_credits_key, photo, {"size": "full", "crop": "true", "crop_margin": margin}
    )
    assert Image.open(io.BytesIO(response.content)).size == (width + extra[0], height + extra[1])
    assert header_box(response) == (*offset, width, height)


@pytest.mark.parametrize(
    ("colour", "rgba", "media_type"),
    [
        ("fff8", (255, 255, 255, 0x88), "image/png"),
        ("81d4fa77", (0x81, 0xD4, 0xFA, 0x77), "image/png"),
        ("orange", (255, 165, 0, 255), "image/jpeg"),
        ("lightblue", (0xAD, 0xD8, 0xE6, 255), "image/jpeg"),
        ("RebeccaPurple", (0x66, 0x33, 0x99, 255), "image/jpeg"),
    ],
)
def test_bg_color_takes_css_names_and_hex_with_opacity(
    client: TestClient,
    many_credits_key: str,
    photo: bytes,
    colour: str,
    rgba: tuple[int, int, int, int],
    media_type: str,
) -> None:
    """format=auto (the default): JPG when nothing is transparent, PNG otherwise."""
    response = removebg(client, many_credits_key, photo, {"size": "preview", "bg_color": colour})
    assert response.headers["content-type"] == media_type
    corner = Image.open(io.BytesIO(response.content)).convert("RGBA").getpixel((0, 0))
    assert np.abs(np.subtract(corner, rgba)).max() <= 4, corner


def test_our_own_api_takes_the_same_margins_and_colours(
    client: TestClient, many_credits_key: str, photo: bytes
) -> None:
    options = {"crop": "true", "crop_margin": "10px 20px 30px 40px", "bg_color": "lightblue"}
    ours = client.post(
        "/api/v1/jobs",
        headers={"X-Api-Key": many_credits_key},
        data={"wait": "true", "size": "full", **options},
        files={"file": ("GT01.png", photo)},
    )
    assert ours.status_code == 202, ours.text
    job = ours.json()
    assert job["status"] == "succeeded", job
    theirs = removebg(client, many_credits_key, photo, {"size": "full", **options})
    assert (job["result_width"], job["result_height"]) == (
        int(theirs.headers["X-Width"]),
        int(theirs.headers["X-Height"]),
    )


@pytest.mark.parametrize(
    ("data", "media_type", "mode"),
    [
        ({}, "image/png", "RGBA"),
        ({"bg_color": "81d4fa"}, "image/jpeg", "RGB"),
        ({"bg_color": "81d4fa80"}, "image/png", "RGBA"),
        ({"channels": "alpha"}, "image/png", "L"),
        ({"bg_color": "81d4fa", "format": "png"}, "image/png", "RGB"),
    ],
)
def test_format_auto_is_jpg_only_without_transparency(
    client: TestClient,
    many_credits_key: str,
    photo: bytes,
    data: dict[str, str],
    media_type: str,
    mode: str,
) -> None:
    response = removebg(client, many_credits_key, photo, {"size": "preview", **data})
    assert response.headers["content-type"] == media_type
    assert Image.open(io.BytesIO(response.content)).mode == mode


def test_type_level_none_leaves_out_x_type(
    client: TestClient, many_credits_key: str, photo: bytes
) -> None:
    none = removebg(client, many_credits_key, photo, {"size": "preview", "type_level": "none"})
    assert "X-Type" not in none.headers
    coarse = removebg(client, many_credits_key, photo, {"size": "preview", "type_level": "1"})
    assert coarse.headers["X-Type"] == "other"
    bad = client.post(
        "/v1.0/removebg",
        headers={"X-Api-Key": many_credits_key},
        files={"image_file": ("a.png", photo)},
        data={"type_level": "3"},
    )
    assert bad.status_code == 400
    assert bad.json()["errors"][0]["title"] == "Invalid type_level parameter given"


@pytest.mark.parametrize(
    ("request_kwargs", "code"),
    [
        ({"data": {"size": "preview"}}, "missing_source"),
        ({}, "missing_source"),
        ({"files": {"image_file": (None, "not a file")}}, "invalid_request"),
        ({"files": {"image_file": ("", b"", "application/octet-stream")}}, "missing_source"),
        ({"files": {"image_file": ("a.txt", b"hello")}}, "invalid_file_type"),
        ({"photo": "image_file", "data": {"image_file_b64": "aGVsbG8="}}, "multiple_sources"),
        (
            {"photo": "image_file", "data": {"image_url": "https://x.test/a.jpg"}},
            "multiple_sources",
        ),
        ({"photo": "image_file", "data": {"bg_color": "fff"}, "bg": True}, "multiple_bg_sources"),
        ({"photo": "image_file", "data": {"crop_margin": "1px 2px 3px"}}, "invalid_crop_margin"),
    ],
)
def test_errors_carry_remove_bg_codes_titles_and_details(
    client: TestClient,
    ctx: Context,
    api_key: str,
    photo: bytes,
    request_kwargs: dict[str, Any],
    code: str,
) -> None:
    files = dict(request_kwargs.get("files", {}))
    if request_kwargs.get("photo"):
        files["image_file"] = ("GT01.png", photo, "image/png")
    if request_kwargs.get("bg"):
        files["bg_image_file"] = ("bg.png", photo, "image/png")
    response = client.post(
        "/v1.0/removebg",
        headers={"X-Api-Key": api_key},
        data=request_kwargs.get("data"),
        files=files or None,
    )
    assert response.status_code == 400, response.text
    error = response.json()["errors"][0]
    assert error["code"] == code
    assert error["title"] and error["detail"].endswith(".")
    assert balance(ctx) == 5 and stored_files(ctx) == []


def test_our_own_api_keeps_its_error_codes(client: TestClient, api_key: str) -> None:
    response = client.post(
        "/api/v1/jobs",
        headers={"X-Api-Key": api_key},
        files={"file": ("a.txt", b"hello")},
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "unsupported_format"
    response = client.post(
        "/api/v1/jobs", headers={"X-Api-Key": api_key}, data={"file": "not a file"}
    )
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_request"


def test_cors_for_remove_bg_paths_only(client: TestClient, api_key: str, photo: bytes) -> None:
    preflight = {
        "Origin": "https://app.example",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "x-api-key, content-type",
    }
    response = client.options("/v1.0/removebg", headers=preflight)
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert "x-api-key" in response.headers["Access-Control-Allow-Headers"].lower()
    assert "Access-Control-Allow-Credentials" not in response.headers
    answer = client.post(
        "/v1.0/removebg",
        headers={"X-Api-Key": api_key, "Origin": "https://app.example"},
        files={"image_file": ("GT01.png", photo, "image/png")},
        data={"size": "preview"},
    )
    assert answer.status_code == 200
    assert answer.headers["Access-Control-Allow-Origin"] == "*"
    assert "x-credits-charged" in answer.headers["Access-Control-Expose-Headers"].lower()
    own = client.options("/api/v1/jobs", headers=preflight)
    assert "Access-Control-Allow-Origin" not in own.headers


def test_unknown_endpoints_and_methods_answer_in_remove_bg_shape(
    client: TestClient, api_key: str, photo: bytes
) -> None:
    improve = client.post(
        "/v1.0/improve", headers={"X-Api-Key": api_key}, files={"image_file": ("a.png", photo)}
    )
    assert improve.status_code == 404
    error = improve.json()["errors"][0]
    assert error["code"] == "not_found" and "/v1.0/improve is not offered" in error["detail"]
    wrong_method = client.get("/v1.0/removebg", headers={"X-Api-Key": api_key})
    assert wrong_method.status_code == 405
    assert "use POST" in wrong_method.json()["errors"][0]["detail"]
    # The JSON API keeps its own shape (tests/api/test_contract.py).
    assert client.get("/api/v1/nothing-here").json()["error"]["code"] == "not_found"


def test_a_request_that_times_out_is_not_charged(
    client: TestClient, ctx: Context, api_key: str, photo: bytes
) -> None:
    """remove.bg's API is synchronous: a client told "busy, try again" has no job to fetch a
    result from, so its job is called off, and retrying as told does not pay twice."""
    ctx.settings.job_wait_seconds = 0.0
    response = client.post(
        "/v1.0/removebg",
        headers={"X-Api-Key": api_key},
        files={"image_file": ("GT01.png", photo, "image/png")},
    )
    assert response.status_code == 503, response.text
    assert response.json()["errors"][0]["code"] == "timeout"
    assert ctx.queue is not None
    ctx.queue.shutdown()  # waits for a worker that had started: it deletes what it made
    (job,) = client.get("/api/v1/jobs", headers={"X-Api-Key": api_key}).json()
    assert job["status"] == "cancelled" and job["error_code"] == "timeout", job
    assert balance(ctx) == 5
    assert not any("results" in p.parts for p in stored_files(ctx))


@pytest.mark.parametrize("roi", ["0 0 5% 5%", "900px 600px 1000px 700px"])
def test_a_roi_without_the_subject_fails_without_charge(
    client: TestClient, ctx: Context, api_key: str, photo: bytes, roi: str
) -> None:
    """remove.bg looks for the subject inside `roi` only: a region the subject is not in (a
    corner of sky, or past the 800x497 photo's edge) is a photo without a subject, refused
    free of charge, not a blank image that costs a credit."""
    response = client.post(
        "/v1.0/removebg",
        headers={"X-Api-Key": api_key},
        files={"image_file": ("GT01.png", photo, "image/png")},
        data={"size": "preview", "roi": roi},
    )
    assert response.status_code == 400, response.headers
    error = response.json()["errors"][0]
    assert error["code"] == "unknown_foreground"
    assert "roi" in error["detail"]
    assert balance(ctx) == 5


def test_shadow_type_asks_for_the_shadow(
    client: TestClient, many_credits_key: str, photo: bytes
) -> None:
    """remove.bg replaced `add_shadow` by `shadow_type` (car, 3D, drop, auto or none): a
    client asking for a drop shadow gets ours, not silently none."""
    plain = removebg(client, many_credits_key, photo, {"size": "preview"})
    shadowed = removebg(client, many_credits_key, photo, {"size": "preview", "add_shadow": "true"})
    assert shadowed.content != plain.content
    for value in ("drop", "3D", "auto"):
        asked = removebg(client, many_credits_key, photo, {"size": "preview", "shadow_type": value})
        assert asked.content == shadowed.content, value
    none = removebg(client, many_credits_key, photo, {"size": "preview", "shadow_type": "none"})
    assert none.content == plain.content
    as_json = client.post(
        "/v1.0/removebg",
        headers={"X-Api-Key": many_credits_key},
        json={
            "image_file_b64": base64.b64encode(photo).decode(),
            "size": "preview",
            "shadow_type": "drop",
        },
    )
    assert as_json.content == shadowed.content
    for data in ({"shadow_type": "soft"}, {"shadow_type[car]": "car"}):
        bad = client.post(
            "/v1.0/removebg",
            headers={"X-Api-Key": many_credits_key},
            files={"image_file": ("GT01.png", photo, "image/png")},
            data={"size": "preview", **data},
        )
        assert bad.status_code == 400, data
        error = bad.json()["errors"][0]
        assert error["code"] == "invalid_shadow_type"
        assert error["title"] == "Invalid shadow_type parameter given"


def test_a_call_waiting_when_its_service_is_suspended_says_so(
    client: TestClient, ctx: Context, api_key: str, photo: bytes
) -> None:
    """The operator suspends the service while a call waits for its queued job: the job is
    called off uncharged, and the caller is told why in the operator's words, not "busy"."""
    from removeany.accounts import repository
    from removeany.jobs import service as jobs
    from removeany.jobs import worker
    from removeany.jobs.models import Job
    from removeany.moderation import service as moderation
    from removeany.moderation.audit import Actor

    ctx.settings.max_running_jobs_per_user = 1
    ctx.settings.job_wait_seconds = 60.0
    with ctx.db.transaction() as s:
        user = repository.user_by_email(s, "ada@example.com")
        assert user is not None
        jobs.submit(
            s,
            ctx.storage,
            user,
            service="remove_background",
            options={"size": "full", "format": "png"},
            original=photo,
            input_name="first.png",
            width=1,
            height=1,
            now=ctx.now(),
            reserve_ttl=timedelta(hours=1),
        )
    assert worker.claim_next(ctx) is not None  # the user's one running job: the call's waits
    answers: list[Response] = []
    call = threading.Thread(
        target=lambda: answers.append(
            client.post(
                "/v1.0/removebg",
                headers={"X-Api-Key": api_key},
                files={"image_file": ("GT01.png", photo, "image/png")},
            )
        )
    )
    call.start()
    deadline = time.monotonic() + 30
    while True:
        with ctx.db.transaction() as s:
            if s.scalar(select(func.count()).where(Job.status == "queued")):
                break
        assert time.monotonic() < deadline, "the call's job was not queued"
        time.sleep(0.05)
    with ctx.db.transaction() as s:
        moderation.set_service_status(
            s,
            Actor(None, "operator"),
            "remove_background",
            "suspended",
            "Back at noon.",
            "model upgrade",
            now=ctx.now(),
        )
    call.join(timeout=30)
    (response,) = answers
    assert response.status_code == 503
    error = response.json()["errors"][0]
    assert error["code"] == "service_suspended" and "Back at noon." in error["detail"]
    assert balance(ctx) == 4  # the running job's credit is held; the call's came back
