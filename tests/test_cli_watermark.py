"""`removeany remove-watermark`: names, sizes and formats kept; failures named; exit codes."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageCms, JpegImagePlugin
from typer.testing import CliRunner

from removeany.cli import app
from removeany.cli_watermark import remove_watermark_command
from removeany.engine.models import fetch_model
from removeany.engine.watermark import TEXT_DETECTOR

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks" / "watermark"))
from synth import make_watermark  # noqa: E402

from .engine._eval import EVAL_DIR, psnr  # noqa: E402


def _photos(n: int, size: tuple[int, int] = (200, 150)) -> list[np.ndarray]:
    files = sorted((EVAL_DIR / "clean").glob("kodak_*")) if EVAL_DIR.is_dir() else []
    if len(files) < n:
        pytest.skip(f"evaluation images not found under {EVAL_DIR}; set REMOVEANY_EVAL_DIR")
    out = []
    for f in files[:n]:
        with Image.open(f) as im:
            out.append(np.asarray(im.convert("RGB").resize(size)))
    return out


def _photo_file(tmp_path: Path) -> Path:
    """An unmarked photo saved as tmp_path/p.png."""
    src = tmp_path / "p.png"
    Image.fromarray(_photos(1)[0]).save(src)
    return src


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
    src = _photo_file(tmp_path)
    mask = tmp_path / "mask.png"
    Image.fromarray(np.zeros((10, 10), np.uint8)).save(mask)
    code = remove_watermark_command([src], tmp_path / "o.png", mask)
    assert code == 1
    assert "mask_size" in capsys.readouterr().err


def test_unreadable_mask_is_a_usage_error(tmp_path: Path) -> None:
    src = _photo_file(tmp_path)
    mask = tmp_path / "mask.png"
    mask.write_bytes(b"nope")
    assert remove_watermark_command([src], tmp_path / "o.png", mask) == 2


def test_the_output_may_not_replace_the_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = _photo_file(tmp_path)
    before = src.read_bytes()
    assert remove_watermark_command([src], src, boxes="10,10,40,20") == 1
    assert "same_file" in capsys.readouterr().err
    assert src.read_bytes() == before


def test_a_gif_keeps_its_transparency_and_a_photo_its_profile(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """What the restoration does not touch is written back: GIF transparency, the colour
    profile. An animation is refused as on every other surface (animated_image), and
    nothing is written for it."""
    photo = _photos(1)[0]
    wm, region = _mark(200, 150)
    marked = Image.fromarray(wm.apply(photo))  # type: ignore[attr-defined]
    clear = np.zeros((150, 200), bool)
    clear[:, :30] = True
    rgba = marked.convert("RGBA")
    rgba.putalpha(Image.fromarray(np.where(clear, 0, 255).astype(np.uint8)))
    gif = tmp_path / "in" / "clear.gif"
    gif.parent.mkdir()
    rgba.save(gif)
    anim = tmp_path / "in" / "anim.gif"
    later = Image.new("RGBA", (200, 150), (0, 90, 0, 255))
    rgba.save(anim, save_all=True, append_images=[later])
    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    tagged = tmp_path / "in" / "tagged.png"
    marked.save(tagged, icc_profile=profile)
    mask = tmp_path / "mask.png"
    Image.fromarray(region.astype(np.uint8) * 255).save(mask)
    out = tmp_path / "out"

    assert remove_watermark_command([gif, anim, tagged], out, mask, joint=False) == 1
    err = capsys.readouterr().err
    assert f"error: {anim}: animated_image: The image holds 2 frames" in err
    assert "save the frame you want as PNG or JPEG" in err
    assert sorted(p.name for p in out.iterdir()) == ["clear.gif", "tagged.png"]
    with Image.open(out / "clear.gif") as im:
        alpha = np.asarray(im.convert("RGBA").getchannel("A"))
    assert (alpha[clear] == 0).all() and (alpha[~clear] == 255).all()
    with Image.open(out / "tagged.png") as im:
        assert im.info.get("icc_profile") == profile


def test_boxes_outside_the_photo_fail_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = _photo_file(tmp_path)
    assert remove_watermark_command([src], tmp_path / "o.png", boxes="500,500,10,10") == 1
    assert "invalid_boxes" in capsys.readouterr().err
    assert not (tmp_path / "o.png").exists()


def test_a_mask_that_is_a_decompression_bomb_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = _photo_file(tmp_path)
    mask = tmp_path / "mask.gif"
    # a 10x10 GIF whose one frame declares 30,000 x 30,000 pixels
    mask.write_bytes(
        b"GIF89a\x0a\x00\x0a\x00\x00\x00\x00,\x00\x00\x00\x00\x30\x75\x30\x75\x00"
        b"\x02\x02\x44\x01\x00;"
    )
    assert remove_watermark_command([src], tmp_path / "o.png", mask) == 2
    assert "too_many_pixels" in capsys.readouterr().err


def _invoke(*args: str) -> tuple[int, str, str]:
    """The real `removeany` app, so exit codes are the ones a shell sees."""
    result = CliRunner().invoke(app, ["remove-watermark", *args])
    return result.exit_code, result.stdout, result.stderr


def _marked_folder(root: Path) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """A shoot as it comes off a card: five landscape photos (PNG, JPEG, WebP, two in a
    sub-folder) carrying one text mark, four portrait ones carrying another, and what a
    folder also holds. Returns each image's clean photo and mark region, by relative path."""
    landscape = _photos(9, (360, 240))
    land_mark = make_watermark(np.random.default_rng(3), 240, 360, "text")
    port_mark = make_watermark(np.random.default_rng(4), 360, 240, "text")
    cleans: dict[str, np.ndarray] = {}
    regions: dict[str, np.ndarray] = {}
    names = ["land0.png", "sub/land1.jpg", "land2.webp", "sub/land3.png", "land4.jpg"]
    names += [f"port{i}.png" for i in range(4)]
    for i, name in enumerate(names):
        portrait = name.startswith("port")
        clean = np.ascontiguousarray(np.rot90(landscape[i])) if portrait else landscape[i]
        mark = port_mark if portrait else land_mark
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(mark.apply(clean)).save(root / name, quality=95)
        cleans[name], regions[name] = clean, mark.region()
    (root / "broken.jpg").write_bytes(b"not a photo")
    (root / "notes.txt").write_text("not an image: left out")
    (root / "gone.jpg").symlink_to(root / "deleted.jpg")
    # Hidden files and folders are left out, as a batch upload leaves them out.
    (root / ".thumbnails").mkdir()
    shutil.copyfile(root / "land0.png", root / ".thumbnails" / "land0.png")
    (root / "._land0.png").write_bytes(b"\x00\x05\x16\x07 macOS resource fork")
    return cleans, regions


def test_a_folder_is_restored_with_its_shared_marks(tmp_path: Path, model_dir: Path) -> None:
    """A folder's images are the inputs: each size's shared mark is estimated from the photos
    that carry it (landscape and portrait apart), every output keeps its name, sub-folder,
    size and format, the mark goes, and a file that cannot be read is named without stopping
    the rest."""
    fetch_model(TEXT_DETECTOR, model_dir)
    shoot = tmp_path / "shoot"
    cleans, regions = _marked_folder(shoot)
    out = tmp_path / "clean"

    code, stdout, stderr = _invoke(str(shoot), "-o", str(out), "--model-dir", str(model_dir))

    assert code == 1, stderr
    assert "broken.jpg" in stderr and "gone.jpg" in stderr
    assert "notes.txt" not in stderr + stdout and "._land0" not in stderr + stdout
    assert ".thumbnails" not in stderr + stdout
    assert "9 of 11 images written" in stdout
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert written == sorted(cleans)
    for name, clean in cleans.items():
        with Image.open(shoot / name) as before, Image.open(out / name) as after:
            assert (after.format, after.size) == (before.format, before.size)
            marked, restored = np.asarray(before.convert("RGB")), np.asarray(after.convert("RGB"))
        group = "5" if name.startswith(("land", "sub/")) else "4"
        assert f"{shoot / name} -> {out / name} (joint estimate from {group} images" in stdout
        region = regions[name]
        assert psnr(clean, restored, region) > psnr(clean, marked, region) + 8.0, name
        assert psnr(clean, restored) >= psnr(clean, marked), name


def test_a_folder_with_a_mask_restores_the_photos_of_its_size(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A mask is painted on one size of photo: photos of that size in the folder are restored
    with it, jointly; a photo of another size fails, saying why, and the rest are written."""
    shoot = tmp_path / "shoot"
    cleans, regions = _marked_folder(shoot)
    mask = shoot / "mask.png"  # kept beside the photos; not one of them
    Image.fromarray(regions["land0.png"].astype(np.uint8) * 255).save(mask)
    out = tmp_path / "clean"

    assert remove_watermark_command([shoot], out, mask) == 1
    said = capsys.readouterr()
    for name in ("port0.png", "broken.jpg", "gone.jpg"):
        assert str(shoot / name) in said.err
    assert "mask_size" in said.err and "mask.png" not in said.out
    landscape = [name for name in cleans if not name.startswith("port")]
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert written == sorted(landscape)
    assert said.out.count("joint estimate from 5 images") == 5
    for name in landscape:
        with Image.open(shoot / name) as before, Image.open(out / name) as after:
            marked, restored = np.asarray(before.convert("RGB")), np.asarray(after.convert("RGB"))
        region = regions[name]
        assert psnr(cleans[name], restored, region) > psnr(cleans[name], marked, region) + 8.0


def test_a_folder_without_images_is_a_usage_error(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "readme.txt").write_text("no photos here")
    code, _, stderr = _invoke(str(empty), "-o", str(tmp_path / "out"), "--boxes", "1,1,5,5")
    assert code == 2 and "no image files found" in stderr
    assert not (tmp_path / "out").exists()


def test_one_input_and_an_output_folder_keeps_the_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`remove-watermark photo.jpg -o cleaned` (the README's -o OUTDIR, the folder not made
    yet): cleaned/photo.jpg, not a JPEG written to a file named `cleaned`. Only an output that
    names an image file (clean.png) is the result file itself."""
    src = tmp_path / "photo.jpg"
    Image.fromarray(_photos(1)[0]).save(src, quality=95)
    out = tmp_path / "cleaned"
    assert remove_watermark_command([src], out, boxes="10,10,40,20") == 0
    assert out.is_dir()
    with Image.open(out / "photo.jpg") as im:
        assert im.format == "JPEG" and im.size == (200, 150)
    assert capsys.readouterr().out.endswith(f"1 of 1 image written to {out}\n")


def _outside(region: np.ndarray, margin: int = 12) -> np.ndarray:
    """Pixels at least ``margin`` away from ``region`` (the restoration blends a little past
    a mask's edge, and a JPEG's 8x8 blocks reach past it too)."""
    ys, xs = np.nonzero(region)
    far = np.ones_like(region)
    far[
        max(0, ys.min() - margin) : ys.max() + margin, max(0, xs.min() - margin) : xs.max() + margin
    ] = False
    return far


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("fine.jpg", {"quality": 95, "subsampling": 0, "dpi": (300, 300)}),
        ("scan.jpg", {"quality": 98, "subsampling": 0, "progressive": True}),
        ("web.jpg", {"quality": 80}),
        ("lossless.webp", {"lossless": True, "exact": True}),
        ("print.png", {"dpi": (300, 300)}),
    ],
)
def test_what_the_mark_did_not_cover_comes_back_as_it_was(
    tmp_path: Path, name: str, params: dict[str, object]
) -> None:
    """Outside the mark a lossless file is bit-identical, a JPEG re-encoded with its own
    tables, subsampling and scan (quality 95 at 4:2:0 before: 43.95 dB over a 4:4:4 photo's
    unmarked area, 41.28 dB over a progressive quality-98 one, and a quality-80 JPEG came
    back 72 % larger), a lossless WebP stays lossless (it was re-encoded lossy, 42.27 dB), and
    the print resolution is kept (it was dropped)."""
    photo = _photos(1, (400, 300))[0]
    wm = make_watermark(np.random.default_rng(2), 300, 400, "text")
    marked = Image.fromarray(wm.apply(photo))  # type: ignore[attr-defined]
    src = tmp_path / name
    marked.save(src, **params)
    mask = tmp_path / "mask.png"
    Image.fromarray(wm.region().astype(np.uint8) * 255).save(mask)
    target = tmp_path / "out" / name

    assert remove_watermark_command([src], target, mask) == 0

    far = _outside(wm.region())
    with Image.open(src) as before, Image.open(target) as after:
        assert (after.format, after.size) == (before.format, before.size)
        assert after.info.get("dpi") == before.info.get("dpi")
        assert target.stat().st_size < src.stat().st_size * 1.1
        was, now = np.asarray(before.convert("RGB")), np.asarray(after.convert("RGB"))
        if before.format == "JPEG":
            assert after.quantization == before.quantization
            assert JpegImagePlugin.get_sampling(after) == JpegImagePlugin.get_sampling(before)
            assert after.info.get("progressive") == before.info.get("progressive")
            assert psnr(was, now, far) >= 50
        else:
            assert np.array_equal(was[far], now[far])
