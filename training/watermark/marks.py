"""Training samples for the watermark-opacity network: a photo crop with a random mark on it.

The marks are drawn by this module's own generator, not by the benchmark's
(``benchmarks/watermark/synth.py``): random strings rather than the benchmark's fixed texts,
eight fonts, rotation, outlines, several lines, shapes instead of its one ring logo, colours and
opacities over a wider range. The network must learn what an alpha-blended mark looks like,
not the benchmark's marks.

A sample is ``(marked, alpha, color, clean)``: the blend ``marked = (1 - alpha) clean +
alpha color``, all HxW(x3) float32 (pixels 0..1). Opaque text drawn into the photo first (a
sign, a label) is part of ``clean``: the network must leave it alone.
"""

from __future__ import annotations

import io
import math
import string
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

LATIN = string.ascii_letters + string.digits
SYMBOLS = "©@._-:/ |®™#&"
WORDS = (
    "www.{}.com",
    "© {} {}",
    "@{}",
    "{} photography",
    "{}.net",
    "{} studio",
    "sample",
    "preview",
    "{}",
    "{} {}",
    "watermark",
    "copyright {}",
)
# GB2312's first level: common characters every CJK font here has.
CJK_FIRST, CJK_LAST = 0x4E00, 0x9FA5


def load_photos(folder: Path, long_side: int) -> list[np.ndarray]:
    photos = []
    for path in sorted(folder.glob("*.jpg")):
        im = Image.open(path).convert("RGB")
        im.thumbnail((long_side, long_side), Image.Resampling.LANCZOS)
        photos.append(np.asarray(im))
    return photos


def load_fonts(folder: Path) -> tuple[list[Path], list[Path]]:
    """Latin fonts and CJK fonts found in ``folder`` (``*.ttf`` and ``*.ttc``)."""
    fonts = sorted(folder.glob("*.tt[fc]"))
    cjk = [f for f in fonts if "wqy" in f.name.lower() or "cjk" in f.name.lower()]
    return [f for f in fonts if f not in cjk], cjk


class MarkMaker:
    """Draws random samples; one instance per worker process (fonts are cached)."""

    def __init__(
        self,
        photos: list[np.ndarray],
        latin: list[Path],
        cjk: list[Path],
        size: int,
        blank: float = 0.1,
    ):
        """``blank``: the share of samples with no mark at all."""
        self.photos = photos
        self.blank = blank
        self.latin = latin
        self.cjk = cjk
        self.size = size
        self._fonts: dict[tuple[Path, int], ImageFont.FreeTypeFont] = {}

    def font(self, path: Path, px: int) -> ImageFont.FreeTypeFont:
        key = (path, px)
        if key not in self._fonts:
            self._fonts[key] = ImageFont.truetype(str(path), px)
        return self._fonts[key]

    # -- pieces -----------------------------------------------------------------------------

    def crop(self, rng: np.random.Generator) -> np.ndarray:
        photo = self.photos[int(rng.integers(len(self.photos)))]
        h, w = photo.shape[:2]
        s = self.size
        scale = rng.uniform(max(s / min(h, w), 0.35), 1.0)
        side = math.ceil(s / scale)
        y = int(rng.integers(0, h - side + 1))
        x = int(rng.integers(0, w - side + 1))
        im = Image.fromarray(photo[y : y + side, x : x + side]).resize(
            (s, s), Image.Resampling.BILINEAR
        )
        out = np.asarray(im, np.float32) / 255.0
        if rng.random() < 0.5:
            out = out[:, ::-1]
        out = np.rot90(out, int(rng.integers(4)))
        gain = rng.uniform(0.7, 1.2)
        gamma = rng.uniform(0.7, 1.4)
        return np.ascontiguousarray(np.clip(out * gain, 0, 1) ** gamma, dtype=np.float32)

    def text(self, rng: np.random.Generator) -> tuple[str, bool]:
        if rng.random() < 0.25 and self.cjk:
            n = int(rng.integers(2, 9))
            chars = "".join(chr(int(rng.integers(CJK_FIRST, CJK_LAST))) for _ in range(n))
            return (("@" if rng.random() < 0.3 else "") + chars), True

        def word() -> str:
            n = int(rng.integers(3, 11))
            w = "".join(LATIN[int(rng.integers(len(LATIN)))] for _ in range(n))
            return w.upper() if rng.random() < 0.3 else w.lower() if rng.random() < 0.5 else w

        pattern = WORDS[int(rng.integers(len(WORDS)))]
        out = pattern.format(*(word() for _ in range(pattern.count("{}"))))
        if rng.random() < 0.15:
            out += " " + SYMBOLS[int(rng.integers(len(SYMBOLS)))] + " " + word()
        return out, False

    def colour(self, rng: np.random.Generator) -> tuple[float, float, float]:
        r = rng.random()
        if r < 0.45:
            v = rng.uniform(0.85, 1.0)
            return (v, v, v)
        if r < 0.65:
            v = rng.uniform(0.0, 0.25)
            return (v, v, v)
        if r < 0.75:
            v = rng.uniform(0.3, 0.7)
            return (v, v, v)
        return tuple(float(c) for c in rng.uniform(0, 1, 3))

    def text_layer(self, rng: np.random.Generator, tiled: bool) -> np.ndarray:
        """Coverage 0..1 of one text mark (lines of text, or a tiled pattern)."""
        s = self.size
        words, cjk = self.text(rng)
        fonts = self.cjk if cjk else self.latin
        path = fonts[int(rng.integers(len(fonts)))]
        px = int(rng.uniform(11, 56 if tiled else 96))
        font = self.font(path, px)
        stroke = int(rng.integers(1, 3)) if rng.random() < 0.15 else 0
        big = 2 * s
        layer = Image.new("L", (big, big), 0)
        draw = ImageDraw.Draw(layer)
        x0, y0, x1, y1 = draw.textbbox((0, 0), words, font=font, stroke_width=stroke)
        tw, th = max(1, x1 - x0), max(1, y1 - y0)
        if tiled:
            step_x = int(tw * rng.uniform(1.2, 2.5))
            step_y = int(th * rng.uniform(2.0, 5.0))
            for row, yy in enumerate(range(0, big, step_y)):
                shift = (row % 2) * step_x // 2
                for xx in range(-step_x, big, step_x):
                    draw.text((xx + shift - x0, yy - y0), words, fill=255, font=font)
            angle = rng.uniform(-45, 45)
        else:
            lines = int(rng.choice((1, 1, 1, 2, 3)))
            cx, cy = big // 2 - tw // 2, big // 2 - lines * th // 2
            for i in range(lines):
                draw.text(
                    (cx - x0, cy + int(i * th * 1.3) - y0),
                    words,
                    fill=255,
                    font=font,
                    stroke_width=stroke,
                    stroke_fill=255,
                )
            angle = rng.uniform(-40, 40) if rng.random() < 0.3 else 0.0
        if angle:
            layer = layer.rotate(angle, resample=Image.Resampling.BILINEAR)
        # place the pattern's centre anywhere in the crop, corners and edges more often
        if tiled:
            ox, oy = s // 2, s // 2
        else:
            edge = rng.random() < 0.5
            ox = int(rng.choice((tw // 2 + 4, s - tw // 2 - 4))) if edge else int(rng.integers(s))
            oy = int(rng.integers(s)) if edge else int(rng.choice((th + 4, s - th - 4, s // 2)))
        left, top = big // 2 - ox, big // 2 - oy
        crop = layer.crop((left, top, left + s, top + s))
        return np.asarray(crop, np.float32) / 255.0

    def shape_layer(self, rng: np.random.Generator) -> np.ndarray:
        """Coverage of a logo: rings, boxes, discs and polygons, optionally with a word."""
        s = self.size
        layer = Image.new("L", (s, s), 0)
        draw = ImageDraw.Draw(layer)
        r = int(rng.uniform(15, s * 0.45))
        cx, cy = int(rng.integers(s)), int(rng.integers(s))
        box = (cx - r, cy - r, cx + r, cy + int(r * rng.uniform(0.5, 1.0)))
        width = int(rng.integers(2, max(3, r // 5)))
        kind = int(rng.integers(4))
        if kind == 0:
            draw.ellipse(box, outline=255, width=width)
        elif kind == 1:
            draw.rounded_rectangle(
                box, radius=int(r * rng.uniform(0, 0.4)), outline=255, width=width
            )
        elif kind == 2:
            draw.ellipse(box, fill=int(rng.uniform(80, 255)))
        else:
            n = int(rng.integers(3, 8))
            pts = [
                (cx + r * math.cos(2 * math.pi * i / n), cy + r * math.sin(2 * math.pi * i / n))
                for i in range(n)
            ]
            draw.polygon(pts, outline=255, width=width)
        if rng.random() < 0.6:
            words, cjk = self.text(rng)
            fonts = self.cjk if cjk else self.latin
            font = self.font(fonts[int(rng.integers(len(fonts)))], max(10, int(r * 0.45)))
            x0, y0, x1, y1 = draw.textbbox((0, 0), words, font=font)
            draw.text(
                (cx - (x1 - x0) // 2 - x0, cy - (y1 - y0) // 2 - y0), words, fill=255, font=font
            )
        return np.asarray(layer.filter(ImageFilter.GaussianBlur(0.5)), np.float32) / 255.0

    # -- a sample ---------------------------------------------------------------------------

    def scene_text(self, rng: np.random.Generator, clean: np.ndarray) -> np.ndarray:
        """Paint opaque text (and maybe its panel) into the photo itself."""
        cover = self.text_layer(rng, tiled=False)
        ink = np.array(rng.uniform(0, 1, 3), np.float32)
        if rng.random() < 0.5:
            ys, xs = np.nonzero(cover > 0.5)
            if len(ys):
                pad = 4
                panel = np.zeros_like(cover)
                panel[
                    max(0, ys.min() - pad) : ys.max() + pad, max(0, xs.min() - pad) : xs.max() + pad
                ] = 1
                clean = clean * (1 - panel[..., None]) + panel[..., None] * (1 - ink)
        return clean * (1 - cover[..., None]) + cover[..., None] * ink

    def sample(self, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
        s = self.size
        clean = self.crop(rng)
        if rng.random() < 0.15:
            clean = self.scene_text(rng, clean)
        alpha = np.zeros((s, s), np.float32)
        premult = np.zeros((s, s, 3), np.float32)
        marks = 0 if rng.random() < self.blank else int(rng.choice((1, 1, 1, 2)))
        for _ in range(marks):
            r = rng.random()
            tiled = r < 0.25
            cover = self.shape_layer(rng) if r > 0.8 else self.text_layer(rng, tiled)
            if rng.random() < 0.2:
                sigma = rng.uniform(0.3, 1.2)
                cover = (
                    np.asarray(
                        Image.fromarray(np.uint8(cover * 255)).filter(
                            ImageFilter.GaussianBlur(sigma)
                        ),
                        np.float32,
                    )
                    / 255.0
                )
            opacity = rng.uniform(0.1, 0.5 if tiled else 0.85)
            colour = np.array(self.colour(rng), np.float32)
            if rng.random() < 0.3:  # a drop shadow under the mark
                off = int(rng.integers(1, 4))
                shadow = np.roll(cover, (off, off), axis=(0, 1))
                shadow = (
                    np.asarray(
                        Image.fromarray(np.uint8(shadow * 255)).filter(
                            ImageFilter.GaussianBlur(off / 2)
                        ),
                        np.float32,
                    )
                    / 255.0
                )
                alpha, premult = _over(
                    alpha,
                    premult,
                    shadow * opacity * rng.uniform(0.3, 0.8),
                    np.zeros(3, np.float32),
                )
            alpha, premult = _over(alpha, premult, cover * opacity, colour)
        color = np.where(alpha[..., None] > 1e-4, premult / np.maximum(alpha, 1e-4)[..., None], 0)
        marked = (1 - alpha[..., None]) * clean + premult
        marked = np.round(marked * 255) / 255
        if rng.random() < 0.25:
            marked = _jpeg(marked, int(rng.integers(75, 96)))
        return (
            marked.astype(np.float32),
            alpha,
            color.astype(np.float32),
            clean.astype(np.float32),
        )


def _over(
    alpha: np.ndarray, premult: np.ndarray, layer: np.ndarray, colour: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    la = layer[..., None]
    return 1 - (1 - alpha) * (1 - layer), (1 - la) * premult + la * colour[None, None, :]


def _jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(np.uint8(np.clip(image, 0, 1) * 255 + 0.5)).save(buf, "JPEG", quality=quality)
    return np.asarray(Image.open(buf), np.float32) / 255.0
