"""Portrait cutout, ID photos and watermark removal as priced services over the job API and
batches: each charges its catalogue price, bad options cost nothing, failures are refunded."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from numpy.typing import NDArray
from PIL import Image, ImageCms, JpegImagePlugin

from removeany.accounts import repository as accounts_repo
from removeany.context import Context
from removeany.engine.models import fetch_model, get_model
from tests.conftest import REPO, eval_image
from tests.helpers import make_api_key, make_user, wait_for_batch

sys.path.insert(0, str(REPO / "benchmarks" / "watermark"))
from synth import Watermark, make_watermark

LAUNCH_PRICES = {
    ("portrait", "preview"): 1,
    ("portrait", "full"): 1,
    ("portrait", "50MP"): 2,
    ("id_photo", "full"): 1,
    ("remove_watermark", "preview"): 1,
    ("remove_watermark", "full"): 1,
    ("remove_watermark", "50MP"): 2,
}


@pytest.fixture(autouse=True, scope="module")
def _face_model(model_dir: Path) -> None:
    """ID photos find the face with BlazeFace (installed by `removeany models fetch`)."""
    fetch_model(get_model("blazeface-short"), model_dir)


def _headers(ctx: Context, credits: int = 10, email: str = "ada@example.com") -> dict[str, str]:
    return {"X-Api-Key": make_api_key(ctx, make_user(ctx, email, credits=credits))}


def _admin(ctx: Context) -> dict[str, str]:
    admin = make_user(ctx, "root@example.com", credits=0)
    with ctx.db.transaction() as session:
        row = accounts_repo.user_by_id(session, admin.id)
        assert row is not None
        row.is_admin = True
    return {"X-Api-Key": make_api_key(ctx, admin)}


def _credits(client: TestClient, headers: dict[str, str]) -> dict[str, Any]:
    body: dict[str, Any] = client.get("/api/v1/credits", headers=headers).json()
    return body


def _submit(
    client: TestClient,
    headers: dict[str, str],
    path_or_bytes: Path | bytes,
    name: str = "photo.png",
    mask: bytes | None = None,
    **fields: str,
) -> Any:
    data = path_or_bytes.read_bytes() if isinstance(path_or_bytes, Path) else path_or_bytes
    files: dict[str, tuple[str, bytes]] = {"file": (name, data)}
    if mask is not None:
        files["mask_file"] = ("mask.png", mask)
    return client.post(
        "/api/v1/jobs", headers=headers, data={"wait": "true", **fields}, files=files
    )


def _encode(arr: NDArray[np.uint8], fmt: str, **params: Any) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, fmt, quality=95, **params)
    return buf.getvalue()


def _watermarked(size: tuple[int, int] = (320, 240)) -> tuple[NDArray[np.uint8], Watermark]:
    """A clean photograph (Kodak) with a synthetic semi-transparent text watermark drawn on."""
    clean_path = eval_image("clean", "kodak_kodim05")
    with Image.open(clean_path) as im:
        clean = np.asarray(im.convert("RGB").resize(size))
    wm = make_watermark(np.random.default_rng(4), size[1], size[0], "text")
    return clean, wm


def _box(wm: Watermark) -> list[int]:
    ys, xs = np.nonzero(wm.region())
    x0, y0 = int(xs.min()), int(ys.min())
    return [x0, y0, int(xs.max()) + 1 - x0, int(ys.max()) + 1 - y0]


def _psnr(a: NDArray[np.uint8], b: NDArray[np.uint8], region: NDArray[np.bool_]) -> float:
    d = (a.astype(np.float64) - b.astype(np.float64))[region]
    return float(10 * np.log10(255.0**2 / max(float(np.mean(d * d)), 1e-10)))


def test_prices_list_every_service_and_admins_can_change_them(
    client: TestClient, ctx: Context
) -> None:
    listed = {(p["service"], p["tier"]): p["credits"] for p in client.get("/api/v1/prices").json()}
    for key, credits in LAUNCH_PRICES.items():
        assert listed[key] == credits
    admin = _admin(ctx)
    changed = client.put(
        "/api/v1/admin/prices",
        headers=admin,
        json={"service": "remove_watermark", "tier": "50MP", "credits": 5},
    )
    assert changed.status_code == 200 and changed.json()["version"] == 2
    # An ID photo has one price, whatever its print size.
    refused = client.put(
        "/api/v1/admin/prices",
        headers=admin,
        json={"service": "id_photo", "tier": "preview", "credits": 1},
    )
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "invalid_price"


def test_portrait_job_charges_the_catalogue_price(client: TestClient, ctx: Context) -> None:
    headers = _headers(ctx)
    changed = client.put(
        "/api/v1/admin/prices",
        headers=_admin(ctx),
        json={"service": "portrait", "tier": "full", "credits": 3},
    )
    assert changed.status_code == 200
    photo = eval_image("portrait", "davis16_parkour_00050")
    response = _submit(client, headers, photo, "runner.jpg", service="portrait")
    assert response.status_code == 202, response.text
    job = response.json()
    assert job["service"] == "portrait" and job["status"] == "succeeded", job
    assert job["cost"] == job["charged"] == 3
    assert response.headers["X-Credits-Charged"] == "3"
    assert job["detected_type"] == "person"
    assert client.get(f"/api/v1/jobs/{job['id']}", headers=headers).json()["charged"] == 3
    result = client.get(job["result_url"], headers=headers)
    assert result.headers["content-type"] == "image/png"
    with Image.open(io.BytesIO(result.content)) as image:
        assert image.mode == "RGBA" and image.size == (job["input_width"], job["input_height"])
        alpha = np.asarray(image.getchannel("A"))
    assert 0.03 < float(np.mean(alpha > 128)) < 0.8  # a person, not the whole frame
    credits = _credits(client, headers)
    assert credits["available"] == 7 and credits["held"] == 0


def test_id_photo_is_exactly_one_inch_on_white_at_300_dpi(
    client: TestClient, ctx: Context, astronaut: Path
) -> None:
    headers = _headers(ctx)
    response = _submit(
        client, headers, astronaut, "me.png", service="id_photo", size="1inch", background="white"
    )
    job = response.json()
    assert job["status"] == "succeeded", job
    assert job["cost"] == job["charged"] == LAUNCH_PRICES[("id_photo", "full")]
    assert response.headers["X-Credits-Charged"] == str(job["charged"])
    assert (job["result_width"], job["result_height"]) == (295, 413)
    assert job["detected_type"] == "person"
    result = client.get(job["result_url"], headers=headers)
    assert result.headers["content-type"] == "image/jpeg"
    with Image.open(io.BytesIO(result.content)) as image:
        assert image.format == "JPEG" and image.size == (295, 413)
        # 295 x 413 at 300 dpi prints at 25 x 35 mm (before: no density in the file)
        assert image.info["dpi"] == (300, 300)
        pixels = np.asarray(image.convert("RGB")).astype(int)
    # Above the hair (8% of the height) the photo is the flat white background.
    assert np.abs(pixels[:25] - 255).max() <= 8
    assert _credits(client, headers)["available"] == 10 - job["charged"]


@pytest.mark.parametrize(
    "group,name,size,code",
    [
        ("clean", "kodak_kodim01", "1inch", "no_face"),  # a landscape
        ("clean", "kodak_kodim04", "1inch", "face_cut_off"),  # hat off the top, no shoulders
        ("clean", "kodak_kodim18", "2inch", "face_too_small"),  # a full-length figure
    ],
)
def test_id_photo_that_cannot_be_made_fails_and_costs_nothing(
    client: TestClient, ctx: Context, group: str, name: str, size: str, code: str
) -> None:
    headers = _headers(ctx)
    photo = eval_image(group, name)
    job = _submit(client, headers, photo, "me.png", service="id_photo", size=size).json()
    assert job["status"] == "failed" and job["error_code"] == code, job
    assert "Upload" in job["error_message"]
    assert job["charged"] == 0
    credits = _credits(client, headers)
    assert credits["available"] == 10 and credits["held"] == 0
    assert [e["kind"] for e in credits["entries"]][:2] == ["release", "reserve"]


@pytest.mark.parametrize("fmt,media_type", [("PNG", "image/png"), ("JPEG", "image/jpeg")])
def test_watermark_boxes_keep_size_and_format(
    client: TestClient, ctx: Context, fmt: str, media_type: str
) -> None:
    headers = _headers(ctx)
    clean, wm = _watermarked()
    marked = wm.apply(clean)
    # the photo's colour profile comes back with it (a wide-gamut photo keeps its colours)
    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    response = _submit(
        client,
        headers,
        _encode(marked, fmt, icc_profile=profile),
        f"marked.{fmt.lower()}",
        service="remove_watermark",
        boxes=json.dumps([_box(wm)]),
    )
    job = response.json()
    assert job["status"] == "succeeded", job
    assert job["cost"] == job["charged"] == LAUNCH_PRICES[("remove_watermark", "full")]
    assert response.headers["X-Credits-Charged"] == str(job["charged"])
    assert (job["result_width"], job["result_height"]) == (320, 240)
    result = client.get(job["result_url"], headers=headers)
    assert result.headers["content-type"] == media_type
    with Image.open(io.BytesIO(result.content)) as image:
        assert image.format == fmt and image.size == (320, 240)
        assert image.info.get("icc_profile") == profile
        restored = np.asarray(image.convert("RGB"))
    if fmt == "PNG":
        region = wm.region()
        assert _psnr(clean, restored, region) >= _psnr(clean, marked, region) + 3.0


def test_watermark_mask_upload(client: TestClient, ctx: Context) -> None:
    headers = _headers(ctx)
    clean, wm = _watermarked()
    marked = wm.apply(clean)
    mask = _encode((wm.region() * 255).astype(np.uint8), "PNG")
    job = _submit(
        client,
        headers,
        _encode(marked, "PNG"),
        mask=mask,
        service="remove_watermark",
    ).json()
    assert job["status"] == "succeeded" and job["charged"] == 1, job
    with Image.open(io.BytesIO(client.get(job["result_url"], headers=headers).content)) as im:
        restored = np.asarray(im.convert("RGB"))
    region = wm.region()
    assert _psnr(clean, restored, region) >= _psnr(clean, marked, region) + 3.0


@pytest.mark.parametrize(
    ("name", "mode", "params"),
    [
        ("fine.jpg", "RGB", {"quality": 95, "subsampling": 0, "dpi": (300, 300)}),
        ("lossless.webp", "RGB", {"lossless": True}),
        ("scan.png", "L", {"dpi": (600, 600)}),
    ],
)
def test_watermark_results_are_encoded_as_their_photos_were(
    client: TestClient, ctx: Context, name: str, mode: str, params: dict[str, Any]
) -> None:
    """The worker writes the photo back as it came: a JPEG with its own tables and 4:4:4
    chroma (quality 95 at 4:2:0 before), a lossless WebP losslessly (it was re-encoded lossy),
    a grey PNG grey (it came back RGB), each at its print resolution (dropped before)."""
    headers = _headers(ctx)
    clean, wm = _watermarked()
    photo = Image.fromarray(wm.apply(clean)).convert(mode)
    buf = io.BytesIO()
    photo.save(buf, name.rsplit(".", 1)[1].replace("jpg", "jpeg"), **params)
    job = _submit(
        client,
        headers,
        buf.getvalue(),
        name,
        service="remove_watermark",
        boxes=json.dumps([_box(wm)]),
    ).json()
    assert job["status"] == "succeeded", job
    result = client.get(job["result_url"], headers=headers).content
    far = np.ones(wm.region().shape, bool)
    x, y, w, h = _box(wm)
    far[max(0, y - 12) : y + h + 12, max(0, x - 12) : x + w + 12] = False
    with Image.open(buf) as before, Image.open(io.BytesIO(result)) as after:
        assert (after.format, after.mode, after.size) == (before.format, before.mode, before.size)
        assert after.info.get("dpi") == before.info.get("dpi")
        if before.format == "JPEG":
            assert after.quantization == before.quantization
            assert JpegImagePlugin.get_sampling(after) == 0
        was, now = np.asarray(before.convert("RGB")), np.asarray(after.convert("RGB"))
    if name.endswith(".jpg"):
        assert _psnr(was, now, far) >= 50
    else:
        assert np.array_equal(was[far], now[far])


def test_bad_options_are_refused_before_any_charge(client: TestClient, ctx: Context) -> None:
    headers = _headers(ctx, credits=5)
    photo = eval_image("clean", "kodak_kodim04").read_bytes()  # 500 x 500
    small_mask = _encode(np.full((20, 20), 255, np.uint8), "PNG")
    cases: list[tuple[dict[str, str], bytes | None, int, str]] = [
        ({"service": "id_photo", "size": "3inch"}, None, 400, "invalid_size"),
        ({"service": "id_photo", "background": "green"}, None, 400, "invalid_background"),
        ({"service": "id_photo", "bg_color": "ffffff"}, None, 400, "invalid_bg_color"),
        ({"service": "id_photo", "format": "webp"}, None, 400, "invalid_format"),
        ({"service": "portrait", "bg_color": "not-a-colour"}, None, 400, "invalid_bg_color"),
        ({"service": "portrait", "size": "huge"}, None, 400, "invalid_size"),
        ({"service": "portrait", "crop": "maybe"}, None, 422, "invalid_request"),
        ({"service": "portrait", "boxes": "[[1, 2, 3, 4]]"}, None, 400, "invalid_boxes"),
        ({"service": "portrait"}, small_mask, 400, "invalid_mask_file"),
        ({"service": "remove_watermark", "boxes": "[[1, 2"}, None, 400, "invalid_boxes"),
        ({"service": "remove_watermark", "boxes": "[[1, 2, 0, 4]]"}, None, 400, "invalid_boxes"),
        ({"service": "remove_watermark", "boxes": "[[600, 0, 9, 9]]"}, None, 400, "invalid_boxes"),
        ({"service": "remove_watermark", "format": "gif"}, None, 400, "invalid_format"),
        ({"service": "remove_watermark"}, small_mask, 400, "invalid_mask"),
        ({"service": "remove_watermark"}, b"not an image", 400, "invalid_mask"),
        ({"service": "make_it_pretty"}, None, 400, "unknown_service"),
    ]
    for fields, mask, status, code in cases:
        response = _submit(client, headers, photo, mask=mask, **fields)
        assert response.status_code == status, (fields, response.text)
        error = response.json()["error"]
        assert error["code"] == code and error["message"].endswith("."), (fields, error)
    credits = _credits(client, headers)
    assert credits["available"] == 5 and credits["held"] == 0
    assert client.get("/api/v1/jobs", headers=headers).json() == []


def test_batches_run_the_new_services(client: TestClient, ctx: Context) -> None:
    headers = _headers(ctx, credits=6)
    refused = client.post(
        "/api/v1/batches",
        headers=headers,
        data={"service": "id_photo", "options": json.dumps({"size": "3inch"})},
        files=[("files", ("a.png", eval_image("clean", "kodak_kodim04").read_bytes()))],
    )
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "invalid_size"

    clean, wm = _watermarked()
    marked = wm.apply(clean)
    response = client.post(
        "/api/v1/batches",
        headers=headers,
        data={"service": "remove_watermark", "options": json.dumps({"boxes": [_box(wm)]})},
        files=[
            ("files", ("one.png", _encode(marked, "PNG"))),
            ("files", ("two.jpg", _encode(marked, "JPEG"))),
        ],
    )
    assert response.status_code == 202, response.text
    batch = wait_for_batch(client, response.json()["id"], headers)
    assert batch["service"] == "remove_watermark" and batch["counts"]["succeeded"] == 2
    assert batch["charged"] == 2 * LAUNCH_PRICES[("remove_watermark", "full")]
    items = {i["relative_path"]: i for i in client.get(batch["items_url"], headers=headers).json()}
    assert items["one.png"]["result_path"] == "one.png"
    assert items["two.jpg"]["result_path"] == "two.jpg"
    credits = _credits(client, headers)
    assert credits["available"] == 6 - batch["charged"] and credits["held"] == 0
