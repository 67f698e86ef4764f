"""`removeany remove-background` offline: real files, real model, through a real Typer app."""

from __future__ import annotations

import functools
import os
import shutil
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import typer
from PIL import Image
from typer.testing import CliRunner

from removeany.cli import app as cli_app
from removeany.cli_offline import PhotoSlots, header_pixels, remove_background_command
from tests.conftest import eval_image

EVAL_DIR = Path(
    os.environ.get("REMOVEANY_EVAL_DIR", Path(__file__).resolve().parents[2] / "shared" / "eval")
)
PHOTO = EVAL_DIR / "portrait" / "davis16_parkour_00050.jpg"


def _app() -> typer.Typer:
    """Registered the way the real CLI does: the returned code becomes the exit status."""
    app = typer.Typer()

    @app.command("remove-background")
    @functools.wraps(remove_background_command)
    def command(*args: object, **kwargs: object) -> None:
        raise typer.Exit(remove_background_command(*args, **kwargs))  # type: ignore[arg-type]

    @app.command("version")
    def version() -> None:  # a second command keeps Typer from flattening the app
        pass

    return app


@pytest.fixture
def photo() -> Path:
    if not PHOTO.exists():
        pytest.skip(f"evaluation image {PHOTO} not found; set REMOVEANY_EVAL_DIR")
    return PHOTO


def _invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(_app(), ["remove-background", *args])
    return result.exit_code, result.stdout, result.stderr


def test_folder_with_a_good_and_a_corrupt_image(
    tmp_path: Path, photo: Path, model_dir: Path
) -> None:
    inbox = tmp_path / "in"
    (inbox / "people").mkdir(parents=True)
    shutil.copyfile(photo, inbox / "people" / "runner.jpg")
    (inbox / "broken.jpg").write_bytes(photo.read_bytes()[:5000])
    (inbox / "notes.txt").write_text("not an image, and not picked up by a folder scan")
    # Hidden files and folders are not picked up either (a batch upload skips them too).
    (inbox / ".thumbnails").mkdir()
    shutil.copyfile(photo, inbox / ".thumbnails" / "runner.jpg")
    (inbox / "._runner.jpg").write_bytes(b"\x00\x05\x16\x07 macOS resource fork")
    out = tmp_path / "out"

    code, stdout, stderr = _invoke(str(inbox), "-o", str(out), "--model-dir", str(model_dir))

    assert code == 1
    assert "broken.jpg" in stderr and "corrupt_image" in stderr
    assert "runner.jpg" not in stderr and "notes.txt" not in stderr
    assert "._runner" not in stderr and ".thumbnails" not in stderr
    assert "1 of 2 images written" in stdout
    written = out / "people" / "runner.png"
    with Image.open(written) as result, Image.open(photo) as original:
        assert result.format == "PNG" and result.mode == "RGBA"
        assert result.size == original.size
        alpha = np.asarray(result.getchannel("A"))
    assert alpha.min() == 0 and alpha.max() == 255
    assert sorted(p.name for p in out.rglob("*") if p.is_file()) == ["runner.png"]


def test_single_file_to_named_output(tmp_path: Path, photo: Path, model_dir: Path) -> None:
    target = tmp_path / "cut.webp"
    code, _, stderr = _invoke(str(photo), "-o", str(target), "--model-dir", str(model_dir))
    assert code == 0, stderr
    with Image.open(target) as result:
        assert result.format == "WEBP" and result.mode == "RGBA"


@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_results_get_the_permissions_the_umask_gives(
    tmp_path: Path, photo: Path, model_dir: Path, umask: int
) -> None:
    """A result is written beside its target and renamed; it must still be the user's ordinary
    file (readable by a web server under umask 022), not a private temporary file."""
    target = tmp_path / "cut.png"
    previous = os.umask(umask)
    try:
        code, _, stderr = _invoke(str(photo), "-o", str(target), "--model-dir", str(model_dir))
    finally:
        os.umask(previous)
    assert code == 0, stderr
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask


def test_missing_model_is_a_usage_error(tmp_path: Path, photo: Path) -> None:
    target = str(tmp_path / "x.png")
    code, _, stderr = _invoke(str(photo), "-o", target, "--model-dir", str(tmp_path))
    assert code == 2
    assert "removeany models fetch" in stderr


def test_options_finish_the_cutout_like_the_api(
    tmp_path: Path, photo: Path, model_dir: Path
) -> None:
    backdrop = tmp_path / "backdrop.png"
    Image.new("RGB", (200, 100), (10, 200, 30)).save(backdrop)
    target = tmp_path / "on-green.jpg"
    code, _, stderr = _invoke(
        str(photo), "-o", str(target), "--model-dir", str(model_dir),
        "--bg-image", str(backdrop), "--crop", "--crop-margin", "10%", "--size", "preview",
    )  # fmt: skip
    assert code == 0, stderr
    with Image.open(target) as result, Image.open(photo) as original:
        assert result.mode == "RGB" and result.width * result.height <= 250_000
        assert result.width / result.height != pytest.approx(original.width / original.height)
        pixels = np.asarray(result).astype(int)
    green = np.abs(pixels - [10, 200, 30]).max(axis=2) < 16
    assert 0.05 < green.mean() < 0.95, "the subject on the backdrop photo"


def test_folder_to_zip_format_and_bad_option(tmp_path: Path, photo: Path, model_dir: Path) -> None:
    inbox = tmp_path / "in"
    inbox.mkdir()
    shutil.copyfile(photo, inbox / "runner.jpg")
    out = tmp_path / "out"
    code, _, stderr = _invoke(
        str(inbox), "-o", str(out), "--model-dir", str(model_dir), "--format", "zip",
        "--size", "preview",
    )  # fmt: skip
    assert code == 0, stderr
    import zipfile

    with zipfile.ZipFile(out / "runner.zip") as archive:
        assert sorted(archive.namelist()) == ["alpha.png", "color.jpg"]
    assert not list(out.glob(".*.part")), "no temporary files left behind"
    code, _, stderr = _invoke(
        str(inbox), "-o", str(tmp_path / "x"), "--model-dir", str(model_dir), "--roi", "0 0 5"
    )
    assert code == 2 and "invalid_roi" in stderr
    assert not (tmp_path / "x").exists()


def test_a_folder_runs_photos_side_by_side_with_the_same_results(
    tmp_path: Path, model_dir: Path
) -> None:
    """Several photos at once, each on one model thread: same cut-outs as one at a time, in
    input order, and two inputs aiming at one output still make the second fail."""
    from removeany.engine.background import remove_background

    names = [f"alphamatting_GT0{i}" for i in range(1, 5)]
    inbox = tmp_path / "in"
    inbox.mkdir()
    for name in names:
        shutil.copyfile(eval_image("object", name), inbox / f"{name}.png")
    twin = tmp_path / "elsewhere" / f"{names[0]}.png"
    twin.parent.mkdir()
    shutil.copyfile(eval_image("object", names[1]), twin)
    out = tmp_path / "out"

    code, stdout, stderr = _invoke(str(inbox), str(twin), "-o", str(out))

    assert code == 1 and "4 of 5 images written" in stdout
    assert f"{twin}: duplicate_output" in stderr.replace("\n", "")
    for name in names:
        with Image.open(inbox / f"{name}.png") as original, Image.open(out / f"{name}.png") as cut:
            expected = np.asarray(remove_background(original.convert("RGB")).getchannel("A"))
            alpha = np.asarray(cut.getchannel("A"))
        difference = np.abs(alpha.astype(int) - expected)
        assert difference.max() <= 2 and (difference > 0).mean() < 0.001, name


def test_photos_share_the_machine_within_a_pixel_budget() -> None:
    """Small photos overlap; two that together exceed the budget never do, and one larger than
    the whole budget still runs (alone)."""
    slots = PhotoSlots(2, pixel_budget=10)
    inside: list[int] = []
    overlaps: list[list[int]] = []
    lock = threading.Lock()

    def photo(pixels: int) -> None:
        with slots.hold(pixels):
            with lock:
                inside.append(pixels)
                if len(inside) > 1:
                    overlaps.append(list(inside))
            time.sleep(0.05)
            with lock:
                inside.remove(pixels)

    with ThreadPoolExecutor(2) as pool:
        list(pool.map(photo, [6, 6, 3, 3, 12, 2]))

    assert overlaps, "small photos ran side by side"
    assert all(sum(pair) <= 10 for pair in overlaps), overlaps
    assert slots.model_threads == 1 and PhotoSlots(1).model_threads is None


def test_a_photo_is_counted_from_its_header(tmp_path: Path, photo: Path) -> None:
    with Image.open(photo) as image:
        assert header_pixels(photo) == image.width * image.height
    junk = tmp_path / "junk.jpg"
    junk.write_bytes(b"not an image at all")
    assert header_pixels(junk) == 0
    assert header_pixels(tmp_path / "missing.jpg") == 0


def test_a_result_never_replaces_its_input(tmp_path: Path, photo: Path, model_dir: Path) -> None:
    """Neither a single file's output nor a folder's STEM.png may be the input itself."""
    with Image.open(photo) as image:
        image.convert("RGB").resize((160, 120)).save(tmp_path / "b.png")
    shutil.copyfile(photo, tmp_path / "a.jpg")
    originals = {p.name: p.read_bytes() for p in tmp_path.iterdir()}

    code, _, stderr = _invoke(
        str(tmp_path / "b.png"), "-o", str(tmp_path / "b.png"), "--model-dir", str(model_dir)
    )
    assert code == 1 and "same_file" in stderr
    code, stdout, stderr = _invoke(
        str(tmp_path / "a.jpg"),
        str(tmp_path / "b.png"),
        "-o",
        str(tmp_path),
        "--model-dir",
        str(model_dir),
    )
    assert code == 1 and "1 of 2 images written" in stdout
    assert "b.png: same_file" in stderr.replace("\n", "")
    assert all((tmp_path / name).read_bytes() == data for name, data in originals.items())
    assert (tmp_path / "a.png").exists()


def test_an_unwritable_output_names_the_result_and_what_to_check(
    tmp_path: Path, photo: Path, model_dir: Path
) -> None:
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the output folder should be")
    code, _, stderr = _invoke(
        str(photo), "-o", str(blocked / "cut.png"), "--model-dir", str(model_dir)
    )
    message = stderr.replace("\n", "")
    assert code == 1 and "io_error" in message and "output folder" in message
    assert not list(tmp_path.glob("**/*.part"))


def test_css_margins_and_colours_as_the_api_takes_them(
    tmp_path: Path, photo: Path, model_dir: Path
) -> None:
    tight, padded = tmp_path / "tight.png", tmp_path / "padded.jpg"
    common = [str(photo), "--model-dir", str(model_dir), "--crop"]
    assert _invoke(*common, "-o", str(tight))[0] == 0
    code, _, stderr = _invoke(
        *common,
        "-o",
        str(padded),
        "--crop-margin",
        "10px 20px 30px 40px",
        "--bg-color",
        "lightblue",
    )
    assert code == 0, stderr
    with Image.open(tight) as subject, Image.open(padded) as result:
        assert result.size == (subject.width + 20 + 40, subject.height + 10 + 30)
        corner = np.asarray(result)[:8, :8].reshape(-1, 3).astype(int)
    assert np.abs(corner - [0xAD, 0xD8, 0xE6]).max() < 12, "the margin shows the CSS colour"


def test_an_animation_is_refused_and_nothing_is_written_for_it(
    tmp_path: Path, photo: Path, model_dir: Path
) -> None:
    """As on every surface: an animated GIF is not cut down to its first frame."""
    inbox = tmp_path / "in"
    inbox.mkdir()
    shutil.copyfile(photo, inbox / "runner.jpg")
    frames = [Image.new("RGB", (64, 48), (40 * i, 90, 0)) for i in range(3)]
    frames[0].save(inbox / "wave.gif", save_all=True, append_images=frames[1:])
    out = tmp_path / "out"

    code, stdout, stderr = _invoke(str(inbox), "-o", str(out), "--model-dir", str(model_dir))

    assert code == 1
    assert "wave.gif: animated_image: The image holds 3 frames" in stderr
    assert "1 of 2 images written" in stdout
    assert sorted(p.name for p in out.iterdir()) == ["runner.png"]


@pytest.mark.parametrize("command", ["remove-background", "cutout-portrait", "remove-watermark"])
def test_every_offline_command_ends_alike_and_speaks_of_local_files(
    tmp_path: Path, model_dir: Path, command: str
) -> None:
    """Each offline command ends with the count on stdout and one 'failed: NAMES' line on
    stderr, and its problems say what to do with a file on disk, not what to upload."""
    notes = tmp_path / "notes.png"
    notes.write_text("a text file with an image's name")
    empty = tmp_path / "empty.jpg"
    empty.touch()
    out = tmp_path / "out"

    result = CliRunner().invoke(
        cli_app, [command, str(notes), str(empty), "-o", str(out), "--model-dir", str(model_dir)]
    )

    assert result.exit_code == 1, result.output
    assert result.stdout.strip() == f"0 of 2 images written to {out}"
    lines = result.stderr.strip().splitlines()
    assert lines[-1] == f"failed: {notes}, {empty}"
    assert f"{notes}: unsupported_format: The file is not a supported image; use a PNG" in (
        result.stderr
    )
    assert f"{empty}: empty_file: The file is empty (0 bytes)" in result.stderr
    assert "upload" not in result.stderr.lower()


@pytest.mark.parametrize(
    ("command", "extra"),
    [
        ("remove-background", []),
        ("cutout-portrait", []),
        ("remove-watermark", ["--boxes", "1,1,9,9"]),
    ],
)
@pytest.mark.parametrize("nested", [False, True])
def test_an_input_folder_in_the_output_folder_is_refused(
    tmp_path: Path, photo: Path, command: str, extra: list[str], nested: bool
) -> None:
    """`removeany remove-background photos -o photos` (or -o .. of it): the output folder's
    files are never read as inputs, so this used to end with 'no image files found in the
    inputs', untrue of a folder of photos. Now it says what is wrong and what to do, exit 2,
    nothing written."""
    photos = tmp_path / "out" / "photos" if nested else tmp_path / "photos"
    photos.mkdir(parents=True)
    shutil.copyfile(photo, photos / "runner.jpg")
    out = tmp_path / "out" if nested else photos
    result = CliRunner().invoke(cli_app, [command, str(photos), "-o", str(out), *extra])
    assert result.exit_code == 2, result.stderr
    assert result.stderr == (
        f"error: the output folder {out} is or holds the input folder {photos}, whose photos "
        f"would be left out; choose an output folder outside {photos}.\n"
    )
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == ["runner.jpg"]


def test_one_input_and_an_output_folder_gets_stem_png(
    tmp_path: Path, photo: Path, model_dir: Path
) -> None:
    """`remove-background photo.jpg -o cutouts` (the folder not made yet) writes
    cutouts/STEM.png, as a folder input and `remove-watermark -o OUTDIR` do, instead of
    stopping with "must end in .png"; an output named like an image it cannot write still
    stops (tests/test_cli_output_names.py has the rule for every command)."""
    out = tmp_path / "cutouts"
    code, stdout, stderr = _invoke(str(photo), "-o", str(out), "--model-dir", str(model_dir))
    assert code == 0, stderr
    assert [p.name for p in out.iterdir()] == [f"{photo.stem}.png"]
    with Image.open(out / f"{photo.stem}.png") as result:
        assert result.format == "PNG" and result.mode == "RGBA"
    assert stdout.endswith(f"1 of 1 image written to {out}\n")

    code, _, stderr = _invoke(str(photo), "-o", str(tmp_path / "cut.bmp"))
    assert code == 2 and "unsupported_output: " in stderr
    assert "remove-background writes .png, .jpg, .jpeg, .webp or .zip files" in stderr
