"""Offline ``removeany remove-watermark``: restore the pixels under visible watermarks.

    removeany remove-watermark photo.jpg -o clean.jpg
    removeany remove-watermark a.jpg b.jpg c.jpg -o outdir/     # joint estimate when shared
    removeany remove-watermark photo.png -o clean.png --mask mask.png
    removeany remove-watermark photo.jpg -o clean.jpg --boxes "20,400,300,60"   # x,y,w,h

Batch outputs keep each input's file name, size and format (``OUTDIR/<input name>``). The
function returns an exit code (0 all written, 1 some inputs failed, 2 usage error) and keeps
Typer metadata in its signature; the CLI registers it through a wrapper that raises
``typer.Exit`` with it.
"""

from __future__ import annotations

import io
import json
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
    EXIT_FAILURES,
    EXIT_OK,
    EXIT_USAGE,
    SAME_FILE,
    MaxBytesOption,
    MaxPixelsOption,
    ModelDirOption,
    io_problem,
    same_file,
    write_atomically,
)
from removeany.engine.errors import ImageError, ModelError
from removeany.engine.io import (
    OutputFormat,
    declared_frames,
    declared_mode,
    decode_image,
    encode_image,
    sniff_format,
)
from removeany.engine.watermark import (
    TEXT_DETECTOR,
    load_text_detector,
    restore,
    restore_batch,
)

Box = tuple[int, int, int, int]
_ENCODED: dict[str, OutputFormat] = {"PNG": "png", "JPEG": "jpg", "WEBP": "webp"}
# BMP keeps no transparency: the mode written instead.
_WITHOUT_ALPHA = {"RGBA": "RGB", "LA": "L"}
# Pillow modes of grey images (bilevel, 8-bit, 16/32-bit integer and float samples).
_GREY_MODES = frozenset({"1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"})
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


@dataclass
class _Loaded:
    source: Path
    target: Path
    image: Image.Image
    fmt: str  # Pillow format name of the input
    grey: bool  # the input is greyscale, and so is what is written
    frames: int  # frames (animation, pages) in the input; only the first is restored


def remove_watermark_command(
    inputs: Annotated[list[Path], typer.Argument(help="Watermarked image files.")],
    output: Annotated[
        Path,
        typer.Option(
            "--output",
            "-o",
            help="Output file for one input; for several, a folder receiving files of the same "
            "names and formats.",
        ),
    ],
    mask: Annotated[
        Path | None,
        typer.Option(help="Mask image (white = watermark); overrides detection."),
    ] = None,
    boxes: Annotated[
        str | None,
        typer.Option(
            help='Watermark boxes in pixels, "x,y,width,height" separated by ";" (or JSON '
            "[[x, y, width, height], ...]); overrides detection, adds to --mask.",
        ),
    ] = None,
    joint: Annotated[
        bool,
        typer.Option(help="Estimate a watermark shared by same-sized inputs from all of them."),
    ] = True,
    model_dir: ModelDirOption = None,
    max_bytes: MaxBytesOption = DEFAULT_MAX_BYTES,
    max_pixels: MaxPixelsOption = DEFAULT_MAX_PIXELS,
) -> int:
    """Remove visible watermarks; keeps going past failed inputs and returns an exit code."""
    err = Console(stderr=True, soft_wrap=True)
    if not inputs:
        err.print("error: give at least one input image.", markup=False)
        return EXIT_USAGE
    many = len(inputs) > 1 or output.is_dir()
    if many and output.exists() and not output.is_dir():
        err.print(
            f"error: {output} exists and is not a folder; give a folder for several inputs.",
            markup=False,
        )
        return EXIT_USAGE
    mask_arr: npt.NDArray[np.uint8] | None = None
    if mask is not None:
        try:
            decoded = decode_image(mask.read_bytes(), max_bytes=max_bytes, max_pixels=max_pixels)
        except ImageError as exc:
            err.print(f"error: --mask {mask}: {exc.code}: {exc.message}", markup=False)
            return EXIT_USAGE
        except OSError as exc:
            err.print(f"error: --mask {mask}: {io_problem(exc)}", markup=False)
            return EXIT_USAGE
        mask_arr = np.asarray(decoded.convert("L"), np.uint8)
    box_list: list[Box] | None = None
    if boxes is not None:
        try:
            box_list = parse_boxes(boxes)
        except ValueError as exc:
            err.print(f"error: --boxes: {exc}", markup=False, highlight=False)
            return EXIT_USAGE
    detector = None
    if mask_arr is None and box_list is None:
        try:
            detector = load_text_detector(model_dir)
        except ModelError as exc:
            err.print(f"error: {exc.message}", markup=False, highlight=False)
            return EXIT_USAGE
        if detector is None:
            err.print(
                f"error: the text detector ({TEXT_DETECTOR.filename}) is not installed; run "
                "`removeany models fetch`, or give --mask or --boxes.",
                markup=False,
                highlight=False,
            )
            return EXIT_USAGE

    failures: list[tuple[Path, str]] = []
    loaded: list[_Loaded] = []
    seen: set[Path] = set()
    for src in inputs:
        target = output / src.name if many else output
        if target.resolve() in seen:
            failures.append((src, f"duplicate_output: another input is also written to {target}"))
            continue
        if same_file(src, target):
            failures.append((src, SAME_FILE))
            continue
        seen.add(target.resolve())
        try:
            data = src.read_bytes()
            image = decode_image(data, max_bytes=max_bytes, max_pixels=max_pixels)
            fmt = sniff_format(data) or "PNG"
            grey = declared_mode(data) in _GREY_MODES
        except ImageError as exc:
            failures.append((src, f"{exc.code}: {exc.message}"))
            continue
        except OSError as exc:
            failures.append((src, io_problem(exc)))
            continue
        if mask_arr is not None and mask_arr.shape != (image.height, image.width):
            failures.append(
                (
                    src,
                    f"mask_size: the mask is {mask_arr.shape[1]}x"
                    f"{mask_arr.shape[0]} but the image is {image.width}x"
                    f"{image.height}; give a mask of the image's size",
                )
            )
            continue
        outside = box_list is not None and not any(
            x0 < image.width and y0 < image.height for x0, y0, _, _ in box_list
        )
        if outside and mask_arr is None:
            failures.append(
                (
                    src,
                    f"invalid_boxes: every box lies outside the {image.width}x{image.height} "
                    "image; give boxes in its pixels",
                )
            )
            continue
        if not many:
            fmt = _SUFFIX_FORMAT.get(output.suffix.lower(), fmt)
        loaded.append(_Loaded(src, target, image, fmt, grey, declared_frames(data)))

    if loaded:
        images = [item.image for item in loaded]
        if joint and len(images) > 1:
            results = restore_batch(
                images, mask=mask_arr, boxes=box_list, detector=detector, model_dir=model_dir
            )
        else:
            results = [
                restore(im, mask=mask_arr, boxes=box_list, detector=detector, model_dir=model_dir)
                for im in images
            ]
        for item, res in zip(loaded, results, strict=True):
            out = _with_alpha(res.image, item.image, grey=item.grey)
            problem = _write(out, item.target, item.fmt)
            if problem is not None:
                failures.append((item.source, problem))
            else:
                said = list(res.notes) or ["no watermark found"]
                if item.frames > 1:
                    said.append(f"only the first of its {item.frames} frames is written")
                print(f"{item.source} -> {item.target} ({'; '.join(said)})")

    for src, problem in failures:
        err.print(f"error: {src}: {problem}", markup=False, highlight=False)
    done = len(inputs) - len(failures)
    print(f"{done} of {len(inputs)} images written to {output}")
    if failures:
        names = ", ".join(str(s) for s, _ in failures)
        err.print(f"failed: {names}", markup=False, highlight=False)
        return EXIT_FAILURES
    return EXIT_OK


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


def _with_alpha(rgb: npt.NDArray[np.uint8], like: Image.Image, *, grey: bool) -> Image.Image:
    """The restored pixels with the input's transparency, and in grey for a grey input (the
    engine works in RGB; a grey photo's restoration stays neutral)."""
    if like.mode == "RGBA":
        out = Image.fromarray(np.dstack([rgb, np.asarray(like.getchannel("A"))]), "RGBA")
    else:
        out = Image.fromarray(rgb, "RGB")
    if grey:
        return out.convert("LA" if out.mode == "RGBA" else "L")
    if "icc_profile" in like.info:
        # The same pixels in the same colour space: a wide-gamut photo keeps its colours.
        out.info["icc_profile"] = like.info["icc_profile"]
    return out


def _write(image: Image.Image, target: Path, fmt: str) -> str | None:
    try:
        if fmt in _ENCODED:
            data = encode_image(image, _ENCODED[fmt], quality=95)
        else:
            buf = io.BytesIO()
            im = image
            if fmt == "GIF":
                im = _gif_frame(image)
            elif fmt == "BMP" and image.mode in _WITHOUT_ALPHA:
                im = image.convert(_WITHOUT_ALPHA[image.mode])
            im.save(buf, fmt)
            data = buf.getvalue()
        write_atomically(target, data)
    except ImageError as exc:
        return f"{exc.code}: {exc.message}"
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
