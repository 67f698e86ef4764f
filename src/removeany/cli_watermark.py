"""Offline ``removeany remove-watermark``: restore the pixels under visible watermarks.

    removeany remove-watermark photo.jpg -o clean.jpg
    removeany remove-watermark a.jpg b.jpg c.jpg -o outdir/     # joint estimate when shared
    removeany remove-watermark shoot/ -o clean/                 # a folder: its images
    removeany remove-watermark photo.png -o clean.png --mask mask.png
    removeany remove-watermark photo.jpg -o clean.jpg --boxes "20,400,300,60"   # x,y,w,h

Batch outputs keep each input's file name, size and format (``OUTDIR/<input name>``; a
folder's images keep their sub-folders). A folder is read as the other offline commands read
it (``cli_offline.plan_tasks``). Photos are restored one at a time, in order; a mark shared by
same-sized inputs is estimated first from a sample of them. The function returns an exit code
(0 all written, 1 some inputs failed, 2 usage error) and keeps Typer metadata in its
signature; the CLI registers it through a wrapper that raises ``typer.Exit`` with it.
"""

from __future__ import annotations

import io
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import numpy as np
import numpy.typing as npt
import typer
from PIL import Image
from rich.console import Console

from removeany.cli_offline import (
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_PIXELS,
    EXIT_USAGE,
    MaxBytesOption,
    MaxPixelsOption,
    ModelDirOption,
    OutputRefused,
    Task,
    finish,
    io_problem,
    output_holding_input,
    output_is_one_file,
    plan_tasks,
    read_image,
    read_input,
    run_tasks,
    same_file,
    write_atomically,
)
from removeany.engine.errors import ImageError, ModelError
from removeany.engine.io import (
    OutputFormat,
    SourceEncoding,
    check_output_side,
    declared_size,
    decode_image,
    encode_image,
    sniff_format,
    source_encoding,
)
from removeany.engine.watermark import (
    MAX_JOINT,
    MIN_JOINT,
    TEXT_DETECTOR,
    SharedMark,
    TextDetector,
    apply_shared_mark,
    as_original,
    estimate_shared_mark,
    load_text_detector,
    restore,
    shared_mark_work_copy,
)

Box = tuple[int, int, int, int]
_ENCODED: dict[str, OutputFormat] = {"PNG": "png", "JPEG": "jpg", "WEBP": "webp"}
# BMP keeps no transparency: the mode written instead.
_WITHOUT_ALPHA = {"RGBA": "RGB", "LA": "L"}
_SUFFIX_FORMAT = {
    ".png": "PNG",
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".webp": "WEBP",
    ".bmp": "BMP",
    ".gif": "GIF",
    ".tif": "TIFF",
    ".tiff": "TIFF",
}


@dataclass(frozen=True)
class _Restoring:
    """What every photo of one run is restored with."""

    mask: npt.NDArray[np.uint8] | None
    boxes: list[Box] | None
    detector: TextDetector | None
    model_dir: Path | None
    max_bytes: int
    max_pixels: int
    # The shared mark of each (height, width) that at least MIN_JOINT inputs have (None where
    # they share none); photos of other sizes are restored one by one.
    marks: dict[tuple[int, int], SharedMark | None]
    # The format each output takes from OUTPUT's suffix (one input, OUTPUT a file).
    output_format: str | None = None


def remove_watermark_command(
    inputs: Annotated[
        list[Path], typer.Argument(help="Watermarked image files or folders (searched deeply).")
    ],
    output: Annotated[
        Path,
        typer.Option(
            "--output",
            "-o",
            help="Output file for one input file, ending in .png, .jpg, .jpeg, .webp, .bmp, "
            ".gif, .tif or .tiff (its suffix picks the format); otherwise a folder, made if "
            "need be, receiving files of the inputs' names (and sub-folders) and formats. "
            "Another image or archive extension (.zip, .heic ...) is refused.",
        ),
    ],
    mask: Annotated[
        Path | None,
        typer.Option(
            help="Mask image (white = watermark); overrides detection. It applies to the "
            "inputs of its size; inputs of another size fail."
        ),
    ] = None,
    boxes: Annotated[
        str | None,
        typer.Option(
            help='Watermark boxes in pixels, "x,y,width,height" separated by ";" (or JSON '
            # The backslash keeps Typer's rich help from reading [x, y, ...] as markup.
            "[\\[x, y, width, height], ...]); overrides detection, adds to --mask. An input "
            "that no box reaches fails.",
        ),
    ] = None,
    joint: Annotated[
        bool,
        typer.Option(
            help=f"Estimate a watermark shared by {MIN_JOINT} or more same-sized inputs from "
            f"them together (up to {MAX_JOINT} of each size, spread over the inputs)."
        ),
    ] = True,
    model_dir: ModelDirOption = None,
    max_bytes: MaxBytesOption = DEFAULT_MAX_BYTES,
    max_pixels: MaxPixelsOption = DEFAULT_MAX_PIXELS,
) -> int:
    """Remove visible watermarks; keeps going past failed inputs and returns an exit code."""
    err = Console(stderr=True, soft_wrap=True)

    def usage(message: str) -> int:
        err.print(f"error: {message}", markup=False, highlight=False)
        return EXIT_USAGE

    if not inputs:
        return usage("give at least one input image.")
    # One input file is written to OUTPUT itself only where OUTPUT names an image file
    # (clean.png); otherwise OUTPUT is a folder, made if need be, as for several inputs.
    try:
        many = not output_is_one_file(inputs, output, _SUFFIX_FORMAT, "remove-watermark")
    except OutputRefused as exc:
        return usage(str(exc))
    if many and (problem := output_holding_input(inputs, output)):
        return usage(problem)
    mask_arr: npt.NDArray[np.uint8] | None = None
    if mask is not None:
        try:
            decoded = decode_image(
                read_input(mask, max_bytes), max_bytes=max_bytes, max_pixels=max_pixels
            )
        except ImageError as exc:
            return usage(f"--mask {mask}: {exc.code}: {exc.local_message}")
        except OSError as exc:
            return usage(f"--mask {mask}: {io_problem(exc)}")
        mask_arr = np.asarray(decoded.convert("L"), np.uint8)
    box_list: list[Box] | None = None
    if boxes is not None:
        try:
            box_list = parse_boxes(boxes)
        except ValueError as exc:
            return usage(f"--boxes: {exc}")
    detector = None
    if mask_arr is None and box_list is None:
        try:
            detector = load_text_detector(model_dir)
        except ModelError as exc:
            return usage(exc.message)
        if detector is None:
            return usage(
                f"the text detector ({TEXT_DETECTOR.filename}) is not installed; run "
                "`removeany models fetch`, or give --mask or --boxes."
            )

    tasks = list(plan_tasks(inputs, output, None)) if many else [Task(inputs[0], output)]
    if mask is not None:
        # A mask kept beside the photos is not one of them.
        tasks = [task for task in tasks if not same_file(task.source, mask)]
    if not tasks:
        return usage("no image files found in the inputs.")
    how = _Restoring(
        mask_arr,
        box_list,
        detector,
        model_dir,
        max_bytes,
        max_pixels,
        marks={},
        output_format=None if many else _SUFFIX_FORMAT.get(output.suffix.lower()),
    )
    if joint:
        how.marks.update(_shared_marks(tasks, how, err))
    failures = run_tasks(
        tasks, "Removing watermarks", lambda task: _restore_one(task, how), reads={"--mask": mask}
    )
    return finish(tasks, failures, output)


def _shared_marks(
    tasks: list[Task], how: _Restoring, err: Console
) -> dict[tuple[int, int], SharedMark | None]:
    """The mark shared by each size that MIN_JOINT or more inputs have, estimated from at
    most MAX_JOINT of them spread over the inputs (as ``restore_batch`` picks them), each
    reduced as it is read: the photos themselves are read again one at a time to be restored,
    so a folder of any length fits in memory. Sizes are read from the headers."""
    groups: dict[tuple[int, int], list[Path]] = {}
    for task in tasks:
        size = _header_size(task.source, how.max_bytes)
        if size is not None:
            groups.setdefault((size[1], size[0]), []).append(task.source)
    marks: dict[tuple[int, int], SharedMark | None] = {}
    for shape, sources in groups.items():
        if len(sources) < MIN_JOINT or not _user_region_fits(how, shape):
            continue
        picked = sources[:: -(-len(sources) // MAX_JOINT)]
        if sys.stderr.isatty():
            err.print(
                f"Estimating the watermark shared by {len(sources)} images of "
                f"{shape[1]}x{shape[0]} from {len(picked)} of them",
                markup=False,
                highlight=False,
            )
        photos: list[npt.NDArray[np.float32]] = []
        for source in picked:
            try:
                photo = read_image(source, how.max_bytes, how.max_pixels)
            except (ImageError, OSError):
                continue  # named when it is restored
            if (photo.height, photo.width) == shape:
                photos.append(shared_mark_work_copy(photo))
            photo.close()
        marks[shape] = estimate_shared_mark(
            photos,
            shape=shape,
            mask=how.mask,
            boxes=how.boxes,
            detector=how.detector,
            model_dir=how.model_dir,
        )
    return marks


def _header_size(source: Path, max_bytes: int) -> tuple[int, int] | None:
    """(width, height) of an input as it will be decoded; None for a file that cannot be
    read or is over the limit (it fails, with the reason, when it is restored)."""
    try:
        return declared_size(read_input(source, max_bytes))
    except (OSError, ImageError):
        return None


def _user_region_fits(how: _Restoring, shape: tuple[int, int]) -> bool:
    """Whether the user's mask and boxes can apply to photos of ``shape`` (others fail)."""
    height, width = shape
    if how.mask is not None:
        return how.mask.shape == shape
    if how.boxes is not None:
        return any(x0 < width and y0 < height for x0, y0, _, _ in how.boxes)
    return True


def _restore_one(task: Task, how: _Restoring) -> str | None:
    """Restore one photo and write it in its own format (or OUTPUT's); returns 'code: message'
    on failure instead of stopping the run."""
    try:
        data = read_input(task.source, how.max_bytes)
        image = decode_image(data, max_bytes=how.max_bytes, max_pixels=how.max_pixels)
    except ImageError as exc:
        return f"{exc.code}: {exc.local_message}"
    except OSError as exc:
        return io_problem(exc)
    fmt = how.output_format or sniff_format(data) or "PNG"
    try:
        # Before the restoration runs: a result its format cannot hold fails at once.
        check_output_side(fmt.lower().replace("jpeg", "jpg"), image.width, image.height)
    except ImageError as exc:
        return f"{exc.code}: {exc.local_message}"
    shape = (image.height, image.width)
    if how.mask is not None and how.mask.shape != shape:
        return (
            f"mask_size: the mask is {how.mask.shape[1]}x{how.mask.shape[0]} but the image is "
            f"{image.width}x{image.height}; a mask applies to images of its size: give this "
            "one a mask of its own"
        )
    if how.mask is None and not _user_region_fits(how, shape):
        return (
            f"invalid_boxes: every box lies outside the {image.width}x{image.height} image; "
            "give boxes in its pixels"
        )
    mark = how.marks.get(shape)
    if mark is not None:
        result = apply_shared_mark(image, mark)
    else:
        result = restore(
            image, mask=how.mask, boxes=how.boxes, detector=how.detector, model_dir=how.model_dir
        )
        if shape in how.marks:
            result.notes.insert(0, "no shared watermark; processed on its own")
    source = source_encoding(data)
    out = as_original(result.image, image, grey=source.grey)
    problem = _write(out, task.target, fmt, source)
    if problem is None:
        said = list(result.notes) or ["no watermark found"]
        print(f"{task.source} -> {task.target} ({'; '.join(said)})")
    return problem


def parse_boxes(text: str) -> list[Box]:
    """'x,y,w,h;x,y,w,h' or JSON [[x, y, w, h], ...] as the engine's (x0, y0, x1, y1) boxes."""
    text = text.strip()
    try:
        if text.startswith("["):
            raw = json.loads(text)
            if raw and not isinstance(raw[0], list):
                raw = [raw]
        else:
            raw = [[int(v) for v in part.split(",")] for part in text.split(";") if part.strip()]
    except ValueError:
        raise ValueError('write boxes as "x,y,width,height" separated by ";"') from None
    out: list[Box] = []
    for box in raw:
        if (
            not isinstance(box, list)
            or len(box) != 4
            or not all(isinstance(v, int) and not isinstance(v, bool) for v in box)
        ):
            raise ValueError(f"{box!r} is not [x, y, width, height] in whole pixels")
        x, y, w, h = box
        if x < 0 or y < 0 or w < 1 or h < 1:
            raise ValueError(f"{box!r}: x and y must be 0 or more, width and height 1 or more")
        out.append((x, y, x + w, y + h))
    if not out:
        raise ValueError("no box given")
    return out


def _write(image: Image.Image, target: Path, fmt: str, source: SourceEncoding) -> str | None:
    """Write ``fmt``, encoded as the input was where it is that format too (a JPEG's tables,
    a lossless WebP), with the input's print resolution."""
    dpi = image.info.get("dpi")
    try:
        if fmt in _ENCODED:
            data = encode_image(image, _ENCODED[fmt], quality=95, dpi=dpi, like=source)
        else:
            buf = io.BytesIO()
            im = image
            if fmt == "GIF":
                im = _gif_frame(image)
            elif fmt == "BMP" and image.mode in _WITHOUT_ALPHA:
                im = image.convert(_WITHOUT_ALPHA[image.mode])
            im.save(buf, fmt, **({"dpi": dpi} if dpi is not None and fmt != "GIF" else {}))
            data = buf.getvalue()
        write_atomically(target, data)
    except ImageError as exc:
        return f"{exc.code}: {exc.local_message}"
    except OSError as exc:
        return io_problem(exc)
    return None


def _gif_frame(image: Image.Image) -> Image.Image:
    """A palette image for GIF: 256 colours, or 255 and a transparent index where the input
    was transparent (GIF's transparency is all or nothing: alpha under half is clear)."""
    if image.mode not in ("RGBA", "LA"):
        return image.convert("RGB").quantize(256)
    clear = np.asarray(image.getchannel("A")) < 128
    colours = image.convert("RGB").quantize(255)
    index = np.asarray(colours).copy()
    index[clear] = 255
    out = Image.fromarray(index, "P")
    out.putpalette([*(colours.getpalette() or [])[: 255 * 3], 0, 0, 0])
    out.info["transparency"] = 255
    return out
