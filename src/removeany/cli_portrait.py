"""Offline ``removeany cutout-portrait``: cut people out, or make ID photos, from local files.

    removeany cutout-portrait me.jpg -o me.png                       # transparent cutout
    removeany cutout-portrait shoot/ -o cutouts/ --bg-color white --format jpg
    removeany cutout-portrait me.jpg -o id.jpg --id-photo 1inch --background blue

One input file and an output named like a file (me.png, id.jpg): OUTPUT is the file, its
suffix picks the format. Otherwise OUTPUT is a folder, made if need be, receiving STEM.png
(or .jpg/.webp with --format; ID photos default to .jpg), folders keeping their sub-folders.
Returns an exit code (0 all written, 1 some inputs failed, named on stderr, 2 usage error);
the CLI registers it through a wrapper that raises ``typer.Exit`` with it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from PIL import Image
from rich.console import Console

from removeany.cli_offline import (
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_PIXELS,
    EXIT_USAGE,
    OUTPUT_FORMATS,
    MaxBytesOption,
    MaxPixelsOption,
    ModelDirOption,
    OutputRefused,
    Task,
    finish,
    format_mismatch,
    io_problem,
    output_holding_input,
    output_is_one_file,
    plan_tasks,
    read_image,
    run_tasks,
    write_atomically,
)
from removeany.engine.compose import check_result_format, compose_result, parse_options
from removeany.engine.errors import ImageError, ModelError, OptionError
from removeany.engine.io import OutputFormat, encode_image
from removeany.engine.models import get_model, load_session, model_path, verify_model_file
from removeany.engine.portrait import (
    FACE_MODEL,
    ID_BACKGROUNDS,
    ID_DPI,
    ID_SIZES,
    cutout_portrait,
    id_photo,
)
from removeany.infra.settings import Settings
from removeany.operator_models import ServiceModels, register_operator_models

FORMATS: dict[str, OutputFormat] = {"png": "png", "jpg": "jpg", "jpeg": "jpg", "webp": "webp"}


def cutout_portrait_command(
    inputs: Annotated[list[Path], typer.Argument(help="Image files or folders (searched deeply).")],
    output: Annotated[
        Path,
        typer.Option(
            "--output",
            "-o",
            help="Output file for one input file, ending in .png, .jpg, .jpeg or .webp (ID "
            "photos: .png, .jpg or .jpeg); otherwise a folder, made if need be, receiving "
            "STEM.png (or the --format's extension). Another image or archive extension "
            "(.tif, .zip, .heic ...) is refused.",
        ),
    ],
    id_photo_size: Annotated[
        str | None,
        typer.Option("--id-photo", help=f"Make an ID photo: {', '.join(ID_SIZES)} (300 dpi)."),
    ] = None,
    background: Annotated[
        str | None,
        typer.Option(help=f"ID photo background: {', '.join(ID_BACKGROUNDS)} (default white)."),
    ] = None,
    bg_color: Annotated[
        str | None,
        typer.Option(
            help="Cutout background: hex like 81d4fa, or a CSS name; transparent if unset."
        ),
    ] = None,
    format: Annotated[
        str | None,
        typer.Option(help="png, jpg or webp (default png; jpg for ID photos)."),
    ] = None,
    model: Annotated[
        str | None,
        typer.Option(
            help="Segmentation model name (default: REMOVEANY_PORTRAIT_MODEL, else u2net-int8)."
        ),
    ] = None,
    model_dir: ModelDirOption = None,
    max_bytes: MaxBytesOption = DEFAULT_MAX_BYTES,
    max_pixels: MaxPixelsOption = DEFAULT_MAX_PIXELS,
) -> int:
    """Cut out the person in each input (or make ID photos); keeps going past failures."""
    err = Console(stderr=True, soft_wrap=True)

    def usage(message: str) -> int:
        err.print(f"error: {message}", markup=False, highlight=False)
        return EXIT_USAGE

    if id_photo_size is not None and id_photo_size not in ID_SIZES:
        return usage(f"--id-photo must be one of {', '.join(ID_SIZES)}.")
    if background is not None and id_photo_size is None:
        return usage("--background is the ID photo's colour; add --id-photo, or use --bg-color.")
    if background is not None and background not in ID_BACKGROUNDS:
        return usage(f"--background must be one of {', '.join(ID_BACKGROUNDS)}.")
    if bg_color is not None and id_photo_size is not None:
        return usage("an ID photo's colour is set with --background, not --bg-color.")
    if format is not None and format.lower() not in FORMATS:
        return usage("invalid_format: --format must be png, jpg or webp.")
    if id_photo_size is not None and format is not None and FORMATS[format.lower()] == "webp":
        return usage("invalid_format: ID photos are written as jpg or png.")
    writes = [s for s, f in OUTPUT_FORMATS.items() if not (id_photo_size and f == "webp")]
    command = "cutout-portrait --id-photo" if id_photo_size else "cutout-portrait"
    try:
        single_file = output_is_one_file(inputs, output, writes, command)
    except OutputRefused as exc:
        return usage(str(exc))
    if (
        single_file
        and format is not None
        and (OUTPUT_FORMATS[output.suffix.lower()] != FORMATS[format.lower()])
    ):
        return usage(format_mismatch(format, output))
    try:
        compose = parse_options(bg_color=bg_color)
    except OptionError as exc:
        return usage(exc.message)
    try:
        settings = Settings()
        register_operator_models(settings)
        name = model or ServiceModels.from_settings(settings).portrait
        load_session(name, model_dir)
        if id_photo_size is not None:
            face = get_model(FACE_MODEL)
            verify_model_file(model_path(face, model_dir), face.sha256)
    except ModelError as exc:
        return usage(exc.message)

    default_fmt: OutputFormat = "jpg" if id_photo_size else "png"
    fmt: OutputFormat = FORMATS[format.lower()] if format else default_fmt
    if single_file:
        tasks = [Task(inputs[0], output)]
    elif problem := output_holding_input(inputs, output):
        return usage(problem)
    else:
        tasks = list(plan_tasks(inputs, output, f".{fmt}"))
    if not tasks:
        return usage("no image files found in the inputs.")

    def process(image: Image.Image, fmt: OutputFormat) -> Image.Image:
        if id_photo_size is not None:
            colour = background or "white"
            return id_photo(image, id_photo_size, colour, model=name, model_dir=model_dir)
        # Before the model runs: a result its format cannot hold fails at once.
        check_result_format(image.width, image.height, compose, fmt)
        cutout = cutout_portrait(image, model=name, model_dir=model_dir)
        return compose_result(cutout, compose).image

    dpi = (ID_DPI, ID_DPI) if id_photo_size is not None else None
    failures = run_tasks(
        tasks,
        "Cutting out portraits",
        lambda task: _run_one(task, process, max_bytes, max_pixels, dpi),
    )
    return finish(tasks, failures, output)


def _run_one(
    task: Task,
    process: Callable[[Image.Image, OutputFormat], Image.Image],
    max_bytes: int,
    max_pixels: int,
    dpi: tuple[int, int] | None,
) -> str | None:
    """Process one file; returns 'code: message' on failure instead of stopping the run.
    ``dpi`` is written into the file (ID photos: 300, so they print at their size)."""
    try:
        fmt = OUTPUT_FORMATS.get(task.target.suffix.lower(), "png")
        result = process(read_image(task.source, max_bytes, max_pixels), fmt)
        write_atomically(task.target, encode_image(result, fmt, quality=95, dpi=dpi))
    except ImageError as exc:
        return f"{exc.code}: {exc.local_message}"
    except OSError as exc:
        return io_problem(exc)
    return None
