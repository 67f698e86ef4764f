"""A crop margin in percent stops at 500 pixels a side, as remove.bg's does ("The maximum
margin that can be added on each side is 50% of the subject dimensions or 500 pixels"), on
every surface that takes crop_margin. Before, only a margin in pixels did: 50% of a 20 MP
photo's subject made a 73 MP result (about 1.1 GB to compose and encode) priced as one
image. Real photos through the real pipeline: a large subject gets exactly 500 px a side,
a small one keeps its 50%."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from removeany.context import Context
from removeany.engine.compose import (
    MAX_MARGIN_PX,
    check_result_format,
    foreground_box,
    largest_result,
    parse_crop_margin,
    parse_options,
)
from tests.conftest import eval_image
from tests.helpers import make_api_key, make_user, wait_for_batch
from tests.test_cli_offline import _invoke

CROP = {"crop": "true", "crop_margin": "50%", "size": "full", "format": "png"}


def test_a_margin_in_percent_stops_at_500_pixels_a_side() -> None:
    half = parse_crop_margin("50%")
    assert half.pixels(400, 300) == (150, 200, 150, 200)  # a small subject keeps its 50%
    assert half.pixels(5477, 3651) == (500, 500, 500, 500)
    assert parse_crop_margin("10% 40%").pixels(3000, 6000) == (500, 500, 500, 500)
    assert parse_crop_margin("10% 40%").pixels(1000, 2000) == (200, 400, 200, 400)
    assert parse_crop_margin("500px 50%").pixels(800, 800) == (500, 400, 500, 400)
    # The up-front bound agrees: a 20 MP photo with 50% is at most 1000 px wider and taller.
    options = parse_options(crop=True, crop_margin="50%")
    assert largest_result(5477, 3651, options) == (6477, 4651)
    # ... so a WebP (16,383 px a side) holds a 15,000 px wide photo's crop with 50% margins,
    # which was refused for 22,500 px; one that would really be too wide still is.
    check_result_format(15000, 2000, options, "webp")
    with pytest.raises(Exception, match="at most 16,383 pixels"):
        check_result_format(15400, 2000, options, "webp")


def _photo(side: int) -> bytes:
    """The alpha-matting photo GT01 (subject about the whole frame) with its long side
    `side` pixels."""
    with Image.open(eval_image("object", "alphamatting_GT01")) as image:
        image = image.convert("RGB")
        height = round(image.height * side / image.width)
        buffer = io.BytesIO()
        image.resize((side, height), Image.Resampling.LANCZOS).save(buffer, "PNG")
        return buffer.getvalue()


def _margins(result: bytes) -> tuple[tuple[int, int, int, int], tuple[int, int]]:
    """((top, right, bottom, left) margins around the subject, (subject width, height))."""
    with Image.open(io.BytesIO(result)) as image:
        left, top, width, height = foreground_box(np.asarray(image.getchannel("A")))
        right, bottom = image.width - left - width, image.height - top - height
    return (top, right, bottom, left), (width, height)


def _expected(subject: tuple[int, int]) -> tuple[int, int, int, int]:
    width, height = subject
    half_w, half_h = min(round(width / 2), MAX_MARGIN_PX), min(round(height / 2), MAX_MARGIN_PX)
    return (half_h, half_w, half_h, half_w)


def _api(client: TestClient, key: str, photo: bytes, tmp: Path) -> bytes:
    job = client.post(
        "/api/v1/jobs",
        headers={"X-Api-Key": key},
        data={"wait": "true", **CROP},
        files={"file": ("photo.png", photo)},
    ).json()
    assert job["status"] == "succeeded", job
    return client.get(f"/api/v1/jobs/{job['id']}/result", headers={"X-Api-Key": key}).content


def _removebg(client: TestClient, key: str, photo: bytes, tmp: Path) -> bytes:
    response = client.post(
        "/v1.0/removebg",
        headers={"X-Api-Key": key},
        data=CROP,
        files={"image_file": ("photo.png", photo)},
    )
    assert response.status_code == 200, response.text
    # Where the subject is, as the headers say: the same margins as in the image.
    margins, subject = _margins(response.content)
    box = tuple(int(response.headers[f"X-Foreground-{s}"]) for s in ("Left", "Top"))
    assert box == (margins[3], margins[0])
    assert int(response.headers["X-Width"]) == subject[0] + margins[1] + margins[3]
    return response.content


def _batch(client: TestClient, key: str, photo: bytes, tmp: Path) -> bytes:
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("shoot/photo.png", photo)
    options = {k: (v == "true" if k == "crop" else v) for k, v in CROP.items()}
    created = client.post(
        "/api/v1/batches",
        headers={"X-Api-Key": key},
        data={"options": json.dumps(options)},
        files={"archive": ("shoot.zip", archive.getvalue(), "application/zip")},
    )
    assert created.status_code == 202, created.text
    batch = wait_for_batch(client, created.json()["id"], {"X-Api-Key": key})
    assert batch["counts"]["succeeded"] == 1, batch
    results = client.get(f"/api/v1/batches/{batch['id']}/results", headers={"X-Api-Key": key})
    with zipfile.ZipFile(io.BytesIO(results.content)) as zf:
        return zf.read("shoot/photo.png")


def _cli(client: TestClient, key: str, photo: bytes, tmp: Path) -> bytes:
    source, out = tmp / "photo.png", tmp / "cutout.png"
    source.write_bytes(photo)
    model_dir = str(client.app.state.ctx.settings.model_dir)  # type: ignore[attr-defined]
    code, _, stderr = _invoke(
        str(source), "-o", str(out), "--crop", "--crop-margin", "50%", "--model-dir", model_dir
    )
    assert code == 0, stderr
    return out.read_bytes()


SURFACES: dict[str, Callable[[TestClient, str, bytes, Path], bytes]] = {
    "api": _api,
    "removebg": _removebg,
    "batch": _batch,
    "cli": _cli,
}


@pytest.mark.parametrize("surface", list(SURFACES))
def test_fifty_percent_is_500_px_on_a_large_subject_and_half_on_a_small_one(
    client: TestClient, ctx: Context, tmp_path: Path, surface: str
) -> None:
    key = make_api_key(ctx, make_user(ctx, credits=100))
    large = SURFACES[surface](client, key, _photo(2400), tmp_path)
    margins, subject = _margins(large)
    assert min(subject) > 2 * MAX_MARGIN_PX, subject  # 50% of it would be more than 500 px
    assert margins == (500, 500, 500, 500), (margins, subject)
    small = SURFACES[surface](client, key, _photo(400), tmp_path)
    margins, subject = _margins(small)
    assert max(subject) < 2 * MAX_MARGIN_PX, subject
    assert margins == _expected(subject), (margins, subject)
    assert min(margins) > 50  # a real 50%, not a cap
