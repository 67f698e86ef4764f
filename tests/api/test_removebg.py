"""`POST /v1.0/removebg` as remove.bg's clients use it, on real photos and the real model."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from removeany.context import Context
from removeany.credits import service as ledger
from tests.conftest import eval_image
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
        (b'{"size": "preview"}', "missing_image"),
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
        (b"this is a text file, not an image", "unsupported_format"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, "corrupt_image"),
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
    assert error["code"] == code and error["title"].endswith(".")
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
    assert response.json()["errors"][0]["code"] == "corrupt_image"
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
    assert response.json()["errors"][0]["code"] == "too_many_pixels"
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
    assert response.json()["errors"][0]["code"] == "too_many_pixels"
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
    assert response.json()["errors"][0]["code"] == "invalid_api_key"
    broke = make_api_key(ctx, make_user(ctx, "broke@example.com", credits=0))
    response = client.post(
        "/v1.0/removebg", headers={"X-Api-Key": broke}, files={"image_file": ("a.png", photo)}
    )
    assert response.status_code == 402
    error = response.json()["errors"][0]
    assert error["code"] == "insufficient_credits" and "Buy more" in error["title"]
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
    # 5 admin + 3 promo credits granted, 20 bought; the 7 bought ones have expired
    assert response.json() == {
        "data": {
            "attributes": {
                "credits": {"total": 28, "subscription": 0, "payg": 20, "enterprise": 0},
                "api": {"free_calls": 8, "sizes": "all"},
            }
        }
    }
    assert balance(ctx) == 28
    response = client.get("/v1.0/account", headers={"X-Api-Key": "rak_wrong"})
    assert response.status_code == 403
    assert response.json()["errors"][0]["code"] == "invalid_api_key"
    response = client.get("/v1.0/account")
    assert response.status_code == 401
    assert response.json()["errors"][0]["code"] == "not_authenticated"
