"""`removeany remove-watermark`: names, sizes and formats kept; failures named; exit codes."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from removeany.cli_watermark import remove_watermark_command

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks" / "watermark"))
from synth import make_watermark  # noqa: E402

from .engine._eval import EVAL_DIR  # noqa: E402


def _photos(n: int, size: tuple[int, int] = (200, 150)) -> list[np.ndarray]:
    files = sorted((EVAL_DIR / "clean").glob("kodak_*")) if EVAL_DIR.is_dir() else []
    if len(files) < n:
        pytest.skip(f"evaluation images not found under {EVAL_DIR}; set REMOVEANY_EVAL_DIR")
    out = []
    for f in files[:n]:
        with Image.open(f) as im:
            out.append(np.asarray(im.convert("RGB").resize(size)))
    return out


def _mark(w: int, h: int) -> tuple[object, np.ndarray]:
    wm = make_watermark(np.random.default_rng(4), h, w, "text")
    return wm, wm.region()


def test_batch_keeps_names_sizes_and_formats(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    photos = _photos(3)
    wm, region = _mark(200, 150)
    src = tmp_path / "in"
    src.mkdir()
    names = ["a.png", "b.jpg", "c.webp"]
    paths = []
    for name, photo in zip(names, photos, strict=True):
        p = src / name
        Image.fromarray(wm.apply(photo)).save(p)  # type: ignore[attr-defined]
        paths.append(p)
    mask = tmp_path / "mask.png"
    Image.fromarray(region.astype(np.uint8) * 255).save(mask)
    out = tmp_path / "out"
    code = remove_watermark_command(paths, out, mask)
    assert code == 0, capsys.readouterr()
    for name, fmt in zip(names, ("PNG", "JPEG", "WEBP"), strict=True):
        with Image.open(out / name) as im:
            assert im.format == fmt and im.size == (200, 150)
    # The watermark region changed; far from it nothing did.
    with Image.open(out / "a.png") as im:
        restored = np.asarray(im.convert("RGB"))
    marked = np.asarray(Image.open(paths[0]).convert("RGB"))
    assert not np.array_equal(restored[region], marked[region])
    far = np.zeros_like(region)
    far[:20, :20] = True
    far &= ~region
    assert np.array_equal(restored[far], marked[far])


def test_single_input_to_output_file(tmp_path: Path) -> None:
    photo = _photos(1, (160, 120))[0]
    wm = make_watermark(np.random.default_rng(9), 120, 160, "cjk")
    src = tmp_path / "photo.jpg"
    Image.fromarray(wm.apply(photo)).save(src, quality=95)
    mask = tmp_path / "m.png"
    Image.fromarray(wm.region().astype(np.uint8) * 255).save(mask)
    target = tmp_path / "clean.png"
    assert remove_watermark_command([src], target, mask) == 0
    with Image.open(target) as im:
        assert im.format == "PNG" and im.size == (160, 120)


@pytest.mark.parametrize(("name", "mode"), [("scan.jpg", "L"), ("scan.png", "LA")])
def test_a_grey_photo_comes_back_grey(tmp_path: Path, name: str, mode: str) -> None:
    """The engine works in RGB; a grey input is still written grey (with its transparency),
    not as three equal channels."""
    photo = _photos(1)[0]
    wm, region = _mark(200, 150)
    grey = np.asarray(Image.fromarray(wm.apply(photo)).convert("L"))  # type: ignore[attr-defined]
    src = tmp_path / name
    if mode == "LA":
        see_through = np.full_like(grey, 255)
        see_through[:10] = 0
        Image.fromarray(np.dstack([grey, see_through]), "LA").save(src)
    else:
        Image.fromarray(grey).save(src, quality=95)
    mask = tmp_path / "mask.png"
    Image.fromarray(region.astype(np.uint8) * 255).save(mask)
    target = tmp_path / "out" / name
    assert remove_watermark_command([src], target, mask) == 0
    with Image.open(target) as im, Image.open(src) as original:
        assert im.mode == mode and im.size == original.size
        restored = np.asarray(im)
        before = np.asarray(original)
    if mode == "LA":
        assert np.array_equal(restored[..., 1], before[..., 1])
        restored, before = restored[..., 0], before[..., 0]
    assert not np.array_equal(restored[region], before[region])


def test_failed_inputs_are_named_and_exit_nonzero(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    photo = _photos(1)[0]
    good = tmp_path / "good.png"
    Image.fromarray(photo).save(good)
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"not an image")
    missing = tmp_path / "missing.png"
    mask = tmp_path / "mask.png"
    m = np.zeros((150, 200), np.uint8)
    m[10:30, 10:60] = 255
    Image.fromarray(m).save(mask)
    out = tmp_path / "out"
    code = remove_watermark_command([good, bad, missing], out, mask)
    assert code == 1
    err = capsys.readouterr().err
    assert "broken.png" in err and "missing.png" in err
    assert (out / "good.png").exists() and not (out / "broken.png").exists()


def test_mask_of_the_wrong_size_fails_that_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    photo = _photos(1)[0]
    src = tmp_path / "p.png"
    Image.fromarray(photo).save(src)
    mask = tmp_path / "mask.png"
    Image.fromarray(np.zeros((10, 10), np.uint8)).save(mask)
    code = remove_watermark_command([src], tmp_path / "o.png", mask)
    assert code == 1
    assert "mask_size" in capsys.readouterr().err


def test_unreadable_mask_is_a_usage_error(tmp_path: Path) -> None:
    photo = _photos(1)[0]
    src = tmp_path / "p.png"
    Image.fromarray(photo).save(src)
    mask = tmp_path / "mask.png"
    mask.write_bytes(b"nope")
    assert remove_watermark_command([src], tmp_path / "o.png", mask) == 2
