"""`removeany remove-background` offline: real files, real model, through a real Typer app."""

from __future__ import annotations

import functools
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import typer
from PIL import Image
from typer.testing import CliRunner

from removeany.cli_offline import remove_background_command

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
    out = tmp_path / "out"

    code, stdout, stderr = _invoke(str(inbox), "-o", str(out), "--model-dir", str(model_dir))

    assert code == 1
    assert "broken.jpg" in stderr and "corrupt_image" in stderr
    assert "runner.jpg" not in stderr and "notes.txt" not in stderr
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


def test_missing_model_is_a_usage_error(tmp_path: Path, photo: Path) -> None:
    target = str(tmp_path / "x.png")
    code, _, stderr = _invoke(str(photo), "-o", target, "--model-dir", str(tmp_path))
    assert code == 2
    assert "removeany models fetch" in stderr
