"""The offline commands and the formats' limits (WebP 16383 pixels per side, JPEG 65500, GIF
65535): a photo whose result its output format cannot hold fails at once, with the API's code
(`output_too_large`) and what to choose instead, before the model runs, and nothing is
written for it. Before, it failed after processing (`too_many_pixels`), or crashed the
command with a traceback (JPEG: libjpeg's error; GIF: an OverflowError)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from removeany.cli import app as cli_app


def strip(path: Path, width: int, height: int) -> Path:
    pixels = np.full((height, width, 3), 235, dtype=np.uint8)
    pixels[:, width // 3 : 2 * width // 3] = (40, 60, 120)
    Image.fromarray(pixels).save(path)
    return path


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli_app, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize(
    ("command", "size", "target", "extra", "limit"),
    [
        ("remove-background", (16400, 40), "out.webp", [], "16,383"),
        ("remove-background", (16000, 40), "out.webp", ["--crop", "--crop-margin", "300px"], ""),
        ("remove-background", (65501, 2), "out.jpg", [], "65,500"),
        ("remove-background", (65501, 2), "out.zip", [], "65,500"),
        ("cutout-portrait", (16400, 40), "out.webp", [], "16,383"),
        ("remove-watermark", (16400, 40), "out.webp", ["--boxes", "0,0,50,20"], "16,383"),
        ("remove-watermark", (65501, 2), "out.jpg", ["--boxes", "0,0,50,2"], "65,500"),
        ("remove-watermark", (65536, 2), "out.gif", ["--boxes", "0,0,50,2"], "65,535"),
    ],
)
def test_a_result_its_format_cannot_hold_fails_at_once_and_writes_nothing(
    tmp_path: Path,
    model_dir: Path,
    command: str,
    size: tuple[int, int],
    target: str,
    extra: list[str],
    limit: str,
) -> None:
    source = strip(tmp_path / "wide.png", *size)
    out = tmp_path / "out"
    out.mkdir()

    code, stdout, stderr = run(
        command, str(source), "-o", str(out / target), "--model-dir", str(model_dir), *extra
    )

    assert code == 1, stderr
    assert f"{source}: output_too_large: " in stderr
    assert f"at most {limit}" in stderr and "choose PNG" in stderr
    assert "Traceback" not in stderr
    assert stdout.strip() == f"0 of 1 image written to {out / target}"
    assert list(out.iterdir()) == []


def test_a_folder_goes_on_past_such_a_photo(tmp_path: Path, model_dir: Path) -> None:
    inbox = tmp_path / "in"
    inbox.mkdir()
    wide = strip(inbox / "wide.png", 16400, 40)
    strip(inbox / "small.png", 120, 40)
    out = tmp_path / "out"

    code, stdout, stderr = run(
        "remove-background", str(inbox), "-o", str(out), "--format", "webp",
        "--model-dir", str(model_dir),
    )  # fmt: skip

    assert code == 1
    assert f"{wide}: output_too_large: A WebP result can be at most 16,383 pixels" in stderr
    assert "size 'preview'" in stderr
    assert "1 of 2 images written" in stdout
    assert [p.name for p in out.iterdir()] == ["small.webp"]


def test_a_size_that_fits_is_written(tmp_path: Path, model_dir: Path) -> None:
    """`--size preview` brings the WebP within its limit: written, not refused."""
    source = strip(tmp_path / "wide.png", 16400, 40)
    target = tmp_path / "out.webp"

    code, _, stderr = run(
        "remove-background", str(source), "-o", str(target), "--size", "preview",
        "--model-dir", str(model_dir),
    )  # fmt: skip

    assert code == 0, stderr
    with Image.open(target) as result:
        assert result.format == "WEBP" and max(result.size) <= 16383
