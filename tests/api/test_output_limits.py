"""Output options a format cannot hold: WebP's 16383 pixels per side, JPEG's 65500 (libjpeg's
limit; JPEG's own field would allow 65535). Such a request was accepted, charged a hold,
stored and queued, and failed only after the model had run (a JPEG one even as a server
crash, `processing_failed`). Now it is refused before anything is stored or held, with
`output_too_large` and a sentence saying what to choose instead, or, for `format=auto`,
written as PNG."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import func, select

from removeany.context import Context
from removeany.credits import service as ledger
from removeany.jobs.models import Job
from tests.helpers import make_api_key, make_user, wait_for_batch


def strip(width: int, height: int) -> bytes:
    """A long thin photo (cheap: few pixels, one side past a format's limit): a dark subject
    in the middle of a light ground, so the model finds one."""
    pixels = np.full((height, width, 3), 235, dtype=np.uint8)
    pixels[:, width // 3 : 2 * width // 3] = (40, 60, 120)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, "PNG")
    return out.getvalue()


WIDE_FOR_WEBP = strip(16400, 40)  # 656,000 px: under medium's 1.5 MP, so size keeps it
WIDE_FOR_JPEG = strip(65501, 2)


def jobs_count(ctx: Context) -> int:
    with ctx.db.transaction() as session:
        return int(session.scalar(select(func.count()).select_from(Job)) or 0)


def available(ctx: Context, email: str = "ada@example.com") -> int:
    from removeany.accounts import repository

    with ctx.db.transaction() as session:
        user = repository.user_by_email(session, email)
        assert user is not None
        return ledger.balance(session, user.id, ctx.now()).available


def stored_files(ctx: Context) -> list[Path]:
    return [p for p in ctx.settings.files_dir.rglob("*") if p.is_file()]


def assert_nothing_done(ctx: Context, credits: int) -> None:
    assert jobs_count(ctx) == 0
    assert stored_files(ctx) == []
    assert available(ctx) == credits


@pytest.fixture
def headers(ctx: Context) -> dict[str, str]:
    return {"X-Api-Key": make_api_key(ctx, make_user(ctx, credits=10))}


@pytest.mark.parametrize(
    ("service", "fields", "photo"),
    [
        ("remove_background", {"format": "webp"}, WIDE_FOR_WEBP),
        ("remove_background", {"format": "webp", "size": "medium"}, WIDE_FOR_WEBP),
        ("remove_background", {"format": "webp", "size": "50MP"}, WIDE_FOR_WEBP),
        ("remove_background", {"format": "webp", "channels": "alpha"}, WIDE_FOR_WEBP),
        ("remove_background", {"format": "webp", "scale": "50%", "position": "0%"}, WIDE_FOR_WEBP),
        ("remove_background", {"format": "webp", "roi": "0 0 100 40"}, WIDE_FOR_WEBP),
        # A crop's margin can widen the result past the photo: 16000 + 2 x 200 px.
        (
            "remove_background",
            {"format": "webp", "crop": "true", "crop_margin": "200px"},
            strip(16000, 40),
        ),
        ("portrait", {"format": "webp", "bg_color": "white"}, WIDE_FOR_WEBP),
        ("remove_watermark", {"format": "webp", "boxes": "[[0, 0, 50, 20]]"}, WIDE_FOR_WEBP),
        ("remove_background", {"format": "jpg"}, WIDE_FOR_JPEG),
        ("remove_background", {"format": "zip"}, WIDE_FOR_JPEG),
        ("remove_watermark", {"format": "jpg", "boxes": "[[0, 0, 50, 2]]"}, WIDE_FOR_JPEG),
    ],
)
def test_a_result_the_format_cannot_hold_is_refused_before_anything_is_held(
    client: TestClient,
    ctx: Context,
    headers: dict[str, str],
    service: str,
    fields: dict[str, str],
    photo: bytes,
) -> None:
    response = client.post(
        "/api/v1/jobs",
        headers=headers,
        data={"service": service, "wait": "true", **fields},
        files={"file": ("wide.png", photo, "image/png")},
    )
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "output_too_large"
    assert "png" in error["message"].lower()
    assert_nothing_done(ctx, 10)


def test_a_background_photo_does_not_change_the_limit(
    client: TestClient, ctx: Context, headers: dict[str, str]
) -> None:
    backdrop = io.BytesIO()
    Image.new("RGB", (64, 32), (10, 200, 30)).save(backdrop, "JPEG")
    response = client.post(
        "/api/v1/jobs",
        headers=headers,
        data={"format": "webp", "wait": "true"},
        files={
            "file": ("wide.png", WIDE_FOR_WEBP, "image/png"),
            "bg_image_file": ("bg.jpg", backdrop.getvalue(), "image/jpeg"),
        },
    )
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "output_too_large"
    assert_nothing_done(ctx, 10)


def test_a_size_that_brings_the_result_within_the_limit_is_accepted_and_named(
    client: TestClient, ctx: Context, headers: dict[str, str]
) -> None:
    """The refusal names the largest size that fits; asking for it gives the WebP."""
    refused = client.post(
        "/api/v1/jobs",
        headers=headers,
        data={"format": "webp", "size": "hd"},
        files={"file": ("wide.png", WIDE_FOR_WEBP, "image/png")},
    ).json()["error"]
    assert "16,383" in refused["message"] and "16400x40" in refused["message"]
    assert "'preview'" in refused["message"]
    job = client.post(
        "/api/v1/jobs",
        headers=headers,
        data={"format": "webp", "size": "preview", "wait": "true"},
        files={"file": ("wide.png", WIDE_FOR_WEBP, "image/png")},
    ).json()
    assert job["status"] == "succeeded", job
    result = Image.open(io.BytesIO(client.get(job["result_url"], headers=headers).content))
    assert result.format == "WEBP" and max(result.size) <= 16383


def test_auto_format_writes_png_where_jpeg_cannot_hold_the_result(
    client: TestClient, ctx: Context, headers: dict[str, str]
) -> None:
    """`auto` picks JPG for an opaque result: past JPEG's limit it now picks PNG instead of
    crashing after the model ran."""
    job = client.post(
        "/api/v1/jobs",
        headers=headers,
        data={"format": "auto", "bg_color": "white", "wait": "true"},
        files={"file": ("wide.png", WIDE_FOR_JPEG, "image/png")},
    ).json()
    assert job["status"] == "succeeded", job
    result = client.get(job["result_url"], headers=headers)
    assert result.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(result.content)).size == (65501, 2)


# --------------------------------------------------------------------------- remove.bg


@pytest.mark.parametrize(
    ("fields", "photo"),
    [
        ({"format": "webp"}, WIDE_FOR_WEBP),
        ({"format": "webp", "size": "full"}, WIDE_FOR_WEBP),
        ({"format": "webp", "size": "50MP"}, WIDE_FOR_WEBP),
        ({"format": "jpg"}, WIDE_FOR_JPEG),
        ({"format": "zip"}, WIDE_FOR_JPEG),
    ],
)
def test_removebg_refuses_in_its_own_shape_before_anything_is_held(
    client: TestClient,
    ctx: Context,
    headers: dict[str, str],
    fields: dict[str, str],
    photo: bytes,
) -> None:
    response = client.post(
        "/v1.0/removebg",
        headers=headers,
        data=fields,
        files={"image_file": ("wide.png", photo, "image/png")},
    )
    assert response.status_code == 400, response.text
    (error,) = response.json()["errors"]
    assert error["code"] == "resolution_too_high"
    assert error["title"] == "Image resolution too high"
    assert "png" in error["detail"].lower()
    assert_nothing_done(ctx, 10)


def test_removebg_json_body_is_refused_the_same_way(
    client: TestClient, ctx: Context, headers: dict[str, str]
) -> None:
    import base64

    response = client.post(
        "/v1.0/removebg",
        headers={**headers, "Content-Type": "application/json"},
        content=json.dumps(
            {"image_file_b64": base64.b64encode(WIDE_FOR_WEBP).decode(), "format": "webp"}
        ),
    )
    assert response.status_code == 400, response.text
    assert response.json()["errors"][0]["code"] == "resolution_too_high"
    assert_nothing_done(ctx, 10)


# --------------------------------------------------------------------------- batches


def test_a_batch_item_the_format_cannot_hold_is_rejected_at_upload(
    client: TestClient, ctx: Context, headers: dict[str, str]
) -> None:
    """The wide photo is listed as rejected with the reason and never charged or stored; the
    other photo is processed as usual."""
    small = io.BytesIO()
    Image.effect_noise((96, 72), 40).convert("RGB").save(small, "PNG")
    response = client.post(
        "/api/v1/batches",
        headers=headers,
        data={"options": json.dumps({"format": "webp"})},
        files=[
            ("files", ("wide.png", WIDE_FOR_WEBP, "image/png")),
            ("files", ("small.png", small.getvalue(), "image/png")),
        ],
    )
    assert response.status_code == 202, response.text
    created: dict[str, Any] = response.json()
    (rejected,) = created["rejected"]
    assert rejected["path"] == "wide.png" and rejected["code"] == "output_too_large"
    assert "png" in rejected["message"].lower()
    assert created["total"] == 1
    batch = wait_for_batch(client, created["id"], headers)
    assert batch["counts"]["succeeded"] == 1
    assert jobs_count(ctx) == 1
    assert available(ctx) == 9


def test_a_batch_of_only_such_items_is_refused(
    client: TestClient, ctx: Context, headers: dict[str, str]
) -> None:
    response = client.post(
        "/api/v1/batches",
        headers=headers,
        data={"options": json.dumps({"format": "jpg"})},
        files=[("files", ("wide.png", WIDE_FOR_JPEG, "image/png"))],
    )
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "empty_batch" and "output_too_large" not in error["message"]
    assert "wide.png" in error["message"]
    assert_nothing_done(ctx, 10)


def test_a_photo_wider_than_32767_pixels_is_cut_out(
    client: TestClient, ctx: Context, headers: dict[str, str]
) -> None:
    """Any format: the cutout's refinement crashed in cv2.remap on such a side, after the
    model had run (processing_failed, a server error on /v1.0/removebg)."""
    response = client.post(
        "/v1.0/removebg",
        headers=headers,
        data={"size": "full", "format": "png"},
        files={"image_file": ("wide.png", strip(40000, 10), "image/png")},
    )
    assert response.status_code == 200, response.text
    assert (response.headers["X-Width"], response.headers["X-Height"]) == ("40000", "10")
    assert response.headers["X-Credits-Charged"] == "1"
    assert available(ctx) == 9


# --------------------------------------------------------------------------- metadata


def with_exif(size: int) -> bytes:
    """A PNG photo whose EXIF block (kept with keep_metadata) is about `size` bytes: more
    than a JPEG's EXIF marker holds (65,533 bytes) when size is past that."""
    exif = Image.Exif()
    exif[0x010E] = "x" * size  # ImageDescription
    out = io.BytesIO()
    Image.open(io.BytesIO(strip(300, 200))).save(out, "PNG", exif=exif.tobytes())
    return out.getvalue()


@pytest.mark.parametrize(
    ("service", "fields"),
    [
        ("remove_background", {"format": "jpg", "bg_color": "white"}),
        ("portrait", {"format": "jpg"}),
        ("remove_watermark", {"format": "jpg", "boxes": "[[0, 0, 50, 20]]"}),
    ],
)
def test_metadata_a_jpeg_cannot_hold_is_refused_before_anything_is_held(
    client: TestClient,
    ctx: Context,
    headers: dict[str, str],
    service: str,
    fields: dict[str, str],
) -> None:
    """keep_metadata with a PNG's 100 KB EXIF block asked as JPEG failed after processing as
    processing_failed (Pillow's 'EXIF data is too long')."""
    response = client.post(
        "/api/v1/jobs",
        headers=headers,
        data={"service": service, "keep_metadata": "true", "wait": "true", **fields},
        files={"file": ("tagged.png", with_exif(100_000), "image/png")},
    )
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "metadata_too_large"
    assert "keep_metadata" in error["message"] and "PNG" in error["message"]
    assert_nothing_done(ctx, 10)


def test_auto_format_keeps_large_metadata_in_a_png(
    client: TestClient, ctx: Context, headers: dict[str, str]
) -> None:
    job = client.post(
        "/api/v1/jobs",
        headers=headers,
        data={"format": "auto", "bg_color": "white", "keep_metadata": "true", "wait": "true"},
        files={"file": ("tagged.png", with_exif(100_000), "image/png")},
    ).json()
    assert job["status"] == "succeeded", job
    result = client.get(job["result_url"], headers=headers)
    assert result.headers["content-type"] == "image/png"
    assert len(Image.open(io.BytesIO(result.content)).info["exif"]) > 100_000


def test_a_batch_item_with_such_metadata_is_rejected_at_upload(
    client: TestClient, ctx: Context, headers: dict[str, str]
) -> None:
    response = client.post(
        "/api/v1/batches",
        headers=headers,
        data={"options": json.dumps({"format": "jpg", "keep_metadata": True})},
        files=[
            ("files", ("tagged.png", with_exif(100_000), "image/png")),
            ("files", ("plain.png", with_exif(100), "image/png")),
        ],
    )
    assert response.status_code == 202, response.text
    created = response.json()
    assert [(r["path"], r["code"]) for r in created["rejected"]] == [
        ("tagged.png", "metadata_too_large")
    ]
    assert created["total"] == 1
    assert wait_for_batch(client, created["id"], headers)["counts"]["succeeded"] == 1
    assert available(ctx) == 9
