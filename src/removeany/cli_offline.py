"""Offline commands: run the engine on local files, with no server, database or account.

``remove_background_command`` keeps Typer metadata in its signature, so the CLI registers it
through a thin wrapper that turns the returned exit code into ``typer.Exit``.
"""

from __future__ import annotations

import os
import secrets
import sys
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Annotated

import typer
from PIL import Image
from rich.console import Console
from rich.progress import Progress

from removeany.cli_context import count
from removeany.engine.background import remove_background
from removeany.engine.compose import (
    ComposeOptions,
    check_result_format,
    color_alpha_zip,
    compose_result,
    parse_options,
)
from removeany.engine.errors import ImageError, ModelError, OptionError
from removeany.engine.io import OutputFormat, declared_pixels, decode_image, encode_image
from removeany.engine.models import load_session
from removeany.engine.portrait import cutout_portrait
from removeany.infra.settings import Settings
from removeany.operator_models import ServiceModels, register_operator_models

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff"})
OUTPUT_FORMATS: dict[str, OutputFormat] = {
    ".png": "png",
    ".jpg": "jpg",
    ".jpeg": "jpg",
    ".webp": "webp",
}
# remove.bg's zip format: color.jpg + alpha.png in one archive per image.
ZIP_SUFFIX = ".zip"
# What remove-background writes: -o FILE's suffix, or --format for a folder's files.
BACKGROUND_WRITES: dict[str, str] = {**OUTPUT_FORMATS, ZIP_SUFFIX: "zip"}
FOLDER_SUFFIXES = {"png": ".png", "webp": ".webp", "jpg": ".jpg", "jpeg": ".jpg", "zip": ".zip"}
# An output ending in one of these (any case) names a file: each command's own formats, and
# the other image and archive formats a user may type. A command refuses one it cannot write
# (`unsupported_output`) rather than making a folder named `cutout.tif` or `x.zip`; any other
# output (`cutouts`, `shoot.2024.06`) is a folder.
FILE_NAME_SUFFIXES = IMAGE_SUFFIXES | frozenset(
    {
        *(".apng", ".jpe", ".jfif", ".dib", ".heic", ".heif", ".avif", ".jxl", ".jp2", ".j2k"),
        *(".ico", ".icns", ".psd", ".svg", ".pdf", ".eps", ".tga", ".qoi", ".ppm", ".pgm"),
        *(".pbm", ".pnm", ".dng", ".raw", ".cr2", ".nef", ".arw"),
        *(ZIP_SUFFIX, ".tar", ".tgz", ".gz", ".bz2", ".xz", ".7z", ".rar"),
    }
)
DEFAULT_MAX_BYTES = 200 * 1024 * 1024
DEFAULT_MAX_PIXELS = 100_000_000
# Photos run side by side only while their pixels together stay within this, counted from
# their headers before decoding. Measured: four 8 MP photos, two at a time, peaked at 0.76 GB
# and one 24 MP photo alone at 0.72 GB, both under the 1.2 GB a 24 MP photo must stay under.
SIDE_BY_SIDE_PIXELS = 16_000_000
EXIT_OK, EXIT_FAILURES, EXIT_USAGE = 0, 1, 2
# Options every offline command takes, declared once.
ModelDirOption = Annotated[Path | None, typer.Option(help="Folder holding model files.")]
MaxBytesOption = Annotated[int, typer.Option(help="Largest input file in bytes.")]
MaxPixelsOption = Annotated[int, typer.Option(help="Largest input in pixels.")]


@dataclass(frozen=True)
class Task:
    source: Path
    target: Path


@dataclass(frozen=True)
class Look:
    """How each cutout is finished: the engine's compose options plus the path to take."""

    compose: ComposeOptions
    portrait: bool = False
    background: Image.Image | None = None


def remove_background_command(
    inputs: Annotated[list[Path], typer.Argument(help="Image files or folders (searched deeply).")],
    output: Annotated[
        Path,
        typer.Option(
            "--output",
            "-o",
            help="Output file for one input file, ending in .png, .jpg, .jpeg, .webp or .zip "
            "(remove.bg's color.jpg + alpha.png); otherwise a folder, made if need be, "
            "receiving STEM.png (or the --format's extension). Another image or archive "
            "extension (.tif, .gif, .heic, .tar ...) is refused.",
        ),
    ],
    model: Annotated[
        str | None,
        typer.Option(help="Model name (default: REMOVEANY_CUTOUT_MODEL, else u2netp-int8)."),
    ] = None,
    model_dir: ModelDirOption = None,
    max_bytes: MaxBytesOption = DEFAULT_MAX_BYTES,
    max_pixels: MaxPixelsOption = DEFAULT_MAX_PIXELS,
    format: Annotated[
        str | None,
        typer.Option(
            help="Format of files written into an output folder: png (default), jpg, webp or "
            "zip; for one output file its suffix decides."
        ),
    ] = None,
    kind: Annotated[
        str, typer.Option("--type", help="Foreground type; 'person' uses the portrait path.")
    ] = "auto",
    size: Annotated[str, typer.Option(help="preview, medium, hd, 4k, 50MP or full.")] = "full",
    bg_color: Annotated[
        str | None, typer.Option(help="Background colour: hex (ffffff, 81d4fa77) or a CSS name.")
    ] = None,
    bg_image: Annotated[Path | None, typer.Option(help="A photo to put behind the subject.")] = (
        None
    ),
    crop: Annotated[bool, typer.Option(help="Crop to the subject.")] = False,
    crop_margin: Annotated[
        str | None,
        typer.Option(
            help="Margin for --crop: 30px, 10%, '10px 20px' or 'TOP RIGHT BOTTOM LEFT'; at most "
            "500px or 50% per side, a percentage stopping at 500px."
        ),
    ] = None,
    roi: Annotated[str | None, typer.Option(help="Only look in 'x1 y1 x2 y2' (px or %).")] = None,
    scale: Annotated[str | None, typer.Option(help="Subject size: original or 10%-100%.")] = None,
    position: Annotated[str | None, typer.Option(help="original, center or 'X% Y%'.")] = None,
    shadow: Annotated[bool, typer.Option(help="Add a soft drop shadow.")] = False,
    channels: Annotated[str, typer.Option(help="rgba, or alpha for the matte only.")] = "rgba",
) -> int:
    """Cut out the subject of each input; keeps going past failures and returns an exit code."""
    err = Console(stderr=True, soft_wrap=True)
    chosen = None if format is None else format.lower()
    if chosen is not None and chosen not in FOLDER_SUFFIXES:
        err.print("error: invalid_format: --format must be png, jpg, webp or zip.", markup=False)
        return EXIT_USAGE
    try:
        single_file = output_is_one_file(inputs, output, BACKGROUND_WRITES, "remove-background")
    except OutputRefused as exc:
        err.print(f"error: {exc}", markup=False, highlight=False)
        return EXIT_USAGE
    if (
        single_file
        and format is not None
        and (FOLDER_SUFFIXES[format.lower()] != f".{BACKGROUND_WRITES[output.suffix.lower()]}")
    ):
        err.print(f"error: {format_mismatch(format, output)}", markup=False, highlight=False)
        return EXIT_USAGE
    try:
        settings = Settings()
        register_operator_models(settings)
        models = ServiceModels.from_settings(settings)
        if model is not None:
            models = replace(models, cutout=model)
        load_session(models.portrait if kind == "person" else models.cutout, model_dir)
        look = Look(
            parse_options(
                size=size,
                bg_color=bg_color,
                crop=crop,
                crop_margin=crop_margin,
                channels=channels,
                roi=roi,
                scale=scale,
                position=position,
                add_shadow=shadow,
            ),
            portrait=kind == "person",
            background=_background(bg_image, max_bytes, max_pixels) if bg_image else None,
        )
    except ModelError as exc:
        err.print(f"error: {exc.message}", markup=False, highlight=False)
        return EXIT_USAGE
    except OptionError as exc:
        err.print(f"error: {exc.code}: {exc.message}", markup=False, highlight=False)
        return EXIT_USAGE
    except ImageError as exc:  # the --bg-image photo
        err.print(f"error: {exc.code}: {exc.local_message}", markup=False, highlight=False)
        return EXIT_USAGE
    if not single_file and (problem := output_holding_input(inputs, output)):
        err.print(f"error: {problem}", markup=False, highlight=False)
        return EXIT_USAGE
    suffix = FOLDER_SUFFIXES[chosen or "png"]
    tasks = [Task(inputs[0], output)] if single_file else list(plan_tasks(inputs, output, suffix))
    if not tasks:
        err.print("error: no image files found in the inputs.", markup=False)
        return EXIT_USAGE

    # The portrait path keeps its own threads (a face pass, then a crop pass): one at a time.
    slots = PhotoSlots(1 if look.portrait else min(len(tasks), os.cpu_count() or 1))
    failures = run_tasks(
        tasks,
        "Removing backgrounds",
        lambda task: _run_one(task, look, models, model_dir, max_bytes, max_pixels, slots),
        workers=slots.workers,
        reads={"--bg-image": bg_image},
    )
    return finish(tasks, failures, output)


class OutputRefused(Exception):
    """An ``-o`` the command cannot write to: a usage error (exit 2), printed as
    ``error: CODE: MESSAGE`` before any photo is read."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


def format_mismatch(format: str, output: Path) -> str:
    """The usage error of a --format that another suffix of the one output file contradicts."""
    return (
        f"invalid_format: --format {format} does not match {output}'s suffix; for one output "
        "file the suffix picks the format: leave --format out, or change the suffix."
    )


def either(suffixes: Iterable[str]) -> str:
    """'.png, .jpg or .zip'."""
    names = list(suffixes)
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"


def output_is_one_file(
    inputs: list[Path], output: Path, writes: Iterable[str], command: str
) -> bool:
    """Whether OUTPUT is the result file of one input (True) or the folder, made if need be,
    that receives each input's result (False), by the same rule in every offline command:
    an existing folder is a folder; a name ending in a file suffix (``FILE_NAME_SUFFIXES``)
    is a file, for one input that is no folder, and only with a suffix in ``writes`` (the
    command's formats); any other name is a folder. Raises ``OutputRefused`` otherwise:
    ``unsupported_output`` for a file format the command cannot write (``x.zip`` to
    remove-watermark, ``cut.tif`` to remove-background, ``-`` for standard output, which
    would otherwise be a folder named "-"), ``output_not_folder`` for a file
    named as the output of several inputs or a folder, or an existing file used as a folder."""
    writes = list(writes)
    if str(output) == "-":
        raise OutputRefused(
            "unsupported_output",
            "-o -: results are written to files, not to standard output; give a file name "
            f"ending in {either(writes)}, or a folder.",
        )
    if output.is_dir():
        return False
    suffix = output.suffix.lower()
    if suffix in writes:
        if len(inputs) == 1 and not inputs[0].is_dir():
            return True
        what = f"{len(inputs)} inputs need" if len(inputs) > 1 else "a folder of inputs needs"
        raise OutputRefused(
            "output_not_folder",
            f"{output} names a file, and {what} an output folder; give a folder (a name "
            "without an extension, made if need be).",
        )
    if suffix in FILE_NAME_SUFFIXES:
        raise OutputRefused(
            "unsupported_output",
            f"{output}: {command} writes {either(writes)} files; end the name in one of "
            "those, or give a folder (a name without an extension).",
        )
    if output.exists():
        raise OutputRefused(
            "output_not_folder",
            f"{output} is a file, not a folder; give a folder, or a file name ending in "
            f"{either(writes)}.",
        )
    return False


def _background(path: Path, max_bytes: int, max_pixels: int) -> Image.Image:
    try:
        data = read_input(path, max_bytes)
    except OSError as exc:
        raise OptionError("invalid_bg_image", f"{path}: {exc.strerror or exc}") from None
    return decode_image(data, max_bytes=max_bytes, max_pixels=max_pixels)


def output_holding_input(inputs: list[Path], output: Path) -> str | None:
    """The usage error of an input folder that is the output folder or inside it: its photos
    would all be left out, as ``plan_tasks`` never reads the output folder's files (earlier
    results) as inputs."""
    out_root = output.resolve()
    for item in inputs:
        if item.is_dir() and item.resolve().is_relative_to(out_root):
            return (
                f"the output folder {output} is or holds the input folder {item}, whose photos "
                f"would be left out; choose an output folder outside {item}."
            )
    return None


def plan_tasks(inputs: list[Path], output: Path, suffix: str | None = ".png") -> Iterator[Task]:
    """Files map to OUT/STEM.png (or the chosen format; their own name when ``suffix`` is
    None); folders are searched deeply, in sorted order, and keep their relative subfolders
    under OUT. A folder's hidden files and folders (``.thumbnails/``, macOS's ``._IMG.jpg``
    companions) and files without an image extension are left out, as a batch upload leaves
    them out."""
    out_root = output.resolve()
    for item in inputs:
        if item.is_dir():
            for path in sorted(item.rglob("*")):
                relative = path.relative_to(item)
                if any(part.startswith(".") for part in relative.parts):
                    continue
                inside_output = path.resolve().is_relative_to(out_root)
                # A link to a photo that is gone is named as a failure, not silently left out.
                dangling = path.is_symlink() and not path.exists()
                is_image = path.suffix.lower() in IMAGE_SUFFIXES
                if (path.is_file() or dangling) and is_image and not inside_output:
                    named = relative if suffix is None else relative.with_suffix(suffix)
                    yield Task(path, output / named)
        else:
            # Explicit files are always tried, whatever their extension; missing ones fail.
            yield Task(item, output / (item.name if suffix is None else f"{item.stem}{suffix}"))


def run_tasks(
    tasks: list[Task],
    label: str,
    run_one: Callable[[Task], str | None],
    *,
    workers: int = 1,
    reads: Mapping[str, Path | None] | None = None,
) -> list[tuple[Path, str]]:
    """Run every task (progress bar on a terminal) on up to ``workers`` threads, going on past
    failures; two inputs that would write the same output are a failure of the second, and so
    is an output that would replace a file the command reads: its own input, another input
    (``a.jpg a.png -o .`` would write a.jpg's cut-out over a.png) or a file option's file
    (``reads``, such as ``{"--mask": mask}``). Returns (input, problem) pairs in input order,
    each also printed to stderr."""
    err = Console(stderr=True, soft_wrap=True)
    failures: list[tuple[Path, str]] = []
    targets: set[Path] = set()
    duplicates: set[int] = set()
    for index, task in enumerate(tasks):
        if task.target in targets:
            duplicates.add(index)
        targets.add(task.target)
    kept = {task.source.resolve(): f"the input {task.source}" for task in tasks}
    for option, path in (reads or {}).items():
        if path is not None:
            kept.setdefault(path.resolve(), f"the {option} file {path}")

    def attempt(index: int) -> str | None:
        task = tasks[index]
        if same_file(task.source, task.target):
            return SAME_FILE
        if (original := kept.get(task.target.resolve())) is not None:
            return (
                f"same_file: the output {task.target} would overwrite {original}; choose "
                "another output name or folder."
            )
        if index in duplicates:
            return (
                f"duplicate_output: another input is also written to {task.target}; "
                "rename one of them."
            )
        return run_one(task)

    # The bar is progress, so it goes to stderr: stdout keeps only results, for pipes (a
    # result printed while the bar shows is moved above it only when both are the terminal).
    with Progress(
        console=err, disable=not sys.stderr.isatty(), redirect_stdout=sys.stdout.isatty()
    ) as progress:
        bar = progress.add_task(label, total=len(tasks))
        for task, problem in zip(tasks, _in_order(attempt, len(tasks), workers), strict=True):
            if problem is not None:
                failures.append((task.source, problem))
                err.print(f"error: {task.source}: {problem}", markup=False, highlight=False)
            progress.advance(bar)
    return failures


def finish(tasks: list[Task], failures: list[tuple[Path, str]], output: Path) -> int:
    """End an offline command the same way each time: the count written on stdout, then (on
    stderr, after each failure's own line) one line naming every failed input, and the exit
    code (EXIT_FAILURES when any failed)."""
    print(f"{len(tasks) - len(failures)} of {count(len(tasks), 'image')} written to {output}")
    if not failures:
        return EXIT_OK
    names = ", ".join(str(source) for source, _ in failures)
    Console(stderr=True, soft_wrap=True).print(f"failed: {names}", markup=False, highlight=False)
    return EXIT_FAILURES


def _in_order(fn: Callable[[int], str | None], count: int, workers: int) -> Iterator[str | None]:
    """``fn(0) .. fn(count - 1)`` on ``workers`` threads, yielded in order; on Ctrl-C the
    queued calls are dropped rather than awaited."""
    if workers <= 1:
        yield from map(fn, range(count))
        return
    pool = ThreadPoolExecutor(max_workers=workers)
    try:
        yield from pool.map(fn, range(count))
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


class PhotoSlots:
    """Lets photos run side by side, each model on one thread, while their pixels together stay
    within a budget: a folder of small photos keeps every core busy (on two cores, 145 ms per
    photo against 249 ms for one photo at a time on two model threads) and large photos still
    go one at a time."""

    def __init__(self, workers: int, pixel_budget: int = SIDE_BY_SIDE_PIXELS) -> None:
        self.workers = max(workers, 1)
        self.model_threads = 1 if self.workers > 1 else None
        self._budget = pixel_budget
        self._used = 0
        self._changed = threading.Condition()

    @contextmanager
    def hold(self, pixels: int) -> Iterator[None]:
        with self._changed:
            self._changed.wait_for(lambda: self._used == 0 or self._used + pixels <= self._budget)
            self._used += pixels
        try:
            yield
        finally:
            with self._changed:
                self._used -= pixels
                self._changed.notify_all()


def header_pixels(path: Path, max_bytes: int = DEFAULT_MAX_BYTES) -> int:
    """The pixel count a file's header declares, before anything is decoded; 0 when there is
    no readable header or the file is over the limit (``read_image`` then says what is
    wrong)."""
    try:
        return declared_pixels(read_input(path, max_bytes))
    except (OSError, ImageError):
        return 0


def read_input(path: Path, max_bytes: int) -> bytes:
    """A file's bytes, never more than ``max_bytes`` of them held: a larger file is
    ``file_too_large`` (ImageError; OSError if unreadable), a regular file's from its size, a
    device or pipe's (``/dev/zero``, a stream that never ends) once ``max_bytes`` have come."""
    size = path.stat().st_size
    if size > max_bytes:
        raise ImageError(
            "file_too_large", f"The file is {size:,} bytes; the limit is {max_bytes:,}."
        )
    with path.open("rb") as handle:
        data = handle.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise ImageError("file_too_large", f"The file is more than {max_bytes:,} bytes, the limit.")
    return data


def read_image(path: Path, max_bytes: int, max_pixels: int) -> Image.Image:
    """Decode an input file within the limits (ImageError otherwise; OSError if unreadable)."""
    data = read_input(path, max_bytes)
    return decode_image(data, max_bytes=max_bytes, max_pixels=max_pixels)


def _run_one(
    task: Task,
    look: Look,
    models: ServiceModels,
    model_dir: Path | None,
    max_bytes: int,
    max_pixels: int,
    slots: PhotoSlots,
) -> str | None:
    """Process one file; returns 'code: message' on failure instead of stopping the batch."""
    try:
        with slots.hold(header_pixels(task.source, max_bytes)):
            image = read_image(task.source, max_bytes, max_pixels)
            suffix = task.target.suffix.lower()
            fmt = "zip" if suffix == ZIP_SUFFIX else OUTPUT_FORMATS.get(suffix, "png")
            # Before the model runs: a result its format cannot hold fails at once.
            check_result_format(image.width, image.height, look.compose, fmt)
            if look.portrait:
                cutout = cutout_portrait(image, model=models.portrait, model_dir=model_dir)
            else:
                cutout = remove_background(
                    image, model=models.cutout, model_dir=model_dir, threads=slots.model_threads
                )
            result = compose_result(cutout, look.compose, bg_image=look.background).image
            if fmt == "zip":
                data = color_alpha_zip(result)
            else:
                data = encode_image(result, OUTPUT_FORMATS.get(suffix, "png"))
        write_atomically(task.target, data)
    except ImageError as exc:
        return f"{exc.code}: {exc.local_message}"
    except OSError as exc:
        return io_problem(exc)
    return None


SAME_FILE = "same_file: the output would overwrite the input; choose another output name or folder."


def same_file(source: Path, target: Path) -> bool:
    """Whether writing ``target`` would replace ``source`` (the user's original)."""
    return source.resolve() == target.resolve()


def io_problem(exc: OSError) -> str:
    """'io_error: ...' naming the file and saying what to check."""
    where = f"{exc.filename}: " if exc.filename else ""
    if isinstance(exc, IsADirectoryError):
        hint = "give image files, not a folder"
    elif isinstance(exc, FileExistsError):
        # Making the output's folder: a file stands where a folder of the path must be.
        hint = "that is a file, where the output folder should be; choose another output path"
    else:
        hint = (
            "check that the input exists and can be read, and that the output folder can be "
            "written and has free space"
        )
    return f"io_error: {where}{exc.strerror or exc}; {hint}."


def write_atomically(target: Path, data: bytes) -> None:
    """Write beside the target and rename, so an interrupted run leaves no half file. The file
    gets what a plain ``open()`` gives (0666 less the umask), not mkstemp's private 0600: a
    result is the user's ordinary file, for a web server or a colleague to read."""
    target.parent.mkdir(parents=True, exist_ok=True)
    temp = target.parent / f".{target.name}.{secrets.token_hex(8)}.part"
    try:
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
        fd = os.open(temp, flags, 0o666)
    except OSError as exc:
        # Named after the result, not the hidden temporary file.
        raise type(exc)(exc.errno, exc.strerror, str(target)) from exc
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(temp, target)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
