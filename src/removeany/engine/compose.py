"""Output options shared by the API and CLI: remove.bg's size, bg_color / background image,
crop, roi, scale and position, shadow and channels, applied in remove.bg's order (roi, crop,
scale/position, shadow, size, background)."""

from __future__ import annotations

import io
import math
import re
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Literal, get_args

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageFilter

from removeany.engine.errors import ImageError, OptionError
from removeany.engine.io import (
    check_output_side,
    convert_colours,
    encode_image,
    fits_format,
    rgb_profile,
)

Channels = Literal["rgba", "alpha"]
RGBA = tuple[int, int, int, int]
# (left, top, width, height) in pixels.
Box = tuple[int, int, int, int]

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
# The CSS named colours (CSS Color Module Level 4), checked against Chromium's, as remove.bg
# takes them: name, then hex.
_CSS_NAMED = (
    "aliceblue f0f8ff antiquewhite faebd7 aqua 00ffff aquamarine 7fffd4 azure f0ffff "
    "beige f5f5dc bisque ffe4c4 black 000000 blanchedalmond ffebcd blue 0000ff "
    "blueviolet 8a2be2 brown a52a2a burlywood deb887 cadetblue 5f9ea0 chartreuse 7fff00 "
    "chocolate d2691e coral ff7f50 cornflowerblue 6495ed cornsilk fff8dc crimson dc143c "
    "cyan 00ffff darkblue 00008b darkcyan 008b8b darkgoldenrod b8860b darkgray a9a9a9 "
    "darkgreen 006400 darkgrey a9a9a9 darkkhaki bdb76b darkmagenta 8b008b "
    "darkolivegreen 556b2f darkorange ff8c00 darkorchid 9932cc darkred 8b0000 "
    "darksalmon e9967a darkseagreen 8fbc8f darkslateblue 483d8b darkslategray 2f4f4f "
    "darkslategrey 2f4f4f darkturquoise 00ced1 darkviolet 9400d3 deeppink ff1493 "
    "deepskyblue 00bfff dimgray 696969 dimgrey 696969 dodgerblue 1e90ff firebrick b22222 "
    "floralwhite fffaf0 forestgreen 228b22 fuchsia ff00ff gainsboro dcdcdc ghostwhite f8f8ff "
    "gold ffd700 goldenrod daa520 gray 808080 green 008000 greenyellow adff2f grey 808080 "
    "honeydew f0fff0 hotpink ff69b4 indianred cd5c5c indigo 4b0082 ivory fffff0 khaki f0e68c "
    "lavender e6e6fa lavenderblush fff0f5 lawngreen 7cfc00 lemonchiffon fffacd "
    "lightblue add8e6 lightcoral f08080 lightcyan e0ffff lightgoldenrodyellow fafad2 "
    "lightgray d3d3d3 lightgreen 90ee90 lightgrey d3d3d3 lightpink ffb6c1 lightsalmon ffa07a "
    "lightseagreen 20b2aa lightskyblue 87cefa lightslategray 778899 lightslategrey 778899 "
    "lightsteelblue b0c4de lightyellow ffffe0 lime 00ff00 limegreen 32cd32 linen faf0e6 "
    "magenta ff00ff maroon 800000 mediumaquamarine 66cdaa mediumblue 0000cd "
    "mediumorchid ba55d3 mediumpurple 9370db mediumseagreen 3cb371 mediumslateblue 7b68ee "
    "mediumspringgreen 00fa9a mediumturquoise 48d1cc mediumvioletred c71585 "
    "midnightblue 191970 mintcream f5fffa mistyrose ffe4e1 moccasin ffe4b5 navajowhite ffdead "
    "navy 000080 oldlace fdf5e6 olive 808000 olivedrab 6b8e23 orange ffa500 orangered ff4500 "
    "orchid da70d6 palegoldenrod eee8aa palegreen 98fb98 paleturquoise afeeee "
    "palevioletred db7093 papayawhip ffefd5 peachpuff ffdab9 peru cd853f pink ffc0cb "
    "plum dda0dd powderblue b0e0e6 purple 800080 rebeccapurple 663399 red ff0000 "
    "rosybrown bc8f8f royalblue 4169e1 saddlebrown 8b4513 salmon fa8072 sandybrown f4a460 "
    "seagreen 2e8b57 seashell fff5ee sienna a0522d silver c0c0c0 skyblue 87ceeb "
    "slateblue 6a5acd slategray 708090 slategrey 708090 snow fffafa springgreen 00ff7f "
    "steelblue 4682b4 tan d2b48c teal 008080 thistle d8bfd8 tomato ff6347 turquoise 40e0d0 "
    "violet ee82ee wheat f5deb3 white ffffff whitesmoke f5f5f5 yellow ffff00 "
    "yellowgreen 9acd32"
)


def _hex_rgba(digits: str) -> RGBA:
    """3, 4, 6 or 8 hex digits (CSS's #rgb, #rgba, #rrggbb, #rrggbbaa) as RGBA."""
    if len(digits) <= 4:
        digits = "".join(ch * 2 for ch in digits)
    if len(digits) == 6:
        digits += "ff"
    r, g, b, a = (int(digits[i : i + 2], 16) for i in range(0, 8, 2))
    return r, g, b, a


_NAMED_WORDS = _CSS_NAMED.split()
CSS_COLORS: Mapping[str, RGBA] = {
    **{
        name: _hex_rgba(digits)
        for name, digits in zip(_NAMED_WORDS[::2], _NAMED_WORDS[1::2], strict=True)
    },
    "transparent": (0, 0, 0, 0),
}
MAX_MARGIN_PX = 500
MAX_MARGIN_PERCENT = 50.0
# Alpha above this counts as subject for boxes and crops; lower keeps faint halos out.
_BOX_THRESHOLD = 0.05
_HEX_RE = re.compile(r"^#?([0-9a-fA-F]{3,4}|[0-9a-fA-F]{6}|[0-9a-fA-F]{8})$")
# One to four margins ('30px', '10% 5%', ...); each is a number with px, % or no unit.
_MARGINS_RE = re.compile(r"(?:\d+(?:\.\d+)?\s*(?:px|%)?[\s,]*)+")
_MARGIN_RE = re.compile(r"(\d+(?:\.\d+)?)\s*(px|%)?")
_LENGTH_RE = re.compile(r"^(\d+(?:\.\d+)?)(px|%)?$")
_PERCENT_RE = re.compile(r"^(\d+(?:\.\d+)?)%$")
# The drop shadow: how far below the subject (share of its height), how soft, how dark.
_SHADOW_OFFSET = 0.02
_SHADOW_BLUR = 0.015
_SHADOW_OPACITY = 0.45


@dataclass(frozen=True)
class Length:
    """A coordinate in pixels or as a percentage of the image's width or height."""

    value: float
    relative: bool

    def pixels(self, extent: int) -> int:
        return round(extent * self.value / 100) if self.relative else round(self.value)


_NO_MARGIN = Length(0, relative=False)


@dataclass(frozen=True)
class CropMargin:
    """Margin around a cropped subject per side, in pixels or as a percentage of the subject's
    height (top, bottom) or width (left, right). Either way a side gets at most
    MAX_MARGIN_PX: remove.bg's rule ("50% of the subject dimensions or 500 pixels"), so a
    cropped result is at most the subject plus 1000 pixels each way (50% of a 20 MP
    subject's sides made a 73 MP result, priced as one image)."""

    top: Length = _NO_MARGIN
    right: Length = _NO_MARGIN
    bottom: Length = _NO_MARGIN
    left: Length = _NO_MARGIN

    def pixels(self, width: int, height: int) -> tuple[int, int, int, int]:
        """(top, right, bottom, left) in pixels for a subject of the given size, each at most
        MAX_MARGIN_PX."""
        return (
            min(self.top.pixels(height), MAX_MARGIN_PX),
            min(self.right.pixels(width), MAX_MARGIN_PX),
            min(self.bottom.pixels(height), MAX_MARGIN_PX),
            min(self.left.pixels(width), MAX_MARGIN_PX),
        )


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
    """Hex colour (3, 4, 6 or 8 digits, '#' optional; 4 and 8 carry opacity) or a CSS colour
    name, as remove.bg takes them."""
    named = CSS_COLORS.get(value.strip().lower())
    if named is not None:
        return named
    match = _HEX_RE.match(value.strip())
    if match is None:
        raise OptionError(
            "invalid_bg_color",
            f"{value!r} is not a colour; use hex like '81d4fa' or 'fff', with opacity like "
            "'81d4fa77' or 'fff8', or a CSS colour name such as 'lightblue'.",
        )
    return _hex_rgba(match.group(1))


def parse_crop_margin(value: str | int) -> CropMargin:
    """One margin for all sides, two (top and bottom, left and right) or four (top, right,
    bottom, left), as CSS and remove.bg order them. '30', '30px' or 30 are pixels; '10%' is
    relative to the subject's size."""
    text = str(value).strip()
    parts = _MARGIN_RE.findall(text) if _MARGINS_RE.fullmatch(text) else []
    if len(parts) not in (1, 2, 4):
        raise OptionError(
            "invalid_crop_margin",
            f"{value!r} is not a margin; use '30px' or '10%' for every side, '10px 20px' for "
            "top and bottom, then left and right, or '10px 20px 30px 40px' for top, right, "
            "bottom and left.",
        )
    sides = [Length(float(amount), unit == "%") for amount, unit in parts]
    for side in sides:
        limit = MAX_MARGIN_PERCENT if side.relative else MAX_MARGIN_PX
        if side.value > limit:
            unit = "%" if side.relative else "px"
            raise OptionError(
                "invalid_crop_margin", f"The crop margin may be at most {limit:g}{unit} per side."
            )
    if len(sides) == 1:
        return CropMargin(*sides * 4)
    if len(sides) == 2:
        return CropMargin(*sides * 2)
    return CropMargin(*sides)


def foreground_box(alpha: NDArray[np.uint8] | NDArray[np.float32]) -> Box:
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
    m_top, m_right, m_bottom, m_left = margin.pixels(width, height)
    return rgba.crop((left - m_left, top - m_top, left + width + m_right, top + height + m_bottom))


def fitted_size(width: int, height: int, budget: int | None) -> tuple[int, int]:
    """The size `fit_pixels` gives an image of width x height."""
    if budget is None or width * height <= budget:
        return width, height
    scale = math.sqrt(budget / (width * height))
    return max(1, math.floor(width * scale)), max(1, math.floor(height * scale))


def fit_pixels(image: Image.Image, budget: int | None) -> Image.Image:
    """Downscale, keeping the aspect ratio, so width * height <= budget; never upscale."""
    size = fitted_size(image.width, image.height, budget)
    if size == image.size:
        return image
    return image.resize(size, Image.Resampling.LANCZOS)


def flatten(rgba: Image.Image, color: RGBA) -> Image.Image:
    """Put the cutout on a solid colour; opaque colours give RGB, translucent ones RGBA."""
    composed = Image.alpha_composite(Image.new("RGBA", rgba.size, color), rgba)
    return composed.convert("RGB") if color[3] == 255 else composed


def keep_roi(rgba: Image.Image, roi: Roi) -> Image.Image:
    """Clear the alpha outside the region of interest. A region that keeps nothing of the
    subject (beside it, or past the photo's edge) is a photo without a subject, as remove.bg
    looks for one only inside `roi`: ImageError `unknown_foreground`, so a job fails free of
    charge rather than making a blank image."""
    x1, y1, x2, y2 = roi.box(*rgba.size)
    alpha = Image.new("L", rgba.size, 0)
    if x2 > x1 and y2 > y1:
        alpha.paste(rgba.getchannel("A").crop((x1, y1, x2, y2)), (x1, y1))
    if foreground_box(np.asarray(alpha))[2] == 0:
        width, height = rgba.size
        left, top = roi.x1.pixels(width), roi.y1.pixels(height)
        right, bottom = roi.x2.pixels(width), roi.y2.pixels(height)
        raise ImageError(
            "unknown_foreground",
            f"No part of the subject lies inside the roi ({left}, {top}) to ({right}, {bottom}) "
            f"px of this {width}x{height} photo. Widen the region, or leave roi out.",
        )
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


@dataclass(frozen=True)
class Composed:
    """A finished result and where its subject lies in it (X-Foreground-*)."""

    image: Image.Image
    foreground: Box


def compose_result(
    rgba: Image.Image, options: ComposeOptions, bg_image: Image.Image | None = None
) -> Composed:
    """Apply roi, crop, scale/position, shadow, size, then the background (a colour, or an
    image scaled to cover the result) or alpha-only output to an RGBA cutout.

    The subject's box is taken once it is in place, before a shadow or an opaque background
    hides its outline, and then scaled with the result. A cutout tagged with a colour profile
    stays in its colours and keeps the profile; what is put behind it is converted into them
    (a colour as asked for, in sRGB as CSS means it; an image from its own profile or sRGB)."""
    profile = rgb_profile(rgba)
    result = keep_roi(rgba, options.roi) if options.roi is not None else rgba
    result = crop_to_subject(result, options.crop_margin) if options.crop else result
    result = place_subject(result, options.scale, options.position)
    box = foreground_box(np.asarray(result.getchannel("A")))
    if options.add_shadow and options.channels != "alpha":
        result = add_drop_shadow(result)
    sized = fit_pixels(result, SIZE_BUDGETS[options.size])
    box = _scale_box(box, result.size, sized.size)
    if options.channels == "alpha":
        return Composed(sized.getchannel("A"), box)
    if bg_image is not None:
        backdrop = convert_colours(bg_image.convert("RGB"), rgb_profile(bg_image), profile)
        composed = Image.alpha_composite(cover(backdrop, sized.size), sized).convert("RGB")
    elif options.bg_color is not None:
        composed = flatten(sized, _colour_in(options.bg_color, profile))
    else:
        composed = sized
    if profile is not None:
        composed.info["icc_profile"] = profile  # a new canvas (scale, shadow, colour) had none
    return Composed(composed, box)


def _colour_in(color: RGBA, profile: bytes | None) -> RGBA:
    """An sRGB colour in the colours of ``profile`` (None: sRGB), its alpha as it was."""
    if profile is None:
        return color
    swatch = convert_colours(Image.new("RGB", (1, 1), color[:3]), None, profile)
    red, green, blue = swatch.getpixel((0, 0))  # type: ignore[misc]
    return red, green, blue, color[3]


def _scale_box(box: Box, source: tuple[int, int], target: tuple[int, int]) -> Box:
    """A box on an image of size `source`, on that image resized to `target`."""
    left, top, width, height = box
    if width == 0 or source == target:
        return box
    sx, sy = target[0] / source[0], target[1] / source[1]
    x0, y0 = round(left * sx), round(top * sy)
    x1 = min(target[0], max(x0 + 1, round((left + width) * sx)))
    y1 = min(target[1], max(y0 + 1, round((top + height) * sy)))
    return x0, y0, x1 - x0, y1 - y0


def color_alpha_zip(image: Image.Image, *, quality: int = 90) -> bytes:
    """remove.bg's `zip` format: `color.jpg` (the colours, no alpha) and `alpha.png` (the
    matte), smaller than an RGBA PNG and easy to composite elsewhere. Both are written as
    every result is (`encode_image`): the colours with their profile, no other metadata."""
    check_output_side("jpg", image.width, image.height, what=_ZIP_WHAT)
    rgba = image.convert("RGBA")
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("color.jpg", encode_image(rgba.convert("RGB"), "jpg", quality=quality))
        archive.writestr("alpha.png", encode_image(rgba.getchannel("A"), "png"))
    return out.getvalue()


# Sizes with a pixel budget, largest first: what a refusal suggests when a smaller result
# would fit the format.
_SMALLER_SIZES = ("50MP", "4k", "hd", "medium", "preview")
_ZIP_WHAT = "The zip format's color.jpg"


def largest_result(width: int, height: int, options: ComposeOptions) -> tuple[int, int]:
    """The widest and the tallest `compose_result` can make the cutout of a width x height
    photo with `options`, known before the model runs. Exact without `crop` (roi, scale,
    position, shadow and backgrounds keep the canvas; `size` only shrinks it); with `crop`
    the subject's box is not known yet: the bound is the whole photo with its margins (a
    percentage of it, at most MAX_MARGIN_PX a side, as `crop_to_subject` adds them), and
    the narrowest crop (a one-pixel subject and its pixel margins, or the photo where it
    finds no subject) for how little a size budget may shrink it."""
    budget = SIZE_BUDGETS[options.size]
    if not options.crop:
        return fitted_size(width, height, budget)
    margin = options.crop_margin
    top, right, bottom, left = margin.pixels(width, height)
    # A margin in percent of the subject adds nothing to a one-pixel subject; a photo without
    # a subject is not cropped at all.
    m_top, m_right, m_bottom, m_left = (
        0 if side.relative else side.pixels(0)
        for side in (margin.top, margin.right, margin.bottom, margin.left)
    )
    narrow = min(width, 1 + m_left + m_right)
    short = min(height, 1 + m_top + m_bottom)
    wide, tall = width + left + right, height + top + bottom
    return fitted_size(wide, short, budget)[0], fitted_size(narrow, tall, budget)[1]


def most_pixels(width: int, height: int, options: ComposeOptions) -> int:
    """The most pixels `compose_result` can give the cutout of a width x height photo with
    `options`, known before the model runs (what a job is priced by until its result is
    known): exact without `crop`; with `crop` the whole photo with its margins (a percentage
    of it, at most MAX_MARGIN_PX a side), fitted to the size's budget."""
    budget = SIZE_BUDGETS[options.size]
    if options.crop:
        top, right, bottom, left = options.crop_margin.pixels(width, height)
        width, height = width + left + right, height + top + bottom
    fitted = fitted_size(width, height, budget)
    return fitted[0] * fitted[1]


def check_result_format(width: int, height: int, options: ComposeOptions, fmt: str) -> None:
    """Raise ``output_too_large`` (engine.io) when the cutout of a width x height photo,
    finished with `options`, could be too large for `fmt` (png, jpg, webp, zip: whose
    color.jpg is a JPEG; `auto` picks PNG where JPEG cannot hold the result). Naming the
    largest `size` that would fit, where one does."""
    target = "jpg" if fmt == "zip" else fmt
    result = largest_result(width, height, options)
    if target not in ("jpg", "webp") or fits_format(target, *result):
        return
    hint = ""
    for name in _SMALLER_SIZES:
        if fits_format(target, *largest_result(width, height, replace(options, size=name))):
            hint = f", or size '{name}'"
            break
    check_output_side(
        target,
        *result,
        hint=hint,
        what=_ZIP_WHAT if fmt == "zip" else None,
        bound=options.crop,
    )
