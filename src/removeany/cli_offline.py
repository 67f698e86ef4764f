"""Offline commands: run the engine on local files, with no server, database or account.

``remove_background_command`` keeps Typer metadata in its signature, so the CLI registers it
through a thin wrapper that turns the returned exit code into ``typer.Exit``.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import Progress

from removeany.engine.background import DEFAULT_MODEL, remove_background
from removeany.engine.errors import ImageError, ModelError
from removeany.engine.io import OutputFormat, decode_image, encode_image
from removeany.engine.models import load_session

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff"})
OUTPUT_FORMATS: dict[str, OutputFormat] = {
    ".png": "png",
    ".webp": "webp",
    ".jpg": "jpg",
    ".jpeg": "jpg",
}
DEFAULT_MAX_BYTES = 200 * 1024 * 1024
DEFAULT_MAX_PIXELS = 100_000_000
EXIT_OK, EXIT_FAILURES, EXIT_USAGE = 0, 1, 2


@dataclass(frozen=True)
class Task:
    source: Path
    target: Path


def remove_background_command(
    inputs: Annotated[list[Path], typer.Argument(help="Image files or folders (searched deeply).")],
    output: Annotated[
        Path,
        typer.Option(
            "--output",
            "-o",
            help="Output file for a single input file, otherwise a folder receiving STEM.png.",
        ),
    ],
    model: Annotated[str, typer.Option(help="Model name.")] = DEFAULT_MODEL,
    model_dir: Annotated[Path | None, typer.Option(help="Folder holding model files.")] = None,
    max_bytes: Annotated[int, typer.Option(help="Largest input file in bytes.")] = (
        DEFAULT_MAX_BYTES
    ),
    max_pixels: Annotated[int, typer.Option(help="Largest input in pixels.")] = (
        DEFAULT_MAX_PIXELS
    ),
) -> int:
    """Cut out the subject of each input; keeps going past failures and returns an exit code."""
    err = Console(stderr=True)
    try:
        load_session(model, model_dir)
    except ModelError as exc:
        err.print(f"error: {exc.message}", markup=False, highlight=False)
        return EXIT_USAGE
    single_file = len(inputs) == 1 and inputs[0].is_file() and not output.is_dir()
    if single_file and output.suffix.lower() not in OUTPUT_FORMATS:
        err.print(f"error: {output} must end in .png, .webp or .jpg.", markup=False)
        return EXIT_USAGE
    tasks = [Task(inputs[0], output)] if single_file else list(_plan(inputs, output))
    if not tasks:
        err.print("error: no image files found in the inputs.", markup=False)
        return EXIT_USAGE

    failures = 0
    written: set[Path] = set()
    with Progress(disable=not sys.stdout.isatty()) as progress:
        bar = progress.add_task("Removing backgrounds", total=len(tasks))
        for task in tasks:
            if task.target in written:
                problem: str | None = (
                    f"duplicate_output: another input is also written to {task.target}; "
                    "rename one of them."
                )
            else:
                problem = _run_one(task, model, model_dir, max_bytes, max_pixels)
                written.add(task.target)
            if problem is not None:
                failures += 1
                err.print(f"error: {task.source}: {problem}", markup=False, highlight=False)
            progress.advance(bar)
    done = len(tasks) - failures
    print(f"{done} of {len(tasks)} images written to {output}")
    return EXIT_FAILURES if failures else EXIT_OK


def _plan(inputs: list[Path], output: Path) -> Iterator[Task]:
    """Files map to OUT/STEM.png; folders keep their relative subfolders under OUT."""
    out_root = output.resolve()
    for item in inputs:
        if item.is_dir():
            for path in sorted(item.rglob("*")):
                inside_output = path.resolve().is_relative_to(out_root)
                if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES and not inside_output:
                    relative = path.relative_to(item).with_suffix(".png")
                    yield Task(path, output / relative)
        else:
            # Explicit files are always tried, whatever their extension; missing ones fail.
            yield Task(item, output / f"{item.stem}.png")


def _run_one(
    task: Task, model: str, model_dir: Path | None, max_bytes: int, max_pixels: int
) -> str | None:
    """Process one file; returns 'code: message' on failure instead of stopping the batch."""
    try:
        size = task.source.stat().st_size
        if size > max_bytes:
            raise ImageError(
                "file_too_large", f"The file is {size:,} bytes; the limit is {max_bytes:,}."
            )
        image = decode_image(task.source.read_bytes(), max_bytes=max_bytes, max_pixels=max_pixels)
        cutout = remove_background(image, model=model, model_dir=model_dir)
        fmt = OUTPUT_FORMATS.get(task.target.suffix.lower(), "png")
        task.target.parent.mkdir(parents=True, exist_ok=True)
        task.target.write_bytes(encode_image(cutout, fmt))
    except ImageError as exc:
        return f"{exc.code}: {exc.message}"
    except OSError as exc:
        return f"io_error: {exc.strerror or exc}"
    return None
