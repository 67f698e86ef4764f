"""What each offline command reads and writes, and how it takes `-o`, by one rule for all three:
the same inputs are read (PNG, JPEG, WebP, GIF, BMP, TIFF); `-o NAME.EXT` is the result file of
one input when EXT is one of the command's formats; another image or archive extension is
refused (`unsupported_output`, exit 2, nothing made); a file name for several inputs or a
folder is refused (`output_not_folder`); any other name is a folder. Before, `remove-watermark
IN -o x.zip` and every command's `-o out.heic` made a folder of that name, several inputs with
`-o out.png` made a folder `out.png`, and the cutout commands refused `.bmp` in a sentence of
their own, with no code. Also what else a newcomer's `-o` and inputs met: an output over
another input or the --mask/--bg-image file, `-o -`, an input that never ends. Real photos,
the real `removeany` app."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from removeany.cli import app as cli_app

from .engine._eval import EVAL_DIR

WRITES = {
    "remove-background": ".png, .jpg, .jpeg, .webp or .zip",
    "cutout-portrait": ".png, .jpg, .jpeg or .webp",
    "remove-watermark": ".png, .jpg, .jpeg, .webp, .bmp, .gif, .tif or .tiff",
}
# Pillow's name of what each written suffix holds (the zip: remove.bg's color.jpg + alpha.png).
CONTENT = {
    ".png": "PNG",
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".webp": "WEBP",
    ".bmp": "BMP",
    ".gif": "GIF",
    ".tif": "TIFF",
    ".tiff": "TIFF",
}
READ = [(".png", "PNG"), (".jpg", "JPEG"), (".webp", "WEBP"), (".bmp", "BMP")]
READ += [(".gif", "GIF"), (".tif", "TIFF"), (".tiff", "TIFF"), (".jpeg", "JPEG")]


def run(command: str, *args: str, model_dir: Path) -> tuple[int, str, str]:
    extra = ["--boxes", "1,1,9,9"] if command == "remove-watermark" else []
    result = CliRunner().invoke(cli_app, [command, *args, "--model-dir", str(model_dir), *extra])
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def photo(tmp_path: Path) -> Path:
    """A real photo, small, as a JPEG in a folder of its own."""
    files = sorted((EVAL_DIR / "clean").glob("kodak_*")) if EVAL_DIR.is_dir() else []
    if not files:
        pytest.skip(f"evaluation images not found under {EVAL_DIR}; set REMOVEANY_EVAL_DIR")
    folder = tmp_path / "photos"
    folder.mkdir()
    with Image.open(files[0]) as im:
        small = im.convert("RGB").resize((96, 64))
    small.save(folder / "photo.jpg", quality=95)
    return folder / "photo.jpg"


def made(tmp_path: Path) -> list[str]:
    """Everything under tmp_path but the input photos."""
    made = (p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    return sorted(str(p) for p in made if p.parts[0] != "photos")


@pytest.mark.parametrize("command", list(WRITES))
def test_each_command_writes_the_formats_it_lists(
    tmp_path: Path, photo: Path, model_dir: Path, command: str
) -> None:
    for suffix in WRITES[command].replace(" or ", ", ").split(", "):
        target = tmp_path / f"result{suffix}"
        code, stdout, stderr = run(command, str(photo), "-o", str(target), model_dir=model_dir)
        assert code == 0, (suffix, stderr)
        assert stdout.endswith(f"1 of 1 image written to {target}\n")
        if suffix == ".zip":
            with zipfile.ZipFile(target) as archive:
                assert sorted(archive.namelist()) == ["alpha.png", "color.jpg"]
            continue
        with Image.open(target) as im:
            assert (im.format, im.size) == (CONTENT[suffix], (96, 64)), suffix


@pytest.mark.parametrize(
    ("command", "suffix"),
    [
        ("remove-watermark", ".zip"),
        ("cutout-portrait", ".zip"),
        ("remove-background", ".bmp"),
        ("remove-background", ".gif"),
        ("remove-background", ".tif"),
        ("cutout-portrait", ".tiff"),
        ("cutout-portrait", ".gif"),
        ("remove-background", ".heic"),
        ("cutout-portrait", ".avif"),
        ("remove-watermark", ".heic"),
        ("remove-watermark", ".tar"),
        ("remove-watermark", ".PDF"),
    ],
)
def test_an_output_format_a_command_cannot_write_is_refused_and_nothing_is_made(
    tmp_path: Path, photo: Path, model_dir: Path, command: str, suffix: str
) -> None:
    """`remove-watermark IN -o x.zip` made a folder named x.zip (as every command did with
    `-o out.heic`), and the cutout commands refused `.bmp` with a sentence of their own; now
    every command says the same thing with the same code, exit 2, and makes nothing."""
    target = tmp_path / f"result{suffix}"
    code, stdout, stderr = run(command, str(photo), "-o", str(target), model_dir=model_dir)
    assert code == 2, stderr
    assert stdout == ""
    assert " ".join(stderr.split()) == (
        f"error: unsupported_output: {target}: {command} writes {WRITES[command]} files; end "
        "the name in one of those, or give a folder (a name without an extension)."
    )
    assert made(tmp_path) == []


def test_an_id_photo_lists_its_own_formats(tmp_path: Path, photo: Path, model_dir: Path) -> None:
    target = tmp_path / "id.webp"
    code, _, stderr = run(
        "cutout-portrait", str(photo), "-o", str(target), "--id-photo", "1inch",
        model_dir=model_dir,
    )  # fmt: skip
    assert code == 2
    assert " ".join(stderr.split()) == (
        f"error: unsupported_output: {target}: cutout-portrait --id-photo writes .png, .jpg or "
        ".jpeg files; end the name in one of those, or give a folder (a name without an "
        "extension)."
    )
    assert made(tmp_path) == []


@pytest.mark.parametrize("command", list(WRITES))
@pytest.mark.parametrize("many", ["two files", "a folder"])
def test_a_file_name_for_several_results_is_refused(
    tmp_path: Path, photo: Path, model_dir: Path, command: str, many: str
) -> None:
    """`a.jpg b.jpg -o out.png` (or `photos/ -o out.png`) made a folder named out.png."""
    second = photo.with_name("second.png")
    Image.open(photo).save(second)
    inputs = [str(photo), str(second)] if many == "two files" else [str(photo.parent)]
    target = tmp_path / "out.png"
    code, stdout, stderr = run(command, *inputs, "-o", str(target), model_dir=model_dir)
    assert code == 2, stderr
    what = "2 inputs need" if many == "two files" else "a folder of inputs needs"
    assert " ".join(stderr.split()) == (
        f"error: output_not_folder: {target} names a file, and {what} an output folder; give "
        "a folder (a name without an extension, made if need be)."
    )
    assert stdout == "" and made(tmp_path) == []


@pytest.mark.parametrize("command", list(WRITES))
def test_an_existing_file_is_no_output_folder(
    tmp_path: Path, photo: Path, model_dir: Path, command: str
) -> None:
    """One input and `-o notes.txt`, an existing file that is no image name: a sentence for
    one input (it spoke of 'several inputs'), the file kept."""
    notes = tmp_path / "notes.txt"
    notes.write_text("kept")
    code, stdout, stderr = run(command, str(photo), "-o", str(notes), model_dir=model_dir)
    assert code == 2, stderr
    assert " ".join(stderr.split()) == (
        f"error: output_not_folder: {notes} is a file, not a folder; give a folder, or a file "
        f"name ending in {WRITES[command]}."
    )
    assert stdout == "" and notes.read_text() == "kept"


@pytest.mark.parametrize("command", list(WRITES))
def test_a_folder_name_with_dots_is_still_a_folder(
    tmp_path: Path, photo: Path, model_dir: Path, command: str
) -> None:
    out = tmp_path / "shoot.2024.06"
    code, _, stderr = run(command, str(photo), "-o", str(out), model_dir=model_dir)
    assert code == 0, stderr
    assert [p.name for p in out.iterdir()] == [
        "photo.jpg" if command == "remove-watermark" else "photo.png"
    ]


@pytest.mark.parametrize("command", list(WRITES))
def test_every_command_reads_the_same_formats(
    tmp_path: Path, photo: Path, model_dir: Path, command: str
) -> None:
    """A folder of PNG, JPEG, WebP, GIF, BMP and TIFF files: every command reads them all; the
    cutouts are STEM.png, RGBA; a watermark result keeps its input's name and format."""
    folder = tmp_path / "formats"
    folder.mkdir()
    with Image.open(photo) as im:
        for suffix, fmt in READ:
            im.save(folder / f"p_{suffix[1:]}{suffix}", fmt)
    out = tmp_path / "out"
    code, stdout, stderr = run(command, str(folder), "-o", str(out), model_dir=model_dir)
    assert code == 0, stderr
    assert stdout.endswith(f"8 of 8 images written to {out}\n")
    for suffix, fmt in READ:
        name = f"p_{suffix[1:]}"
        if command == "remove-watermark":
            with Image.open(out / f"{name}{suffix}") as im:
                assert (im.format, im.size) == (fmt, (96, 64))
        else:
            with Image.open(out / f"{name}.png") as im:
                assert (im.format, im.mode, im.size) == ("PNG", "RGBA", (96, 64))


def test_remove_background_format_reads_as_cutout_portraits_does(
    tmp_path: Path, photo: Path, model_dir: Path
) -> None:
    """`--format jpeg` (any case) was refused by remove-background while cutout-portrait took
    it; and a --format the one output file's suffix contradicts was silently ignored there
    (cutout-portrait refused it)."""
    out = tmp_path / "out"
    code, _, stderr = run(
        "remove-background", str(photo), "-o", str(out), "--format", "JPEG", model_dir=model_dir
    )
    assert code == 0, stderr
    with Image.open(out / "photo.jpg") as im:
        assert im.format == "JPEG"
    for command in ("remove-background", "cutout-portrait"):
        target = tmp_path / "cut.png"
        code, _, stderr = run(
            command, str(photo), "-o", str(target), "--format", "webp", model_dir=model_dir
        )
        assert code == 2, (command, stderr)
        assert " ".join(stderr.split()) == (
            f"error: invalid_format: --format webp does not match {target}'s suffix; for one "
            "output file the suffix picks the format: leave --format out, or change the suffix."
        )
        assert not target.exists()


@pytest.mark.parametrize("command", list(WRITES))
def test_a_file_in_the_way_of_the_output_folder_is_named(
    tmp_path: Path, photo: Path, model_dir: Path, command: str
) -> None:
    """`-o photo.jpg/x.png` said 'File exists; check that the input exists and can be read'."""
    blocker = tmp_path / "taken.jpg"
    blocker.write_bytes(b"kept")
    target = blocker / "x.png"
    code, _, stderr = run(command, str(photo), "-o", str(target), model_dir=model_dir)
    assert code == 1
    assert f"io_error: {blocker}: File exists; that is a file, where the output folder should " in (
        " ".join(stderr.split())
    )
    assert "Traceback" not in stderr and blocker.read_bytes() == b"kept"


@pytest.mark.parametrize("command", list(WRITES))
def test_help_lists_the_formats_each_command_writes(command: str) -> None:
    result = CliRunner().invoke(cli_app, [command, "--help"], env={"COLUMNS": "400"})
    assert result.exit_code == 0
    assert WRITES[command] in " ".join(result.stdout.split())


@pytest.mark.parametrize("command", list(WRITES))
def test_an_output_never_replaces_another_input(
    tmp_path: Path, photo: Path, model_dir: Path, command: str
) -> None:
    """`remove-background x/a.jpg x/a.png -o x` (cutout-portrait alike) wrote a.jpg's cut-out
    over the photo a.png: only an output that is its own input was caught. Now such an output
    fails, saying whose file it would replace, and every original is kept. (remove-watermark's
    `x/a.jpg v/a.jpg -o x` was already refused, as a duplicate output; it now says why.)"""
    folder = photo.parent
    if command == "remove-watermark":
        other = tmp_path / "other" / "photo.jpg"
        other.parent.mkdir()
        Image.open(photo).rotate(90, expand=True).save(other)
    else:
        other = folder / "photo.png"
        Image.open(photo).save(other)
    originals = {p: p.read_bytes() for p in (photo, other)}
    code, stdout, stderr = run(
        command, str(photo), str(other), "-o", str(folder), model_dir=model_dir
    )
    said = " ".join(stderr.split())
    assert code == 1 and stdout.endswith(f"0 of 2 images written to {folder}\n"), said
    if command == "remove-watermark":  # other's result, photos/photo.jpg, is photo
        culprit, target, clobbered = other, folder / "photo.jpg", photo
    else:  # photo's cut-out, photos/photo.png, is other
        culprit, target, clobbered = photo, folder / "photo.png", other
    assert (
        f"error: {culprit}: same_file: the output {target} would overwrite the input "
        f"{clobbered}; choose another output name or folder."
    ) in said
    assert all(p.read_bytes() == data for p, data in originals.items())


@pytest.mark.parametrize(
    ("command", "option"), [("remove-watermark", "--mask"), ("remove-background", "--bg-image")]
)
def test_an_output_never_replaces_a_file_an_option_names(
    tmp_path: Path, photo: Path, model_dir: Path, command: str, option: str
) -> None:
    """`remove-watermark IN -o mask.png --mask mask.png` wrote the result over the user's mask
    (and `remove-background IN -o bg.png --bg-image bg.png` over the backdrop photo)."""
    used = tmp_path / "used.png"
    with Image.open(photo) as im:
        (im.convert("L").point(lambda v: 255 if v > 128 else 0) if option == "--mask" else im).save(
            used
        )
    before = used.read_bytes()
    result = CliRunner().invoke(
        cli_app,
        [command, str(photo), "-o", str(used), option, str(used), "--model-dir", str(model_dir)],
    )
    said = " ".join(result.stderr.split())
    assert result.exit_code == 1, said
    assert (
        f"error: {photo}: same_file: the output {used} would overwrite the {option} file {used}; "
        "choose another output name or folder."
    ) in said
    assert used.read_bytes() == before


@pytest.mark.parametrize("command", list(WRITES))
def test_standard_output_is_refused_not_made_a_folder(
    tmp_path: Path, photo: Path, model_dir: Path, command: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`-o -` (a newcomer's guess at standard output) made a folder named '-'."""
    monkeypatch.chdir(tmp_path)
    code, stdout, stderr = run(command, str(photo), "-o", "-", model_dir=model_dir)
    assert code == 2 and stdout == ""
    assert " ".join(stderr.split()) == (
        "error: unsupported_output: -o -: results are written to files, not to standard "
        f"output; give a file name ending in {WRITES[command]}, or a folder."
    )
    assert made(tmp_path) == []


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="needs /dev/zero")
@pytest.mark.parametrize("command", list(WRITES))
def test_an_endless_input_is_refused_at_the_byte_limit(
    tmp_path: Path, model_dir: Path, command: str
) -> None:
    """`/dev/zero` (or any device or pipe that never ends) was read whole before --max-bytes
    was checked: memory grew until the command died with a MemoryError traceback. Now it is
    `file_too_large` once --max-bytes have come. Run as a process with its address space
    capped, so the old behaviour fails the test instead of the machine."""
    import resource
    import subprocess
    import sys

    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))

    extra = ["--boxes", "1,1,9,9"] if command == "remove-watermark" else []
    done = subprocess.run(
        [
            sys.executable, "-m", "removeany", command, "/dev/zero",
            "-o", str(tmp_path / "out.png"), "--max-bytes", "1000000",
            "--model-dir", str(model_dir), *extra,
        ],
        capture_output=True, text=True, timeout=300, preexec_fn=cap, check=False,
    )  # fmt: skip
    said = " ".join(done.stderr.split())
    assert done.returncode == 1, said
    assert "error: /dev/zero: file_too_large: The file is more than 1,000,000 bytes" in said
    assert "Traceback" not in said and list(tmp_path.iterdir()) == []
