"""Watermark batches: the photos' shared mark is estimated jointly, as the CLI does, and each
item is restored with it; photos the mark is not on are still treated on their own."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from numpy.typing import NDArray
from PIL import Image

from removeany.context import Context
from removeany.engine.models import fetch_model
from removeany.engine.watermark import (
    JOINT_WORK_SIDE,
    TEXT_DETECTOR,
    load_text_detector,
    restore,
    restore_batch,
)
from tests.batches._images import make_zip
from tests.conftest import EVAL_DIR
from tests.helpers import make_api_key, make_user, wait_for_batch

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks" / "watermark"))
from synth import make_watermark

SIDE = 224


def _cleans(count: int) -> list[NDArray[np.uint8]]:
    paths = sorted((EVAL_DIR / "clean").glob("kodak*"))[:count]
    if len(paths) < count:
        pytest.skip(f"evaluation images clean/kodak* not found under {EVAL_DIR}")
    out = []
    for path in paths:
        with Image.open(path) as im:
            arr = np.asarray(im.convert("RGB"))
        y, x = (arr.shape[0] - SIDE) // 2, (arr.shape[1] - SIDE) // 2
        out.append(np.ascontiguousarray(arr[y : y + SIDE, x : x + SIDE]))
    return out


def _png(arr: NDArray[np.uint8]) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "PNG")
    return buf.getvalue()


def _region_psnr(a: NDArray[np.uint8], b: NDArray[np.uint8], region: NDArray[np.bool_]) -> float:
    d = a.astype(np.float64)[region] - b.astype(np.float64)[region]
    return float(10 * np.log10(255.0**2 / max(float(np.mean(d * d)), 1e-10)))


def test_batch_items_share_one_joint_estimate(client: TestClient, ctx: Context) -> None:
    fetch_model(TEXT_DETECTOR, ctx.model_dir)
    detector = load_text_detector(ctx.model_dir)
    assert detector is not None
    cleans = _cleans(5)
    mark = make_watermark(np.random.default_rng(1), SIDE, SIDE, "cjk")
    marked = [mark.apply(c) for c in cleans]
    region = mark.region()
    user = make_user(ctx, credits=20)
    headers = {"X-Api-Key": make_api_key(ctx, user)}
    names = [f"shoot/{n}.png" for n in "abcde"]
    response = client.post(
        "/api/v1/batches",
        headers=headers,
        data={"service": "remove_watermark", "options": json.dumps({})},
        files={
            "archive": (
                "shoot.zip",
                make_zip(dict(zip(names, map(_png, marked), strict=True))),
                "application/zip",
            )
        },
    )
    assert response.status_code == 202, response.text
    batch = wait_for_batch(client, response.json()["id"], headers)
    assert batch["counts"]["succeeded"] == 5, batch
    items = {i["relative_path"]: i for i in client.get(batch["items_url"], headers=headers).json()}
    results = []
    for name in names:
        got = client.get(items[name]["result_url"], headers=headers)
        assert got.status_code == 200
        with Image.open(io.BytesIO(got.content)) as im:
            assert im.format == "PNG" and im.size == (SIDE, SIDE)
            results.append(np.asarray(im.convert("RGB")))

    # The same joint estimate the CLI makes from these photos, not five separate ones ...
    joint = restore_batch(marked, detector=detector)
    assert all("joint estimate from 5 images" in r.notes[0] for r in joint), joint[0].notes
    for got, want in zip(results, joint, strict=True):
        assert np.abs(got.astype(int) - want.image.astype(int)).max() <= 2
    # ... which restores the pixels far better than each photo alone.
    before = [_region_psnr(c, m, region) for c, m in zip(cleans, marked, strict=True)]
    alone = [
        _region_psnr(c, restore(m, detector=detector).image, region)
        for c, m in zip(cleans, marked, strict=True)
    ]
    shared = [_region_psnr(c, r, region) for c, r in zip(cleans, results, strict=True)]
    assert np.mean(shared) >= np.mean(before) + 8.0, (shared, before)
    assert np.mean(shared) >= np.mean(alone) + 3.0, (shared, alone)


def test_a_photo_without_the_shared_mark_is_treated_alone(client: TestClient, ctx: Context) -> None:
    # Six photos share a logo; the seventh is clean. The six are restored with the joint
    # estimate; the clean one finds no mark of its own and fails uncharged, as a single job.
    fetch_model(TEXT_DETECTOR, ctx.model_dir)
    cleans = _cleans(8)
    mark = make_watermark(np.random.default_rng(1), SIDE, SIDE, "logo")
    files = {f"m{i}.png": _png(mark.apply(c)) for i, c in enumerate(cleans[:6])}
    files["clean.png"] = _png(cleans[7])
    user = make_user(ctx, credits=20)
    headers = {"X-Api-Key": make_api_key(ctx, user)}
    response = client.post(
        "/api/v1/batches",
        headers=headers,
        data={"service": "remove_watermark"},
        files={"archive": ("set.zip", make_zip(files), "application/zip")},
    )
    assert response.status_code == 202, response.text
    batch = wait_for_batch(client, response.json()["id"], headers)
    items = {i["relative_path"]: i for i in client.get(batch["items_url"], headers=headers).json()}
    assert items["clean.png"]["status"] == "failed"
    assert items["clean.png"]["error_code"] == "no_watermark"
    assert items["clean.png"]["charged"] == 0
    region = mark.region()
    gains = []
    for i, clean in enumerate(cleans[:6]):
        item = items[f"m{i}.png"]
        assert item["status"] == "succeeded", item
        got = client.get(item["result_url"], headers=headers)
        with Image.open(io.BytesIO(got.content)) as im:
            out = np.asarray(im.convert("RGB"))
        gains.append(
            _region_psnr(clean, out, region) - _region_psnr(clean, mark.apply(clean), region)
        )
    assert min(gains) >= 1.0 and np.mean(gains) >= 4.0, gains


def test_large_photos_are_restored_as_the_engine_restores_them(
    client: TestClient, ctx: Context
) -> None:
    # Photos over JOINT_WORK_SIDE are reduced before their mark is estimated; a worker reads
    # them one at a time and reduces each as it goes, and must arrive at the engine's estimate
    # (which the benchmark measures), not at one made from differently reduced copies.
    fetch_model(TEXT_DETECTOR, ctx.model_dir)
    detector = load_text_detector(ctx.model_dir)
    assert detector is not None
    size = (JOINT_WORK_SIDE + 120, (JOINT_WORK_SIDE + 120) * 2 // 3)
    cleans = [
        np.asarray(Image.fromarray(c).resize(size, Image.Resampling.BICUBIC)) for c in _cleans(3)
    ]
    mark = make_watermark(np.random.default_rng(3), size[1], size[0], "text")
    marked = [mark.apply(c) for c in cleans]
    user = make_user(ctx, credits=20)
    headers = {"X-Api-Key": make_api_key(ctx, user)}
    files = {f"{n}.png": _png(m) for n, m in zip("abc", marked, strict=True)}
    response = client.post(
        "/api/v1/batches",
        headers=headers,
        data={"service": "remove_watermark"},
        files={"archive": ("big.zip", make_zip(files), "application/zip")},
    )
    assert response.status_code == 202, response.text
    batch = wait_for_batch(client, response.json()["id"], headers)
    assert batch["counts"]["succeeded"] == 3, batch
    items = {i["relative_path"]: i for i in client.get(batch["items_url"], headers=headers).json()}
    joint = restore_batch(marked, detector=detector)
    assert all("joint estimate from 3 images" in r.notes[0] for r in joint), joint[0].notes
    for name, want in zip("abc", joint, strict=True):
        got = client.get(items[f"{name}.png"]["result_url"], headers=headers)
        with Image.open(io.BytesIO(got.content)) as im:
            out = np.asarray(im.convert("RGB"))
        assert np.abs(out.astype(int) - want.image.astype(int)).max() <= 2
