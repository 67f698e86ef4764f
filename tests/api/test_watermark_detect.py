"""`POST /api/v1/watermark/detect`: the watermark editor's free detection. A real photograph with
a semi-transparent text watermark drawn with PIL comes back as a PNG mask over the mark; nothing
is charged or stored; each person may ask a limited number of times per hour."""

from __future__ import annotations

import io
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from numpy.typing import NDArray
from PIL import Image, ImageDraw, ImageFont

from removeany.api.watermark import DETECT_LIMIT, DETECT_WINDOW, WORK_SIDE
from removeany.context import Context
from tests.conftest import TestClock, eval_image
from tests.helpers import make_api_key, make_user

FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf")
DETECT = "/api/v1/watermark/detect"


def watermarked(
    name: str = "kodak_kodim04", text: str = "PhotoStock 2024", scale: float = 1.0
) -> tuple[bytes, NDArray[np.bool_]]:
    """A clean photograph with white text at half opacity drawn in its bottom-right corner:
    the PNG bytes, and where the text's pixels are."""
    with Image.open(eval_image("clean", name)) as im:
        photo = im.convert("RGBA")
    if scale != 1.0:
        photo = photo.resize((round(photo.width * scale), round(photo.height * scale)))
    short = min(photo.size)
    size = int(short * 0.09)
    font = ImageFont.truetype(str(FONT), size) if FONT.exists() else ImageFont.load_default(size)
    layer = Image.new("RGBA", photo.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    x0, y0, x1, y1 = draw.textbbox((0, 0), text, font=font)
    margin = int(short * 0.04)
    xy = (photo.width - margin - (x1 - x0) - x0, photo.height - margin - (y1 - y0) - y0)
    draw.text(xy, text, font=font, fill=(255, 255, 255, 128))
    marked = Image.alpha_composite(photo, layer).convert("RGB")
    buf = io.BytesIO()
    marked.save(buf, "PNG")
    return buf.getvalue(), np.asarray(layer.getchannel("A")) > 0


def near(mark: NDArray[np.bool_], pad: int) -> NDArray[np.bool_]:
    """The mark's bounding box grown by `pad` pixels."""
    ys, xs = np.nonzero(mark)
    top, bottom = max(0, ys.min() - pad), ys.max() + pad + 1
    left, right = max(0, xs.min() - pad), xs.max() + pad + 1
    box = np.zeros_like(mark)
    box[top:bottom, left:right] = True
    return box


def read_mask(content: bytes) -> NDArray[np.bool_]:
    with Image.open(io.BytesIO(content)) as im:
        assert im.format == "PNG"
        return np.asarray(im.convert("L")) > 127


def test_the_mask_covers_the_watermark_and_nothing_is_charged(
    client: TestClient, ctx: Context
) -> None:
    headers = {"X-Api-Key": make_api_key(ctx, make_user(ctx, credits=10))}
    before = client.get("/api/v1/credits", headers=headers).json()
    photo, mark = watermarked()

    response = client.post(DETECT, headers=headers, files={"file": ("marked.png", photo)})

    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/png"
    h, w = mark.shape
    assert response.headers["X-Image-Width"] == response.headers["X-Mask-Width"] == str(w)
    assert response.headers["X-Image-Height"] == response.headers["X-Mask-Height"] == str(h)
    assert response.headers["X-Mask-Scale"] == "1"
    assert response.headers["X-Watermark-Found"] == "true"
    assert response.headers["X-Credits-Charged"] == "0"
    assert response.headers["X-RateLimit-Limit"] == str(DETECT_LIMIT)
    assert response.headers["X-RateLimit-Remaining"] == str(DETECT_LIMIT - 1)
    mask = read_mask(response.content)
    assert mask.shape == mark.shape
    covered = float((mask & mark).sum() / mark.sum())
    assert covered >= 0.8, f"only {covered:.0%} of the watermark's pixels are marked"
    stray = float((mask & ~near(mark, int(min(h, w) * 0.03))).sum() / mask.size)
    assert stray < 0.01, f"{stray:.1%} of the photo is marked away from the watermark"
    assert abs(float(response.headers["X-Watermark-Coverage"]) - float(mask.mean())) < 1e-3

    # Free, and nothing kept: same balance and history, no job, no stored file.
    after = client.get("/api/v1/credits", headers=headers).json()
    assert after["available"] == before["available"] == 10
    assert after["entries"] == before["entries"]
    assert client.get("/api/v1/jobs", headers=headers).json() == []
    files = ctx.settings.files_dir
    assert not files.exists() or not [p for p in files.rglob("*") if p.is_file()]


def test_a_photo_without_a_watermark_gets_an_empty_mask(client: TestClient, ctx: Context) -> None:
    headers = {"X-Api-Key": make_api_key(ctx, make_user(ctx))}
    clean = eval_image("clean", "kodak_kodim04").read_bytes()
    response = client.post(DETECT, headers=headers, files={"file": ("clean.png", clean)})
    assert response.status_code == 200, response.text
    assert response.headers["X-Watermark-Found"] == "false"
    assert not read_mask(response.content).any()


def test_a_big_photo_is_answered_at_the_working_size(client: TestClient, ctx: Context) -> None:
    headers = {"X-Api-Key": make_api_key(ctx, make_user(ctx))}
    photo, mark = watermarked(scale=4.4)  # 2200 x 2200
    response = client.post(DETECT, headers=headers, files={"file": ("big.png", photo)})
    assert response.status_code == 200, response.text
    h, w = mark.shape
    assert (response.headers["X-Image-Width"], response.headers["X-Image-Height"]) == (
        str(w),
        str(h),
    )
    mask = read_mask(response.content)
    assert max(mask.shape) == WORK_SIDE
    assert (response.headers["X-Mask-Width"], response.headers["X-Mask-Height"]) == (
        str(mask.shape[1]),
        str(mask.shape[0]),
    )
    scale = float(response.headers["X-Mask-Scale"])
    assert scale == pytest.approx(WORK_SIDE / w, abs=1e-5)
    # Scaled up to the photo, the mask still lies over the watermark.
    full = np.asarray(Image.fromarray(mask).resize((w, h), Image.Resampling.NEAREST), bool)
    assert float((full & mark).sum() / mark.sum()) >= 0.8


def test_browser_sessions_need_the_csrf_header(client: TestClient, ctx: Context) -> None:
    make_user(ctx, "ada@example.com")
    photo, _ = watermarked()
    upload = {"file": ("marked.png", photo)}

    anonymous = client.post(DETECT, files=upload)
    assert anonymous.status_code == 401
    assert anonymous.json()["error"]["code"] == "not_authenticated"

    signed_in = client.post(
        "/api/v1/auth/login", json={"email": "ada@example.com", "password": "correct horse battery"}
    )
    assert signed_in.status_code == 200, signed_in.text
    csrf = signed_in.json()["csrf_token"]
    refused = client.post(DETECT, files=upload)
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "csrf_failed"
    accepted = client.post(DETECT, headers={"X-CSRF-Token": csrf}, files=upload)
    assert accepted.status_code == 200, accepted.text
    assert read_mask(accepted.content).any()


def test_detections_are_limited_per_person(client: TestClient, ctx: Context) -> None:
    clock = TestClock()
    ctx.clock = clock
    busy = {"X-Api-Key": make_api_key(ctx, make_user(ctx, "busy@example.com"))}
    other = {"X-Api-Key": make_api_key(ctx, make_user(ctx, "other@example.com"))}
    small = io.BytesIO()
    Image.new("RGB", (64, 48), (120, 140, 160)).save(small, "PNG")
    upload = {"file": ("small.png", small.getvalue())}

    for n in range(DETECT_LIMIT):
        ok = client.post(DETECT, headers=busy, files=upload)
        assert ok.status_code == 200, ok.text
        assert ok.headers["X-RateLimit-Remaining"] == str(DETECT_LIMIT - n - 1)
    refused = client.post(DETECT, headers=busy, files=upload)
    assert refused.status_code == 429
    error = refused.json()["error"]
    assert error["code"] == "too_many_attempts"
    assert error["message"] == "Too many watermark detections. Wait 60 minutes and try again."
    assert int(refused.headers["Retry-After"]) == int(DETECT_WINDOW.total_seconds())

    # Someone else is not affected, and the limit starts again with the next window.
    assert client.post(DETECT, headers=other, files=upload).status_code == 200
    clock.now += DETECT_WINDOW + timedelta(seconds=1)
    assert client.post(DETECT, headers=busy, files=upload).status_code == 200
    # Nothing was charged for any of it.
    assert client.get("/api/v1/credits", headers=busy).json()["available"] == 10


def _png_claiming(width: int, height: int) -> bytes:
    buf = io.BytesIO()
    Image.new("1", (width, height)).save(buf, "PNG")
    return buf.getvalue()


@pytest.mark.parametrize(
    ("name", "data", "code"),
    [
        ("notes.txt", b"this is not an image at all", "unsupported_format"),
        ("cut.png", b"truncated", "corrupt_image"),
        ("huge.png", b"bomb", "too_many_pixels"),
    ],
)
def test_bad_files_are_refused_with_their_code(
    client: TestClient, ctx: Context, name: str, data: bytes, code: str
) -> None:
    headers = {"X-Api-Key": make_api_key(ctx, make_user(ctx))}
    if data == b"truncated":
        photo, _ = watermarked()
        data = photo[: len(photo) // 2]
    elif data == b"bomb":
        data = _png_claiming(7000, 7000)  # 49 MP, over the 36 MP upload limit
    response = client.post(DETECT, headers=headers, files={"file": (name, data)})
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == code
    assert error["message"].endswith(".") and len(error["message"]) > 20
    assert client.get("/api/v1/credits", headers=headers).json()["available"] == 10
    # Nor did it use one of the hour's detections: a readable photo is told all are left.
    good = client.post(DETECT, headers=headers, files={"file": ("ok.jpg", watermarked()[0])})
    assert good.headers["X-RateLimit-Remaining"] == str(DETECT_LIMIT - 1)


def test_the_detector_is_documented_in_openapi(client: TestClient) -> None:
    schema = client.get("/api/openapi.json").json()
    operation = schema["paths"][DETECT]["post"]
    assert "image/png" in operation["responses"]["200"]["content"]
