"""Output options shared by the API and CLI (remove.bg's size, bg_color, crop, channels)."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal, get_args

import numpy as np
from numpy.typing import NDArray
from PIL import Image

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
class ComposeOptions:
    size: str = "auto"
    bg_color: RGBA | None = None
    crop: bool = False
    crop_margin: CropMargin = field(default_factory=CropMargin)
    channels: Channels = "rgba"


def parse_options(
    *,
    size: str = "auto",
    bg_color: str | None = None,
    crop: bool = False,
    crop_margin: str | int | None = None,
    channels: str = "rgba",
) -> ComposeOptions:
    """Validate raw request or command-line values; each bad value raises ``OptionError``."""
    if size not in SIZE_BUDGETS:
        raise OptionError(
            "invalid_size", f"Unknown size {size!r}; use one of {', '.join(SIZE_BUDGETS)}."
        )
    if channels not in get_args(Channels):
        raise OptionError("invalid_channels", "Use channels 'rgba' or 'alpha'.")
    return ComposeOptions(
        size=size,
        bg_color=parse_bg_color(bg_color) if bg_color else None,
        crop=crop,
        crop_margin=parse_crop_margin(crop_margin) if crop_margin else CropMargin(),
        channels="alpha" if channels == "alpha" else "rgba",
    )


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


def compose_result(rgba: Image.Image, options: ComposeOptions) -> Image.Image:
    """Apply crop, size, then background or alpha-only output to an RGBA cutout."""
    result = crop_to_subject(rgba, options.crop_margin) if options.crop else rgba
    result = fit_pixels(result, SIZE_BUDGETS[options.size])
    if options.channels == "alpha":
        return result.getchannel("A")
    if options.bg_color is not None:
        return flatten(result, options.bg_color)
    return result
