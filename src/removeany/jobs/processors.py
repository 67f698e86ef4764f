"""Maps a job's service and options to engine calls. Pure: image in, encoded bytes out.

Options are checked at submission (`validate_options`, then `check_for_image` once the upload
is decoded), so a bad option is refused before anything is charged; `run` checks them again,
and a job whose options are bad fails without charge.
"""

from __future__ import annotations

import base64
import binascii
import io
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from PIL import Image
from pydantic import BaseModel, ValidationError

from removeany.engine.background import remove_background
from removeany.engine.compose import (
    SIZE_BUDGETS,
    ComposeOptions,
    check_result_format,
    color_alpha_zip,
    compose_result,
    fit_pixels,
    fitted_size,
    most_pixels,
    parse_options,
)
from removeany.engine.errors import ImageError, ModelError, OptionError
from removeany.engine.io import (
    OutputFormat,
    SourceEncoding,
    check_metadata,
    check_output_side,
    decode_image,
    encode_image,
    fits_format,
    fits_metadata,
)
from removeany.engine.portrait import ID_BACKGROUNDS, ID_DPI, ID_SIZES, cutout_portrait, id_photo
from removeany.engine.watermark import (
    TEXT_DETECTOR,
    SharedMark,
    apply_shared_mark,
    as_original,
    load_text_detector,
    restore,
)
from removeany.jobs.schemas import (
    MAX_BACKGROUND_B64,
    MAX_MASK_B64,
    IdPhotoOptions,
    PortraitOptions,
    RemoveBackgroundOptions,
    RemoveWatermarkOptions,
)
from removeany.operator_models import ServiceModels

MEDIA_TYPES = {
    "png": "image/png",
    "jpg": "image/jpeg",
    "webp": "image/webp",
    "zip": "application/zip",
}
# The options each service accepts; unknown fields are refused so typos are visible.
SERVICE_OPTIONS: dict[str, type[BaseModel]] = {
    "remove_background": RemoveBackgroundOptions,
    "portrait": PortraitOptions,
    "id_photo": IdPhotoOptions,
    "remove_watermark": RemoveWatermarkOptions,
}
# Watermark removal keeps the input's format; formats we cannot write become PNG (lossless).
_SAME_FORMAT: dict[str, OutputFormat] = {"PNG": "png", "JPEG": "jpg", "WEBP": "webp"}
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_MASK_HINT = "Paint the watermark white on black, at the photo's size, and upload it again."
# A background photo is kept with the job at no more than this many pixels (it is scaled to
# cover the result anyway).
_BACKGROUND_PIXELS = 4_000_000


@dataclass(frozen=True)
class Output:
    data: bytes
    media_type: str
    width: int
    height: int
    detected_type: str | None
    foreground: dict[str, int] | None


# --------------------------------------------------------------------------- options


def compose_options(options: dict[str, Any]) -> ComposeOptions:
    """Validate stored options; raising OptionError here lets submission refuse before charging."""
    return parse_options(
        size=options.get("size", "full"),
        bg_color=options.get("bg_color"),
        crop=bool(options.get("crop", False)),
        crop_margin=options.get("crop_margin"),
        channels=options.get("channels", "rgba"),
        roi=options.get("roi"),
        scale=options.get("scale"),
        position=options.get("position"),
        add_shadow=bool(options.get("add_shadow", False)),
    )


def _check_cutout(options: dict[str, Any]) -> None:
    compose_options(options)
    if options.get("bg_image_jpg") is not None:
        _decode_background(options["bg_image_jpg"])
    if options.get("format") == "zip" and options.get("channels") == "alpha":
        raise OptionError(
            "invalid_format", "The zip format already holds the alpha; use channels 'rgba'."
        )


def _check_id_photo(options: dict[str, Any]) -> None:
    if options.get("size") not in ID_SIZES:
        raise OptionError("invalid_size", f"size must be one of {', '.join(ID_SIZES)}.")
    if options.get("background") not in ID_BACKGROUNDS:
        raise OptionError(
            "invalid_background", f"background must be one of {', '.join(ID_BACKGROUNDS)}."
        )


def _check_watermark(options: dict[str, Any]) -> None:
    parse_options(size=options.get("size", "full"))
    mask = options.get("mask_png")
    if mask is not None:
        _mask_bytes(mask)


# Checks beyond the option models' types, per service (engine rules: colours, margins, ...).
OPTION_CHECKS: dict[str, Callable[[dict[str, Any]], object]] = {
    "remove_background": _check_cutout,
    "portrait": _check_cutout,
    "id_photo": _check_id_photo,
    "remove_watermark": _check_watermark,
}


def validate_options(service: str, raw: dict[str, Any]) -> dict[str, Any]:
    """The options a job of `service` stores, with defaults filled in; OptionError if any is
    malformed or unknown, or if there is no such service."""
    model = SERVICE_OPTIONS.get(service)
    if model is None:
        raise OptionError(
            "unknown_service",
            f"There is no service {service!r}. Use one of: {', '.join(SERVICE_OPTIONS)}.",
        )
    try:
        options = model.model_validate(raw).model_dump(mode="json")
    except ValidationError as exc:
        raise _option_error(service, exc) from None
    OPTION_CHECKS[service](options)
    return options


def _option_error(service: str, exc: ValidationError) -> OptionError:
    first = exc.errors()[0]
    loc = [str(p) for p in first["loc"]] or ["options"]
    field = loc[0]
    if first["type"] == "extra_forbidden":
        return OptionError(
            f"invalid_{field}", f"The {service} service has no option {field!r}; leave it out."
        )
    if field == "boxes":
        return OptionError(
            "invalid_boxes",
            f"{'.'.join(loc)}: {first['msg']}. Give boxes as [[x, y, width, height], ...] in "
            "pixels of the photo.",
        )
    return OptionError(f"invalid_{field}", f"{field}: {first['msg']}.")


def check_for_image(service: str, options: dict[str, Any], image: Image.Image) -> None:
    """Checks that need the decoded upload: the result must fit its format
    (`check_output`), watermark boxes and masks must lie on the photo."""
    check_output(service, options, image)
    if service != "remove_watermark":
        return
    width, height = image.size
    for n, (x, y, w, h) in enumerate(options.get("boxes") or [], start=1):
        if x >= width or y >= height:
            raise OptionError(
                "invalid_boxes",
                f"Box {n} [{x}, {y}, {w}, {h}] starts outside the {width}x{height} photo. "
                "Give boxes as [x, y, width, height] in pixels of the photo.",
            )
    if options.get("mask_png") is not None:
        decode_mask(options["mask_png"], (width, height))


def check_output(service: str, options: dict[str, Any], image: Image.Image) -> None:
    """Refuse a job whose result its format could not hold, from the decoded upload and the
    options alone: before anything is stored or charged, rather than after the model ran.
    ImageError `output_too_large` (WebP at most 16383 pixels per side, JPEG 65500) or
    `metadata_too_large` (keep_metadata with more EXIF than a JPEG holds). `options` are
    validated ones (`validate_options`)."""
    width, height = image.size
    fmt = options.get("format")
    if service in ("remove_background", "portrait"):
        check_result_format(width, height, compose_options(options), fmt or "png")
    elif service == "remove_watermark" and fmt is not None:
        size = fitted_size(width, height, SIZE_BUDGETS[options.get("size", "full")])
        check_output_side(fmt, *size)
    else:
        return
    check_metadata(fmt or "png", _exif(image, options))


def result_pixels(service: str, options: dict[str, Any], width: int, height: int) -> int:
    """The most pixels a job's result can have, from the photo's size and the validated
    options: exact but for `crop`, whose subject is found only when the model runs (then the
    whole photo with its margins). A job holds the price of this many pixels' tier."""
    if service in ("remove_background", "portrait"):
        return most_pixels(width, height, compose_options(options))
    fitted = fitted_size(width, height, SIZE_BUDGETS.get(str(options.get("size")), None))
    return fitted[0] * fitted[1]


def encode_mask(mask: Image.Image, size: tuple[int, int]) -> str:
    """An uploaded mask image (white = watermark, or opaque = watermark on a transparent
    image) as the compact 1-bit PNG the job's options keep."""
    if mask.size != size:
        raise OptionError(
            "invalid_mask",
            f"The mask is {mask.width}x{mask.height} pixels but the photo is "
            f"{size[0]}x{size[1]}. {_MASK_HINT}",
        )
    if mask.mode == "RGBA" and np.asarray(mask.getchannel("A")).min() < 255:
        marked = np.asarray(mask.getchannel("A")) > 127
    else:
        marked = np.asarray(mask.convert("L")) > 127
    if not marked.any():
        raise OptionError("invalid_mask", f"The mask has no white pixels. {_MASK_HINT}")
    buf = io.BytesIO()
    Image.fromarray(marked).save(buf, "PNG", optimize=True)
    encoded = base64.b64encode(buf.getvalue()).decode("ascii")
    if len(encoded) > MAX_MASK_B64:
        raise OptionError(
            "invalid_mask",
            "The mask is too detailed to keep with the job. Mark the watermark with a few "
            "filled shapes, or send boxes instead.",
        )
    return encoded


def encode_background(image: Image.Image) -> str:
    """A background photo (remove.bg's bg_image_file) as the JPEG the job's options keep,
    with its colour profile (the cutout's colours are matched to it) and no other metadata."""
    rgb = fit_pixels(image.convert("RGB"), _BACKGROUND_PIXELS)
    encoded = base64.b64encode(encode_image(rgb, "jpg", quality=88)).decode("ascii")
    if len(encoded) > MAX_BACKGROUND_B64:
        raise OptionError(
            "invalid_bg_image",
            "The background image is too detailed to keep with the job; use a smaller one.",
        )
    return encoded


def _decode_background(value: str) -> Image.Image:
    try:
        data = base64.b64decode(value, validate=True)
        return decode_image(data, max_bytes=len(data), max_pixels=_BACKGROUND_PIXELS)
    except (binascii.Error, ValueError, ImageError):
        raise OptionError(
            "invalid_bg_image", "bg_image_jpg is not a base64 JPEG image; upload bg_image_file."
        ) from None


def _mask_bytes(value: str) -> bytes:
    try:
        data = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        data = b""
    if not data.startswith(_PNG_MAGIC):
        raise OptionError("invalid_mask", f"mask_png is not a base64 PNG image. {_MASK_HINT}")
    return data


def decode_mask(value: str, size: tuple[int, int]) -> npt.NDArray[np.bool_]:
    """A job's stored mask (`mask_png`) as a boolean array; OptionError unless it is a PNG
    of exactly `size` (width, height)."""
    data = _mask_bytes(value)
    try:
        mask = decode_image(data, max_bytes=len(data), max_pixels=size[0] * size[1])
    except ImageError:
        raise OptionError(
            "invalid_mask", f"The mask does not match the {size[0]}x{size[1]} photo. {_MASK_HINT}"
        ) from None
    if mask.size != size:
        raise OptionError(
            "invalid_mask", f"The mask does not match the {size[0]}x{size[1]} photo. {_MASK_HINT}"
        )
    return np.asarray(mask.convert("L")) > 127


# --------------------------------------------------------------------------- running


def run(
    service: str,
    image: Image.Image,
    options: dict[str, Any],
    model_dir: Path,
    *,
    models: ServiceModels = ServiceModels(),
    source: SourceEncoding | None = None,
    shared_mark: SharedMark | None = None,
) -> Output:
    """Run `service` on a decoded upload. `source` is how the upload was encoded
    (engine.io.source_encoding); watermark removal writes the same format back, encoded
    alike, and uses `shared_mark`, the watermark its batch's photos share, where it is on this
    photo."""
    checked = validate_options(service, options)
    check_output(service, checked, image)
    if service == "remove_background":
        return _remove_background(image, checked, model_dir, models)
    if service == "portrait":
        return _portrait(image, checked, model_dir, models)
    if service == "id_photo":
        return _id_photo(image, checked, model_dir, models)
    if service == "remove_watermark":
        return _remove_watermark(image, checked, model_dir, source, shared_mark)
    raise ValueError(f"unknown service {service!r}")  # pragma: no cover - validated above


def _exif(image: Image.Image, options: dict[str, Any]) -> bytes | None:
    """The upload's EXIF block when its owner asked to keep it; results carry none otherwise."""
    if not options.get("keep_metadata"):
        return None
    exif = image.info.get("exif")
    return exif if isinstance(exif, bytes) and exif else None


def _cutout_output(
    rgba: Image.Image, options: dict[str, Any], detected_type: str | None, exif: bytes | None
) -> Output:
    background = options.get("bg_image_jpg")
    composed = compose_result(
        rgba,
        compose_options(options),
        bg_image=_decode_background(background) if background is not None else None,
    )
    image = composed.image
    fmt = options.get("format", "png")
    if fmt == "auto":
        fmt = _auto_format(image, exif)
    data = color_alpha_zip(image) if fmt == "zip" else encode_image(image, fmt, exif=exif)
    left, top, width, height = composed.foreground
    return Output(
        data=data,
        media_type=MEDIA_TYPES[fmt],
        width=image.width,
        height=image.height,
        detected_type=detected_type,
        foreground={"left": left, "top": top, "width": width, "height": height},
    )


def _auto_format(image: Image.Image, exif: bytes | None = None) -> OutputFormat:
    """remove.bg's `auto`: JPG when nothing is transparent (smaller), PNG otherwise. A matte
    (channels alpha) stays PNG: JPEG would blur the edges it is for; so does a result too
    large for JPEG, or with more EXIF to keep than a JPEG holds, which a user asking for
    `auto` would rather have than a refusal."""
    if image.mode == "L" or not fits_format("jpg", image.width, image.height):
        return "png"  # a matte, or a result past JPEG's 65500 pixels per side
    if not fits_metadata("jpg", exif):
        return "png"  # EXIF to keep that a JPEG cannot hold
    if image.mode == "RGBA" and np.asarray(image.getchannel("A")).min() < 255:
        return "png"
    return "jpg"


def _remove_background(
    image: Image.Image, options: dict[str, Any], model_dir: Path, models: ServiceModels
) -> Output:
    """`type` picks the path: `person` uses the portrait pipeline, other types are reported
    back as given. With `auto` no type is claimed: the face detector also fires on dolls and
    plush toys and misses the small faces of full-length shots, so "person" would be a guess
    (X-Type: other)."""
    kind = options.get("type", "auto")
    if kind == "person":
        return _portrait(image, options, model_dir, models)
    rgba = remove_background(image, model=models.cutout, model_dir=model_dir)
    return _cutout_output(rgba, options, None if kind == "auto" else kind, _exif(image, options))


def _portrait(
    image: Image.Image, options: dict[str, Any], model_dir: Path, models: ServiceModels
) -> Output:
    rgba = cutout_portrait(image, model=models.portrait, model_dir=model_dir)
    return _cutout_output(rgba, options, "person", _exif(image, options))


def _id_photo(
    image: Image.Image, options: dict[str, Any], model_dir: Path, models: ServiceModels
) -> Output:
    photo = id_photo(
        image, options["size"], options["background"], model=models.portrait, model_dir=model_dir
    )
    fmt: OutputFormat = "png" if options["format"] == "png" else "jpg"
    return Output(
        data=encode_image(photo, fmt, quality=95, dpi=(ID_DPI, ID_DPI)),
        media_type=MEDIA_TYPES[fmt],
        width=photo.width,
        height=photo.height,
        detected_type="person",
        foreground=None,
    )


def _remove_watermark(
    image: Image.Image,
    options: dict[str, Any],
    model_dir: Path,
    source: SourceEncoding | None,
    shared_mark: SharedMark | None,
) -> Output:
    boxes = [(x, y, x + w, y + h) for x, y, w, h in options.get("boxes") or []]
    mask = options.get("mask_png")
    user_mask = decode_mask(mask, image.size) if mask is not None else None
    result = None
    if shared_mark is not None and shared_mark.shape == (image.height, image.width):
        result = apply_shared_mark(image, shared_mark)
        if not result.mask.any():
            result = None  # the batch's mark is not on this photo: look for its own
    detector = None
    if result is None and user_mask is None and not boxes:
        detector = load_text_detector(model_dir)
        if detector is None:
            raise ModelError(
                f"The text detector {TEXT_DETECTOR.filename} is not installed; run "
                "`removeany models fetch`."
            )
    if result is None:
        result = restore(
            image, mask=user_mask, boxes=boxes or None, detector=detector, model_dir=model_dir
        )
    if not result.mask.any():
        if detector is None:
            raise ImageError(
                "no_watermark",
                "The boxes or mask cover no pixel of the photo. Mark the watermark where it "
                "is and try again.",
            )
        raise ImageError(
            "no_watermark",
            "No watermark was found in this photo. Mark it with boxes or a mask and try again.",
        )
    source = source or SourceEncoding(format=None)
    restored = as_original(result.image, image, grey=source.grey)
    full_width = restored.width
    restored = fit_pixels(restored, SIZE_BUDGETS[options.get("size", "full")])
    fmt: OutputFormat = options.get("format") or _SAME_FORMAT.get(source.format or "", "png")
    dpi = restored.info.get("dpi")
    if dpi is not None:  # a smaller result prints at the photo's size
        dpi = (dpi[0] * restored.width / full_width, dpi[1] * restored.width / full_width)
    return Output(
        data=encode_image(
            restored, fmt, quality=95, exif=_exif(image, options), dpi=dpi, like=source
        ),
        media_type=MEDIA_TYPES[fmt],
        width=restored.width,
        height=restored.height,
        detected_type=None,
        foreground=None,
    )
