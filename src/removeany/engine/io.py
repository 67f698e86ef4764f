"""Safe image decoding and encoding: uploads are untrusted, so every limit is checked early."""

from __future__ import annotations

import io
import struct
import zlib
from typing import Literal

import numpy as np
from PIL import Image, ImageFile, ImageOps

from removeany.engine.errors import ImageError

OutputFormat = Literal["png", "jpg", "webp"]

# Magic numbers of the formats we accept, mapped to Pillow's plugin names. The content decides,
# never the file name.
_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"\xff\xd8\xff", "JPEG"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"BM", "BMP"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
)
_HIGH_BIT_MODES = frozenset({"I", "I;16", "I;16B", "I;16L", "I;16N", "F"})
_WEBP_MAX_SIDE = 16383


def sniff_format(data: bytes) -> str | None:
    """Return Pillow's format name for the bytes' signature, or None if we do not accept it."""
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    for magic, name in _SIGNATURES:
        if data.startswith(magic):
            return name
    return None


def decode_image(data: bytes, *, max_bytes: int, max_pixels: int) -> Image.Image:
    """Decode untrusted bytes into an upright RGB or RGBA image, or raise ``ImageError``.

    The pixel count is checked from the header before any pixel is decoded, so decompression
    bombs are refused without allocating them. Pillow's own global bomb check is bypassed by
    calling the format plugin directly, because our per-call ``max_pixels`` replaces it and
    changing ``Image.MAX_IMAGE_PIXELS`` would not be thread-safe.
    """
    if len(data) > max_bytes:
        raise ImageError(
            "file_too_large",
            f"The file is {len(data):,} bytes; upload an image of at most {max_bytes:,} bytes.",
        )
    fmt = sniff_format(data)
    if fmt is None:
        raise ImageError(
            "unsupported_format",
            "The file is not a supported image; upload a PNG, JPEG, WebP, GIF, BMP or TIFF image.",
        )
    im = _open_header(data, fmt)
    width, height = im.size
    if width < 1 or height < 1:
        raise ImageError("corrupt_image", "The image has no pixels; upload a different file.")
    if width * height > max_pixels:
        raise ImageError(
            "too_many_pixels",
            f"The image is {width}x{height} pixels; upload one of at most "
            f"{max_pixels:,} pixels (resize it first).",
        )
    try:
        im.load()
        ImageOps.exif_transpose(im, in_place=True)
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, struct.error) as exc:
        raise _corrupt() from exc
    try:
        return _to_rgb_or_rgba(im)
    except ValueError as exc:
        raise ImageError(
            "unsupported_format",
            f"Images in the {im.mode} colour mode are not supported; save it as RGB.",
        ) from exc


def declared_pixels(data: bytes) -> int:
    """Width x height as the header declares it, without decoding a pixel (nor Pillow's global
    bomb check); 0 when the bytes are no supported image or the header is unreadable."""
    fmt = sniff_format(data)
    if fmt is None:
        return 0
    try:
        width, height = _open_header(data, fmt).size
    except ImageError:
        return 0
    return width * height


def _open_header(data: bytes, fmt: str) -> ImageFile.ImageFile:
    """Parse only the header with the sniffed format's plugin."""
    Image.init()
    factory = Image.OPEN[fmt][0]
    try:
        return factory(io.BytesIO(data), "")
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, struct.error) as exc:
        raise _corrupt() from exc


def _corrupt() -> ImageError:
    return ImageError(
        "corrupt_image",
        "The image is damaged or truncated and cannot be decoded; upload the file again "
        "or export it anew.",
    )


def _to_rgb_or_rgba(im: Image.Image) -> Image.Image:
    """Normalise every decoded mode to 8-bit RGB, or RGBA when the image has transparency."""
    if im.mode in _HIGH_BIT_MODES:
        values = np.asarray(im, dtype=np.float32)
        if values.max(initial=0.0) > 255:
            values = values / 257.0  # 16-bit samples; 65535 / 257 == 255
        gray = Image.fromarray(np.clip(values, 0, 255).astype(np.uint8))
        return gray.convert("RGB")
    has_alpha = im.mode in ("RGBA", "LA", "PA", "La", "RGBa") or "transparency" in im.info
    if has_alpha:
        return im if im.mode == "RGBA" else im.convert("RGBA")
    return im if im.mode == "RGB" else im.convert("RGB")


# PNG results: zlib's run-length strategy after PNG's per-row filters, which find little for
# LZ77 to match in a photo. Measured on 4 Dec 2026 (10 object-set cut-outs, 0.4 MP RGBA): 41 ms
# and 777 KB, against 64 ms and 863 KB with zlib's default strategy at level 3 and 207 ms and
# 784 KB at Pillow's default level 6. Alpha mattes and cut-outs on a colour shrink too; plain
# photos come out 4 % larger than at level 6, in a quarter of the time.
PNG_COMPRESS_LEVEL = 3
PNG_ZLIB_STRATEGY = zlib.Z_RLE


def encode_image(
    img: Image.Image,
    fmt: OutputFormat,
    *,
    quality: int = 90,
    background: tuple[int, int, int] = (255, 255, 255),
    exif: bytes | None = None,
) -> bytes:
    """Encode without metadata other than the colour profile (EXIF may hold location data),
    unless the caller passes the ``exif`` block to keep (the owner asked for it).

    JPEG has no alpha, so transparent images are flattened onto ``background``; grey ones stay
    grey.
    """
    clean = img.copy()
    icc_profile = img.info.get("icc_profile")
    clean.info = {}
    if fmt == "jpg" and clean.mode not in ("RGB", "L"):
        rgba = clean.convert("RGBA")
        flat = Image.new("RGB", rgba.size, background)
        flat.paste(rgba, mask=rgba.getchannel("A"))
        clean = flat
    if fmt == "webp" and max(clean.size) > _WEBP_MAX_SIDE:
        raise ImageError(
            "too_many_pixels",
            f"WebP output is limited to {_WEBP_MAX_SIDE} pixels per side; "
            "choose PNG or a smaller size.",
        )
    out = io.BytesIO()
    extra: dict[str, bytes] = {"exif": exif} if exif else {}
    if fmt == "png":
        clean.save(
            out,
            "PNG",
            icc_profile=icc_profile,
            compress_level=PNG_COMPRESS_LEVEL,
            compress_type=PNG_ZLIB_STRATEGY,
            **extra,
        )
    elif fmt == "jpg":
        clean.save(out, "JPEG", quality=quality, icc_profile=icc_profile, **extra)
    else:
        clean.save(out, "WEBP", quality=quality, icc_profile=icc_profile, **extra)
    return out.getvalue()
