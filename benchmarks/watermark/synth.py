"""Synthetic visible watermarks for the watermark-removal benchmark and tests.

A watermark is an alpha map ``alpha`` (HxW, float32 in [0, 1]) and a colour map ``color``
(HxWx3, float32 in [0, 255]); the watermarked image is ``J = (1 - alpha) * I + alpha * color``.
Stacked layers (text over its drop shadow) are folded into one (alpha, color) pair, which is
exactly how they composite.

Kinds: ``text`` (Latin, corner or bottom), ``cjk`` (Chinese handles/notices, corner),
``tiled`` (diagonal text repeated over the whole image) and ``logo`` (ring + disc + word in a
colour, centre or corner). Opacity 0.2-0.8 (tiled: 0.2-0.5), optional drop shadow.

``scene`` is the opposite case: opaque text that belongs to the photo (a shop sign, a
product label, often on a painted panel), anywhere including the corners. It is drawn with
the same blend (opacity 1), and a remover must leave it alone.

Fonts: DejaVu Sans Bold (Debian ``fonts-dejavu-core``) for Latin and WenQuanYi Zen Hei
(Debian ``fonts-wqy-zenhei``) for CJK. Without the CJK font the ``cjk`` kind falls back to
Latin text and says so through ``cjk_font_available()``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

KINDS = ("text", "cjk", "tiled", "logo")

_LATIN_FONTS = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf",
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
)
_CJK_FONTS = (
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
)
_LATIN_TEXTS = (
    "© PhotoStock 2024",
    "SAMPLE",
    "www.pixelmarket.com",
    "@lens_and_light",
    "PREVIEW ONLY",
    "© Jane Doe Photography",
    "imagebank",
)
_CJK_TEXTS = (
    "@摄影师小王",
    "小红书号：1234567",  # noqa: RUF001 - the full-width colon is what such handles use
    "版权所有 禁止转载",
    "抖音 @风景日记",
    "微博 光影工作室",
    "样图 仅供预览",
)
_TILE_TEXTS = ("SAMPLE", "PREVIEW", "© stockfoto", "样图", "DRAFT", "imagebank")
_LOGO_WORDS = ("LUMA", "Foto", "PIX", "光影", "ACME")
_SCENE_TEXTS = ("SALE 50%", "OPEN", "Café Roma", "No Parking", "EXIT", "生鲜超市", "出口", "营业中")


def _first_existing(paths: tuple[str, ...]) -> str | None:
    for p in paths:
        if Path(p).exists():
            return p
    return None


def cjk_font_available() -> bool:
    return _first_existing(_CJK_FONTS) is not None


def _font(size: int, cjk: bool) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    path = _first_existing(_CJK_FONTS) if cjk else None
    if path is None:
        path = _first_existing(_LATIN_FONTS)
    if path is None:
        return ImageFont.load_default(size=size)
    return ImageFont.truetype(path, size=size)


@dataclass
class Watermark:
    kind: str
    alpha: np.ndarray  # HxW float32 in [0, 1]
    color: np.ndarray  # HxWx3 float32 in [0, 255]
    text: str

    def apply(self, image: np.ndarray) -> np.ndarray:
        """Blend onto an HxWx3 uint8 image; returns uint8."""
        a = self.alpha[..., None]
        out = (1.0 - a) * image.astype(np.float32) + a * self.color
        return np.clip(np.rint(out), 0, 255).astype(np.uint8)

    def region(self, threshold: float = 0.01) -> np.ndarray:
        """Pixels the watermark touches (alpha above ``threshold``)."""
        return np.asarray(self.alpha > threshold)


def _over(
    alpha: np.ndarray, premult: np.ndarray, layer_a: np.ndarray, layer_rgb: tuple[int, int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """Composite a constant-colour layer over the accumulated (alpha, alpha*colour)."""
    la = layer_a[..., None]
    col = np.array(layer_rgb, np.float32)[None, None, :]
    new_premult = (1.0 - la) * premult + la * col
    new_alpha = 1.0 - (1.0 - alpha) * (1.0 - layer_a)
    return new_alpha, new_premult


def _text_mask(
    size: tuple[int, int],
    text: str,
    font: ImageFont.FreeTypeFont | ImageFont.ImageFont,
    xy: tuple[int, int],
) -> np.ndarray:
    m = Image.new("L", size, 0)
    ImageDraw.Draw(m).text(xy, text, fill=255, font=font)
    return np.asarray(m, np.float32) / 255.0


def _shifted(mask: np.ndarray, dx: int, dy: int, blur: float) -> np.ndarray:
    out = np.zeros_like(mask)
    h, w = mask.shape
    out[max(dy, 0) : h + min(dy, 0), max(dx, 0) : w + min(dx, 0)] = mask[
        max(-dy, 0) : h + min(-dy, 0), max(-dx, 0) : w + min(-dx, 0)
    ]
    if blur > 0:
        im = Image.fromarray(np.clip(out * 255, 0, 255).astype(np.uint8))
        out = np.asarray(im.filter(ImageFilter.GaussianBlur(blur)), np.float32) / 255.0
    return out


def _text_bbox(
    text: str, font: ImageFont.FreeTypeFont | ImageFont.ImageFont
) -> tuple[int, int, int, int]:
    d = ImageDraw.Draw(Image.new("L", (1, 1)))
    x0, y0, x1, y1 = d.textbbox((0, 0), text, font=font)
    return int(x0), int(y0), int(x1), int(y1)


def make_watermark(
    rng: np.random.Generator, height: int, width: int, kind: str | None = None
) -> Watermark:
    """Draw one random watermark of ``kind`` (random kind when None) for an image of this size."""
    if kind is None:
        kind = str(rng.choice(KINDS))
    size = (width, height)
    short = min(height, width)
    alpha = np.zeros((height, width), np.float32)
    premult = np.zeros((height, width, 3), np.float32)
    shadow = bool(rng.random() < 0.35) and kind != "tiled"
    light = bool(rng.random() < 0.75)
    base = (255, 255, 255) if light else (int(rng.integers(0, 60)),) * 3
    opacity = float(rng.uniform(0.2, 0.5 if kind == "tiled" else 0.8))

    if kind in ("text", "cjk"):
        cjk = kind == "cjk"
        texts = _CJK_TEXTS if cjk else _LATIN_TEXTS
        text = str(texts[int(rng.integers(len(texts)))])
        fsize = int(short * rng.uniform(0.06, 0.11))
        font = _font(fsize, cjk)
        x0, y0, x1, y1 = _text_bbox(text, font)
        tw, th = x1 - x0, y1 - y0
        while tw > width * 0.9 and fsize > 10:
            fsize = int(fsize * 0.85)
            font = _font(fsize, cjk)
            x0, y0, x1, y1 = _text_bbox(text, font)
            tw, th = x1 - x0, y1 - y0
        margin = int(short * 0.04)
        place = str(rng.choice(("br", "bl", "tr", "tl", "bc")))
        x = {"l": margin, "r": width - margin - tw, "c": (width - tw) // 2}[place[1]]
        y = margin if place[0] == "t" else height - margin - th
        if place == "bc":
            x = (width - tw) // 2
        m = _text_mask(size, text, font, (x - x0, y - y0))
        if shadow:
            off = max(1, fsize // 14)
            sh = _shifted(m, off, off, blur=max(0.6, off / 2))
            alpha, premult = _over(alpha, premult, sh * opacity * 0.6, (0, 0, 0))
        alpha, premult = _over(alpha, premult, m * opacity, base)
    elif kind == "tiled":
        text = str(_TILE_TEXTS[int(rng.integers(len(_TILE_TEXTS)))])
        fsize = int(short * rng.uniform(0.06, 0.1))
        font = _font(fsize, any(ord(c) > 0x2E80 for c in text))
        angle = float(rng.uniform(20, 40))
        x0, y0, x1, y1 = _text_bbox(text, font)
        tw, th = x1 - x0, y1 - y0
        diag = int(math.hypot(height, width)) + 2 * tw
        big = Image.new("L", (diag, diag), 0)
        d = ImageDraw.Draw(big)
        step_x = int(tw * rng.uniform(1.5, 2.2))
        step_y = int(th * rng.uniform(3.0, 4.5))
        for row, yy in enumerate(range(0, diag, step_y)):
            shift = (row % 2) * step_x // 2
            for xx in range(-step_x, diag, step_x):
                d.text((xx + shift - x0, yy - y0), text, fill=255, font=font)
        big = big.rotate(angle, resample=Image.Resampling.BILINEAR)
        left = (diag - width) // 2
        top = (diag - height) // 2
        crop = big.crop((left, top, left + width, top + height))
        m = np.asarray(crop, np.float32) / 255.0
        alpha, premult = _over(alpha, premult, m * opacity, base)
    elif kind == "logo":
        word = str(_LOGO_WORDS[int(rng.integers(len(_LOGO_WORDS)))])
        text = word
        hue = rng.uniform(0, 1)
        rgb = _hsv_to_rgb(hue, float(rng.uniform(0.5, 1.0)), float(rng.uniform(0.7, 1.0)))
        if rng.random() < 0.3:
            rgb = base
        r = int(short * rng.uniform(0.12, 0.2))
        if rng.random() < 0.5:
            cx, cy = width // 2, height // 2
        else:
            cx = int(rng.choice((r + 10, width - r - 10)))
            cy = int(rng.choice((r + 10, height - r - 10)))
        m_img = Image.new("L", size, 0)
        d = ImageDraw.Draw(m_img)
        ring = max(2, r // 7)
        d.ellipse((cx - r, cy - r, cx + r, cy + r), outline=255, width=ring)
        font = _font(max(10, int(r * 0.55)), any(ord(c) > 0x2E80 for c in word))
        x0, y0, x1, y1 = _text_bbox(word, font)
        d.text((cx - (x1 - x0) // 2 - x0, cy - (y1 - y0) // 2 - y0), word, fill=255, font=font)
        # supersampled look: a slight blur gives antialiased edges like a rendered logo
        m_img = m_img.filter(ImageFilter.GaussianBlur(0.5))
        m = np.asarray(m_img, np.float32) / 255.0
        # a faint filled disc behind the ring
        disc = Image.new("L", size, 0)
        ImageDraw.Draw(disc).ellipse((cx - r, cy - r, cx + r, cy + r), fill=255)
        dm = np.asarray(disc.filter(ImageFilter.GaussianBlur(0.5)), np.float32) / 255.0
        if rng.random() < 0.5:
            alpha, premult = _over(alpha, premult, dm * opacity * 0.35, rgb)
        if shadow:
            sh = _shifted(m, 2, 2, blur=1.0)
            alpha, premult = _over(alpha, premult, sh * opacity * 0.5, (0, 0, 0))
        alpha, premult = _over(alpha, premult, m * opacity, rgb)
    elif kind == "scene":
        text = str(_SCENE_TEXTS[int(rng.integers(len(_SCENE_TEXTS)))])
        cjk = any(ord(c) > 0x2E80 for c in text)
        font = _font(int(short * rng.uniform(0.06, 0.12)), cjk)
        x0, y0, x1, y1 = _text_bbox(text, font)
        tw, th = x1 - x0, y1 - y0
        pad = max(2, th // 3)
        x = int(rng.integers(pad, max(pad + 1, width - tw - pad)))
        y = int(rng.integers(pad, max(pad + 1, height - th - pad)))
        ink = _hsv_to_rgb(
            float(rng.uniform(0, 1)), float(rng.uniform(0, 1)), float(rng.uniform(0, 1))
        )
        if rng.random() < 0.5:  # a painted panel behind the letters
            panel = np.zeros((height, width), np.float32)
            panel[max(0, y - pad) : y + th + pad, max(0, x - pad) : x + tw + pad] = 1.0
            paint = tuple(255 - c for c in ink)
            alpha, premult = _over(alpha, premult, panel, (paint[0], paint[1], paint[2]))
        alpha, premult = _over(alpha, premult, _text_mask(size, text, font, (x - x0, y - y0)), ink)
    else:
        raise ValueError(f"unknown watermark kind {kind!r}")

    safe = np.maximum(alpha, 1e-6)[..., None]
    color = np.where(alpha[..., None] > 0, premult / safe, 0.0).astype(np.float32)
    return Watermark(kind=kind, alpha=alpha.astype(np.float32), color=color, text=text)


# Marks as people commonly put them on photos, fixed rather than drawn at random: one bold
# word across the middle, a faint one, a credit line in a corner (light or dark), a Chinese
# notice. (text, font size as a share of the short side, placement, grey level, opacity)
COMMON_STYLES: dict[str, tuple[str, float, str, int, float]] = {
    "bold": ("SAMPLE ©", 0.144, "middle", 255, 0.5),
    "faint": ("PREVIEW", 0.16, "middle", 255, 0.3),
    "credit": ("© Jane Doe 2025", 0.072, "corner", 255, 0.7),
    "dark": ("© Jane Doe 2025", 0.072, "corner", 0, 0.5),
    "notice": ("版权所有 禁止转载", 0.112, "middle", 255, 0.5),
}


def make_common_mark(style: str, height: int, width: int) -> Watermark:
    """The mark of one of COMMON_STYLES on an image of this size (no randomness): the middle
    of the photo, or 10 px in from its lower right corner."""
    text, share, place, grey, opacity = COMMON_STYLES[style]
    font = _font(max(10, int(share * min(height, width))), any(ord(c) > 0x2E80 for c in text))
    layer = Image.new("L", (width, height), 0)
    if place == "middle":
        at, anchor = (width / 2, height / 2), "mm"
    else:
        at, anchor = (width - 10, height - 10), "rd"
    ImageDraw.Draw(layer).text(at, text, font=font, fill=255, anchor=anchor)
    alpha = np.asarray(layer, np.float32) / 255.0 * opacity
    color = np.where(alpha[..., None] > 0, float(grey), 0.0).astype(np.float32)
    color = np.broadcast_to(color, (height, width, 3)).copy()
    return Watermark(kind=style, alpha=alpha, color=color, text=text)


def _hsv_to_rgb(h: float, s: float, v: float) -> tuple[int, int, int]:
    i = int(h * 6) % 6
    f = h * 6 - int(h * 6)
    p, q, t = v * (1 - s), v * (1 - f * s), v * (1 - (1 - f) * s)
    r, g, b = [(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)][i]
    return int(r * 255), int(g * 255), int(b * 255)
