"""Full-resolution alpha refinement on real photographs."""

from __future__ import annotations

import textwrap
from pathlib import Path

import cv2
import numpy as np
import pytest
from numpy.typing import NDArray
from PIL import Image

from removeany.engine.matting import (
    RefineConfig,
    fast_guided_filter,
    refine_alpha,
    trimap_from_alpha,
)

from ._eval import load_pair, peak_rss_mb, photo_path

PAIRS = [("object", "alphamatting_GT01"), ("object", "alphamatting_GT04"),
         ("object", "davis16_dog_00030"), ("portrait", "davis16_parkour_00050")]  # fmt: skip


def _truth_alpha(group: str, name: str) -> tuple[NDArray[np.uint8], NDArray[np.float32]]:
    image, _ = load_pair(group, name)
    with Image.open(photo_path(group, name).with_name(f"{name}.alpha.png")) as gt:
        alpha = np.asarray(gt.convert("L"), np.float32) / 255.0
    return np.asarray(image), alpha


@pytest.mark.parametrize(("group", "name"), PAIRS)
def test_refinement_beats_plain_upscaling_of_a_coarse_mask(group: str, name: str) -> None:
    """The true matte shrunk to 80x80 (what a 320px model sees of a 800px photo, and less)
    comes back closer to the truth through the photo-guided refinement than upscaled."""
    rgb, truth = _truth_alpha(group, name)
    h, w = truth.shape
    coarse = cv2.resize(truth, (80, 80), interpolation=cv2.INTER_AREA)
    upscaled = cv2.resize(coarse, (w, h), interpolation=cv2.INTER_LINEAR)
    refined = refine_alpha(rgb, coarse)
    assert refined.shape == (h, w) and refined.dtype == np.float32
    assert float(refined.min()) >= 0.0 and float(refined.max()) <= 1.0
    mae_up = float(np.abs(upscaled - truth).mean())
    mae_ref = float(np.abs(refined - truth).mean())
    assert mae_ref < 0.9 * mae_up, (mae_ref, mae_up)
    iou = lambda a: float(((a >= 0.5) & (truth >= 0.5)).sum() / ((a >= 0.5) | (truth >= 0.5)).sum())  # noqa: E731
    assert iou(refined) >= iou(upscaled) - 0.005


def test_strips_do_not_change_the_result() -> None:
    rgb, truth = _truth_alpha("object", "alphamatting_GT04")
    coarse = cv2.resize(truth, (64, 64), interpolation=cv2.INTER_AREA)
    whole = refine_alpha(rgb, coarse, RefineConfig(strip_rows=100_000))
    strips = refine_alpha(rgb, coarse, RefineConfig(strip_rows=37))
    assert float(np.abs(whole - strips).max()) < 1e-4


def test_guided_filter_keeps_photo_edges_that_a_box_blur_loses() -> None:
    """Smoothing the true matte with the photo as guide keeps its edge; a box blur of the
    same radius does not. The fast (subsampled) filter stays close to the exact one."""
    rgb, truth = _truth_alpha("object", "davis16_dog_00030")
    r = 8
    exact = fast_guided_filter(rgb, truth, r=r, eps=1e-4, s=1)
    fast = fast_guided_filter(rgb, truth, r=r, eps=1e-4, s=4)
    box = cv2.blur(truth, (2 * r + 1, 2 * r + 1))
    edge = trimap_from_alpha(truth, 6) == 128
    err_box = float(np.abs(box - truth)[edge].mean())
    err_exact = float(np.abs(np.clip(exact, 0, 1) - truth)[edge].mean())
    err_fast = float(np.abs(np.clip(fast, 0, 1) - truth)[edge].mean())
    assert err_exact < 0.7 * err_box, (err_exact, err_box)
    assert err_fast < 0.85 * err_box, (err_fast, err_box)


def test_trimap_marks_a_band_around_the_edge() -> None:
    _, truth = _truth_alpha("object", "davis16_dog_00030")
    tri = trimap_from_alpha(truth, band=5)
    assert set(np.unique(tri)) == {0, 128, 255}
    assert np.all(truth[tri == 255] >= 0.92) and np.all(truth[tri == 0] <= 0.08)


def test_24_megapixel_refinement_stays_under_memory_budget() -> None:
    """6000x4000 photo: full-resolution alpha with peak RSS well under 1.2 GB."""
    code = textwrap.dedent(
        """
        import numpy as np
        from removeany.engine.matting import refine_alpha
        rgb = np.random.default_rng(0).integers(0, 255, (4000, 6000, 3), dtype=np.uint8)
        alpha = refine_alpha(rgb, np.random.default_rng(1).random((320, 320), dtype=np.float32))
        assert alpha.shape == (4000, 6000), alpha.shape
        """
    )
    peak_mb = peak_rss_mb(code)
    assert peak_mb < 800, peak_mb


def test_24_megapixel_cutout_end_to_end_under_1_2_gb(model_dir: Path) -> None:
    """A 6000x4000 photo (an eval photo scaled up) through remove_background: the alpha is
    full resolution and refined (not a blown-up 320px mask), peak RSS under 1.2 GB."""
    photo = photo_path("object", "davis16_dog_00030")
    code = textwrap.dedent(
        f"""
        import resource, sys
        import numpy as np
        from pathlib import Path
        from PIL import Image
        from removeany.engine import remove_background
        with Image.open({str(photo)!r}) as im:
            big = im.convert("RGB").resize((6000, 4000), Image.Resampling.BILINEAR)
        out = remove_background(big, model_dir=Path({str(model_dir)!r}))
        assert out.size == (6000, 4000) and out.mode == "RGBA"
        alpha = np.asarray(out.getchannel("A"))
        # refined edges follow the photo: many distinct alpha levels, a real subject
        assert len(np.unique(alpha)) > 100
        assert 0.02 < float((alpha >= 128).mean()) < 0.6
        """
    )
    peak_mb = peak_rss_mb(code)
    assert peak_mb < 1200, peak_mb


def test_pieces_of_columns_do_not_change_the_result(monkeypatch: pytest.MonkeyPatch) -> None:
    """A wide photo's strips are upsampled in pieces of columns (cv2.remap refuses a side of
    32767 pixels or more); the pieces join without a seam."""
    from removeany.engine import matting

    rng = np.random.default_rng(3)
    rgb = rng.integers(0, 256, (40, 3000, 3), dtype=np.uint8)
    coarse = cv2.resize(rng.random((8, 600), dtype=np.float32), (600, 8))
    whole = refine_alpha(rgb, coarse)
    monkeypatch.setattr(matting, "_REMAP_COLUMNS", 257)
    pieces = refine_alpha(rgb, coarse)
    assert float(np.abs(whole - pieces).max()) < 1e-5


@pytest.mark.parametrize("shape", [(2, 65501), (40, 33000), (33000, 3)])
def test_a_side_past_32767_pixels_is_refined(shape: tuple[int, int]) -> None:
    """A 65501x2 PNG crashed the cutout in cv2.remap (`dst.cols < SHRT_MAX`): a failed job
    after the model had run, as processing_failed."""
    h, w = shape
    wide = w > h
    rgb = np.full((h, w, 3), 230, np.uint8)
    coarse = np.zeros((8, 8), np.float32)
    if wide:
        rgb[:, w // 3 : 2 * w // 3] = 30
        coarse[:, 3:5] = 1.0
    else:
        rgb[h // 3 : 2 * h // 3] = 30
        coarse[3:5] = 1.0
    refined = refine_alpha(rgb, coarse)
    assert refined.shape == (h, w)
    across = refined if wide else refined.T
    assert float(across[:, across.shape[1] // 2].mean()) > 0.5 > float(across[:, 5].mean())
