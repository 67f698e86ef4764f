"""Output options shared by the API and CLI: remove.bg's size, bg_color / background image,
crop, roi, scale and position, shadow and channels, applied in remove.bg's order (roi, crop,
scale/position, shadow, size, background)."""

from __future__ import annotations

import io
import math
import re
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal, get_args

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageFilter

from removeany.engine.errors import OptionError

Channels = Literal["rgba", "alpha"]
RGBA = tuple[int, int, int, int]

# remove.bg's size names mapped to a pixel budget; None keeps the full resolution.
SIZE_BUDGETS: Mapping[str, int | None] = {
    "preview": 250_000,
    "small": 250_000,
    "regular": 250_000,
    "medium": 1_500_000,
    "hd": 4_000_000,
    "4k": 10_000_000,
    "50MP": 50_000_000,
    "full": None,
    "auto": None,
}
CSS_COLORS: Mapping[str, RGBA] = {
    "white": (255, 255, 255, 255),
    "black": (0, 0, 0, 255),
    "gray": (128, 128, 128, 255),
    "grey": (128, 128, 128, 255),
    "red": (255, 0, 0, 255),
    "green": (0, 128, 0, 255),
    "blue": (0, 0, 255, 255),
    "yellow": (255, 255, 0, 255),
    "transparent": (0, 0, 0, 0),
}
MAX_MARGIN_PX = 500
MAX_MARGIN_PERCENT = 50.0
# Alpha above this counts as subject for boxes and crops; lower keeps faint halos out.
_BOX_THRESHOLD = 0.05
_HEX_RE = re.compile(r"^#?([0-9a-fA-F]{3}|[0-9a-fA-F]{6}|[0-9a-fA-F]{8})$")
_MARGIN_RE = re.compile(r"^(\d+(?:\.\d+)?)\s*(px|%)?$")
_LENGTH_RE = re.compile(r"^(\d+(?:\.\d+)?)(px|%)?$")
_PERCENT_RE = re.compile(r"^(\d+(?:\.\d+)?)%$")
# The drop shadow: how far below the subject (share of its height), how soft, how dark.
_SHADOW_OFFSET = 0.02
_SHADOW_BLUR = 0.015
_SHADOW_OPACITY = 0.45


@dataclass(frozen=True)
class CropMargin:
    """Margin around a cropped subject: pixels, or a percentage of the subject's size."""

    value: float = 0.0
    relative: bool = False

    def pixels(self, width: int, height: int) -> tuple[int, int]:
        """Horizontal and vertical margin for a subject of the given size."""
        if self.relative:
            return round(width * self.value / 100), round(height * self.value / 100)
        return round(self.value), round(self.value)


@dataclass(frozen=True)
class Length:
    """A coordinate in pixels or as a percentage of the image's width or height."""

    value: float
    relative: bool

    def pixels(self, extent: int) -> int:
        return round(extent * self.value / 100) if self.relative else round(self.value)


@dataclass(frozen=True)
class Roi:
    """Region of interest (x1, y1, x2, y2): only what lies inside can be foreground."""

    x1: Length
    y1: Length
    x2: Length
    y2: Length

    def box(self, width: int, height: int) -> tuple[int, int, int, int]:
        return (
            max(0, self.x1.pixels(width)),
            max(0, self.y1.pixels(height)),
            min(width, self.x2.pixels(width)),
            min(height, self.y2.pixels(height)),
        )


@dataclass(frozen=True)
class ComposeOptions:
    size: str = "auto"
    bg_color: RGBA | None = None
    crop: bool = False
    crop_margin: CropMargin = field(default_factory=CropMargin)
    channels: Channels = "rgba"
    roi: Roi | None = None
    # Share of the canvas the subject's larger side fills (0.1-1.0); None keeps its size.
    scale: float | None = None
    # Where the subject sits, as fractions (0 = left/top edge, 1 = right/bottom, like CSS
    # background-position); None keeps it where it was.
    position: tuple[float, float] | None = None
    add_shadow: bool = False


def parse_options(
    *,
    size: str = "auto",
    bg_color: str | None = None,
    crop: bool = False,
    crop_margin: str | int | None = None,
    channels: str = "rgba",
    roi: str | None = None,
    scale: str | None = None,
    position: str | None = None,
    add_shadow: bool = False,
) -> ComposeOptions:
    """Validate raw request or command-line values; each bad value raises ``OptionError``."""
    if size not in SIZE_BUDGETS:
        raise OptionError(
            "invalid_size", f"Unknown size {size!r}; use one of {', '.join(SIZE_BUDGETS)}."
        )
    if channels not in get_args(Channels):
        raise OptionError("invalid_channels", "Use channels 'rgba' or 'alpha'.")
    parsed_scale = parse_scale(scale) if scale else None
    parsed_position = parse_position(position) if position else None
    if parsed_scale is not None and parsed_position is None and not position:
        parsed_position = (0.5, 0.5)  # remove.bg: scaling implies centring
    return ComposeOptions(
        size=size,
        bg_color=parse_bg_color(bg_color) if bg_color else None,
        crop=crop,
        crop_margin=parse_crop_margin(crop_margin) if crop_margin else CropMargin(),
        channels="alpha" if channels == "alpha" else "rgba",
        roi=parse_roi(roi) if roi else None,
        scale=parsed_scale,
        position=parsed_position,
        add_shadow=add_shadow,
    )


def parse_roi(value: str) -> Roi:
    """'x1 y1 x2 y2', each in pixels ('120' or '120px') or percent ('10%'), as remove.bg."""
    parts = value.replace(",", " ").split()
    lengths = [_LENGTH_RE.match(part) for part in parts]
    if len(parts) != 4 or not all(lengths):
        raise OptionError(
            "invalid_roi",
            f"{value!r} is not a region; give four numbers 'x1 y1 x2 y2' in px or %, "
            "like '0% 0% 100% 100%'.",
        )
    x1, y1, x2, y2 = (
        Length(float(m.group(1)), m.group(2) == "%") for m in lengths if m is not None
    )
    for length in (x1, y1, x2, y2):
        if length.relative and length.value > 100:
            raise OptionError("invalid_roi", "Region percentages must be between 0% and 100%.")
    if x1.relative == x2.relative and x2.value <= x1.value:
        raise OptionError("invalid_roi", "The region's x2 must be to the right of x1.")
    if y1.relative == y2.relative and y2.value <= y1.value:
        raise OptionError("invalid_roi", "The region's y2 must be below y1.")
    return Roi(x1, y1, x2, y2)


def parse_scale(value: str) -> float | None:
    """'original' or '10%'..'100%': how much of the canvas the subject fills."""
    text = value.strip().lower()
    if text == "original":
        return None
    match = _PERCENT_RE.match(text)
    if match is None or not 10 <= float(match.group(1)) <= 100:
        raise OptionError(
            "invalid_scale", f"{value!r} is not a scale; use 'original' or 10% to 100%."
        )
    return float(match.group(1)) / 100


def parse_position(value: str) -> tuple[float, float] | None:
    """'original', 'center', one percentage for both axes, or 'X% Y%'."""
    text = value.strip().lower()
    if text == "original":
        return None
    if text in ("center", "centre"):
        return 0.5, 0.5
    parts = text.split()
    matches = [_PERCENT_RE.match(part) for part in parts]
    if not 1 <= len(parts) <= 2 or not all(matches):
        raise OptionError(
            "invalid_position",
            f"{value!r} is not a position; use 'original', 'center', '50%' or '50% 100%'.",
        )
    fractions = [float(m.group(1)) / 100 for m in matches if m is not None]
    if any(f > 1 for f in fractions):
        raise OptionError("invalid_position", "Positions must be between 0% and 100%.")
    return (fractions[0], fractions[-1])


def parse_bg_color(value: str) -> RGBA:
    """Hex colour (3, 6 or 8 digits, '#' optional) or a basic CSS colour name."""
    named = CSS_COLORS.get(value.strip().lower())
    if named is not None:
        return named
    match = _HEX_RE.match(value.strip())
    if match is None:
        raise OptionError(
            "invalid_bg_color",
            f"{value!r} is not a colour; use hex like '81d4fa' or '#81d4fa80', or a name "
            f"such as {', '.join(CSS_COLORS)}.",
        )
    digits = match.group(1)
    if len(digits) == 3:
        digits = "".join(ch * 2 for ch in digits)
    if len(digits) == 6:
        digits += "ff"
    r, g, b, a = (int(digits[i : i + 2], 16) for i in range(0, 8, 2))
    return r, g, b, a


def parse_crop_margin(value: str | int) -> CropMargin:
    """'30', '30px' or 30 are pixels; '10%' is relative to the subject (remove.bg's rules)."""
    match = _MARGIN_RE.match(str(value).strip())
    if match is None:
        raise OptionError(
            "invalid_crop_margin", f"{value!r} is not a margin; use pixels like '30px' or '10%'."
        )
    amount = float(match.group(1))
    relative = match.group(2) == "%"
    limit = MAX_MARGIN_PERCENT if relative else MAX_MARGIN_PX
    if amount > limit:
        unit = "%" if relative else "px"
        raise OptionError(
            "invalid_crop_margin", f"The crop margin may be at most {limit:g}{unit} per side."
        )
    return CropMargin(amount, relative)


def foreground_box(alpha: NDArray[np.uint8] | NDArray[np.float32]) -> tuple[int, int, int, int]:
    """(left, top, width, height) of the subject, for crops and X-Foreground-* headers.

    ``alpha`` is uint8 (0-255) or float (0-1). An empty alpha gives (0, 0, 0, 0).
    """
    level = _BOX_THRESHOLD * 255 if alpha.dtype == np.uint8 else _BOX_THRESHOLD
    mask = alpha > level
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        return 0, 0, 0, 0
    top, left = int(rows[0]), int(cols[0])
    return left, top, int(cols[-1]) - left + 1, int(rows[-1]) - top + 1


def crop_to_subject(rgba: Image.Image, margin: CropMargin) -> Image.Image:
    """Crop to the subject plus margin; margin past the image edge is transparent."""
    left, top, width, height = foreground_box(np.asarray(rgba.getchannel("A")))
    if width == 0:
        return rgba
    mx, my = margin.pixels(width, height)
    return rgba.crop((left - mx, top - my, left + width + mx, top + height + my))


def fit_pixels(image: Image.Image, budget: int | None) -> Image.Image:
    """Downscale, keeping the aspect ratio, so width * height <= budget; never upscale."""
    width, height = image.size
    if budget is None or width * height <= budget:
        return image
    scale = math.sqrt(budget / (width * height))
    size = (max(1, math.floor(width * scale)), max(1, math.floor(height * scale)))
    return image.resize(size, Image.Resampling.LANCZOS)


def flatten(rgba: Image.Image, color: RGBA) -> Image.Image:
    """Put the cutout on a solid colour; opaque colours give RGB, translucent ones RGBA."""
    composed = Image.alpha_composite(Image.new("RGBA", rgba.size, color), rgba)
    return composed.convert("RGB") if color[3] == 255 else composed


def keep_roi(rgba: Image.Image, roi: Roi) -> Image.Image:
    """Clear the alpha outside the region of interest."""
    x1, y1, x2, y2 = roi.box(*rgba.size)
    alpha = Image.new("L", rgba.size, 0)
    if x2 > x1 and y2 > y1:
        alpha.paste(rgba.getchannel("A").crop((x1, y1, x2, y2)), (x1, y1))
    result = rgba.copy()
    result.putalpha(alpha)
    return result


def place_subject(
    rgba: Image.Image, scale: float | None, position: tuple[float, float] | None
) -> Image.Image:
    """Resize the subject to `scale` of the canvas and move it to `position`, same canvas."""
    left, top, width, height = foreground_box(np.asarray(rgba.getchannel("A")))
    if width == 0 or (scale is None and position is None):
        return rgba
    subject = rgba.crop((left, top, left + width, top + height))
    canvas_w, canvas_h = rgba.size
    if scale is not None:
        factor = scale * min(canvas_w / width, canvas_h / height)
        size = (max(1, round(width * factor)), max(1, round(height * factor)))
        subject = subject.resize(size, Image.Resampling.LANCZOS)
    if position is None:  # scaled in place: keep the subject's centre
        x = round(left + width / 2 - subject.width / 2)
        y = round(top + height / 2 - subject.height / 2)
    else:
        x = round((canvas_w - subject.width) * position[0])
        y = round((canvas_h - subject.height) * position[1])
    placed = Image.new("RGBA", rgba.size, (0, 0, 0, 0))
    placed.alpha_composite(subject, (max(0, x), max(0, y)), (max(0, -x), max(0, -y)))
    return placed


def add_drop_shadow(rgba: Image.Image) -> Image.Image:
    """A soft shadow of the subject's silhouette a little below it, beneath the subject."""
    _, _, _, height = foreground_box(np.asarray(rgba.getchannel("A")))
    if height == 0:
        return rgba
    offset = max(1, round(height * _SHADOW_OFFSET))
    blur = max(1.0, height * _SHADOW_BLUR)
    silhouette = rgba.getchannel("A").point(lambda a: round(a * _SHADOW_OPACITY))
    shadow_alpha = Image.new("L", rgba.size, 0)
    shadow_alpha.paste(silhouette, (0, offset))
    shadow = Image.new("RGBA", rgba.size, (0, 0, 0, 0))
    shadow.putalpha(shadow_alpha.filter(ImageFilter.GaussianBlur(blur)))
    return Image.alpha_composite(shadow, rgba)


def cover(background: Image.Image, size: tuple[int, int]) -> Image.Image:
    """Scale a background image to cover `size` and crop the centre, as CSS `cover` does."""
    width, height = size
    factor = max(width / background.width, height / background.height)
    scaled = background.convert("RGBA").resize(
        (max(width, math.ceil(background.width * factor)),
         max(height, math.ceil(background.height * factor))),
        Image.Resampling.LANCZOS,
    )  # fmt: skip
    left = (scaled.width - width) // 2
    top = (scaled.height - height) // 2
    return scaled.crop((left, top, left + width, top + height))


def compose_result(
    rgba: Image.Image, options: ComposeOptions, bg_image: Image.Image | None = None
) -> Image.Image:
    """Apply roi, crop, scale/position, shadow, size, then the background (a colour, or an
    image scaled to cover the result) or alpha-only output to an RGBA cutout."""
    result = keep_roi(rgba, options.roi) if options.roi is not None else rgba
    result = crop_to_subject(result, options.crop_margin) if options.crop else result
    result = place_subject(result, options.scale, options.position)
    if options.add_shadow and options.channels != "alpha":
        result = add_drop_shadow(result)
    result = fit_pixels(result, SIZE_BUDGETS[options.size])
    if options.channels == "alpha":
        return result.getchannel("A")
    if bg_image is not None:
        return Image.alpha_composite(cover(bg_image, result.size), result).convert("RGB")
    if options.bg_color is not None:
        return flatten(result, options.bg_color)
    return result


def color_alpha_zip(image: Image.Image, *, quality: int = 90) -> bytes:
    """remove.bg's `zip` format: `color.jpg` (the colours, no alpha) and `alpha.png` (the
    matte), smaller than an RGBA PNG and easy to composite elsewhere."""
    rgba = image.convert("RGBA")
    color = io.BytesIO()
    rgba.convert("RGB").save(color, "JPEG", quality=quality)
    alpha = io.BytesIO()
    rgba.getchannel("A").save(alpha, "PNG")
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("color.jpg", color.getvalue())
        archive.writestr("alpha.png", alpha.getvalue())
    return out.getvalue()
