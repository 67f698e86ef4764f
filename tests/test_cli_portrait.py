"""`removeany cutout-portrait` (cutouts and ID photos) and `remove-watermark --boxes` offline:
real files, real models, through the real Typer app."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from removeany.cli import app
from removeany.engine import portrait
from removeany.engine.models import fetch_model, get_model
from removeany.engine.portrait import ID_BACKGROUNDS
from tests.conftest import REPO, eval_image

sys.path.insert(0, str(REPO / "benchmarks" / "watermark"))
from synth import make_watermark


@pytest.fixture(scope="module")
def models(model_dir: Path) -> Path:
    fetch_model(get_model("blazeface-short"), model_dir)
    return model_dir


def _invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_folder_gives_one_cutout_per_input_and_names_failures(tmp_path: Path, models: Path) -> None:
    inbox = tmp_path / "in"
    (inbox / "day2").mkdir(parents=True)
    shutil.copyfile(eval_image("portrait", "davis16_parkour_00050"), inbox / "runner.jpg")
    shutil.copyfile(eval_image("portrait", "davis16_breakdance_00042"), inbox / "day2" / "b.jpg")
    (inbox / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
    out = tmp_path / "out"
    code, stdout, stderr = _invoke(
        "cutout-portrait", str(inbox), "-o", str(out), "--model-dir", str(models)
    )
    assert code == 1, stderr
    assert "broken.png" in stderr and "corrupt_image" in stderr
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == [
        "day2/b.png",
        "runner.png",
    ]
    assert "2 of 3 images written" in stdout
    with Image.open(out / "runner.png") as im:
        assert im.mode == "RGBA" and im.size == (854, 480)
        opaque = float(np.mean(np.asarray(im.getchannel("A")) > 128))
    assert 0.02 < opaque < 0.8

    # All good inputs: exit 0, JPEGs on a colour with --format jpg.
    (inbox / "broken.png").unlink()
    flat = tmp_path / "flat"
    code, _, stderr = _invoke(
        "cutout-portrait",
        str(inbox / "runner.jpg"),
        str(inbox / "day2"),
        "-o",
        str(flat),
        "--bg-color",
        "81d4fa",
        "--format",
        "jpg",
        "--model-dir",
        str(models),
    )
    assert code == 0, stderr
    assert sorted(p.name for p in flat.iterdir()) == ["b.jpg", "runner.jpg"]
    with Image.open(flat / "runner.jpg") as im:
        assert im.format == "JPEG" and im.size == (854, 480)


def test_id_photo_of_one_file(tmp_path: Path, models: Path, astronaut: Path) -> None:
    target = tmp_path / "id.jpg"
    code, _, stderr = _invoke(
        "cutout-portrait",
        str(astronaut),
        "-o",
        str(target),
        "--id-photo",
        "1inch",
        "--background",
        "blue",
        "--model-dir",
        str(models),
    )
    assert code == 0, stderr
    with Image.open(target) as im:
        assert im.format == "JPEG" and im.size == (295, 413)
        assert im.info["dpi"] == (300, 300)  # prints at 25 x 35 mm
        corner = np.asarray(im.convert("RGB"))[3, 3].astype(int)
    assert np.abs(corner - np.asarray(ID_BACKGROUNDS["blue"])).max() <= 6

    code, _, stderr = _invoke(
        "cutout-portrait",
        str(eval_image("clean", "kodak_kodim01")),
        "-o",
        str(tmp_path / "nobody.jpg"),
        "--id-photo",
        "1inch",
        "--model-dir",
        str(models),
    )
    assert code == 1 and "no_face" in stderr and "kodak_kodim01" in stderr

    # the API's refusals, with the same codes
    code, _, stderr = _invoke(
        "cutout-portrait",
        str(astronaut),
        "-o",
        str(tmp_path / "big.png"),
        "--id-photo",
        "2inch",
        "--model-dir",
        str(models),
    )
    assert code == 1 and "face_too_small" in stderr


@pytest.mark.parametrize(
    "args",
    [
        ["--background", "blue"],
        ["--id-photo", "3inch"],
        ["--id-photo", "1inch", "--background", "green"],
        ["--id-photo", "1inch", "--bg-color", "white"],
        ["--bg-color", "not-a-colour"],
        ["--format", "gif"],
    ],
)
def test_usage_errors_exit_2(tmp_path: Path, args: list[str]) -> None:
    photo = eval_image("portrait", "davis16_parkour_00050")
    code, _, stderr = _invoke("cutout-portrait", str(photo), "-o", str(tmp_path / "o.png"), *args)
    assert code == 2 and stderr.startswith("error:")
    assert not (tmp_path / "o.png").exists()


def test_remove_watermark_with_boxes(tmp_path: Path) -> None:
    with Image.open(eval_image("clean", "kodak_kodim05")) as im:
        clean = np.asarray(im.convert("RGB").resize((320, 240)))
    wm = make_watermark(np.random.default_rng(4), 240, 320, "text")
    marked = wm.apply(clean)
    source = tmp_path / "marked.png"
    Image.fromarray(marked).save(source)
    ys, xs = np.nonzero(wm.region())
    box = f"{xs.min()},{ys.min()},{xs.max() + 1 - xs.min()},{ys.max() + 1 - ys.min()}"
    target = tmp_path / "clean.png"
    code, _, stderr = _invoke("remove-watermark", str(source), "-o", str(target), "--boxes", box)
    assert code == 0, stderr
    with Image.open(target) as im:
        restored = np.asarray(im.convert("RGB"))
    region = wm.region()

    def err(a: np.ndarray) -> float:
        return float(np.abs(a.astype(int) - clean.astype(int))[region].mean())

    assert err(restored) < 0.6 * err(marked)
    code, _, stderr = _invoke(
        "remove-watermark", str(source), "-o", str(target), "--boxes", "1,2,0,4"
    )
    assert code == 2 and "--boxes" in stderr


def test_an_id_photo_writes_nothing_else_to_stderr(
    tmp_path: Path,
    models: Path,
    astronaut: Path,
    capfd: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The README: progress and errors go to stderr, nothing more. The face detector's
    TFLite runtime announced its XNNPACK delegate ("INFO: Created TensorFlow Lite XNNPACK
    delegate for CPU.") on the process's stderr the first time it loaded."""
    monkeypatch.setattr(portrait, "_interpreters", {})  # loaded afresh, as in a new process
    target = tmp_path / "id.jpg"
    code, stdout, _ = _invoke(
        "cutout-portrait", str(astronaut), "-o", str(target), "--id-photo", "1inch",
        "--model-dir", str(models),
    )  # fmt: skip
    assert code == 0 and stdout.endswith(f"1 of 1 image written to {target}\n")
    assert "TensorFlow Lite" not in capfd.readouterr().err


def test_one_input_and_an_output_folder_gets_stem_png(tmp_path: Path, models: Path) -> None:
    """`cutout-portrait photo.jpg -o cutouts` (the folder not made yet) writes
    cutouts/STEM.png (STEM.jpg for an ID photo), as a folder input and `remove-watermark -o
    OUTDIR` do, instead of stopping with "must end in .png"."""
    photo = eval_image("portrait", "davis16_parkour_00050")
    out = tmp_path / "cutouts"
    code, stdout, stderr = _invoke(
        "cutout-portrait", str(photo), "-o", str(out), "--model-dir", str(models)
    )
    assert code == 0, stderr
    assert [p.name for p in out.iterdir()] == [f"{photo.stem}.png"]
    with Image.open(out / f"{photo.stem}.png") as im:
        assert im.format == "PNG" and im.mode == "RGBA"
    assert stdout.endswith(f"1 of 1 image written to {out}\n")

    code, _, stderr = _invoke("cutout-portrait", str(photo), "-o", str(tmp_path / "o.zip"))
    assert code == 2 and "unsupported_output: " in stderr
    assert "cutout-portrait writes .png, .jpg, .jpeg or .webp files" in stderr
