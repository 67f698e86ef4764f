"""Damaged, hostile and unusual image files through the JSON API and the remove.bg endpoint:
each refused one gets a stable code and a sentence saying what to do, costs nothing and
leaves nothing in storage; each unusual but valid one gives a correct result. The files
are real ones, written by Pillow (and by hand where Pillow will not write them).

Found by this audit: a TIFF with a page that has no width or height (a damaged TIFF; Pillow
raises TypeError "Missing dimensions") was a 500 internal_error on every surface, and in a
batch it failed the whole upload instead of skipping that file; a TIFF of many thumbnail
directories held a request for minutes while its pages were counted."""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Callable

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image, ImageDraw

from removeany.context import Context
from removeany.engine.errors import ImageError
from removeany.engine.io import declared_size, decode_image
from tests.batches._ledger import audit
from tests.engine.test_io import tiff_with_thumbnails
from tests.helpers import make_api_key, make_user

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def _photo(size: tuple[int, int] = (160, 120)) -> Image.Image:
    image = Image.new("RGB", size, (235, 235, 235))
    w, h = size
    ImageDraw.Draw(image).ellipse((w // 4, h // 5, w * 3 // 4, h * 4 // 5), fill=(40, 90, 160))
    return image


def _saved(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _png16(samples: np.ndarray, color_type: int) -> bytes:
    """A 16-bit PNG (Pillow writes none but grey): big-endian samples, filter 0 rows."""
    height, width = samples.shape[:2]
    rows = b"".join(b"\0" + samples[y].astype(">u2").tobytes() for y in range(height))
    header = struct.pack(">IIBBBBB", width, height, 16, color_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(rows))
        + _chunk(b"IEND", b"")
    )


def _bomb_png() -> bytes:
    """20,000 x 20,000 one-bit pixels (400 MP) in 48 KB."""
    rows = (b"\0" * (1 + 20000 // 8)) * 20000
    header = struct.pack(">IIBBBBB", 20000, 20000, 1, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(rows, 9))
        + _chunk(b"IEND", b"")
    )


def _tiff_page_without_size(first: bool) -> bytes:
    """A TIFF whose first page, or whose second page, has no ImageWidth / ImageLength."""
    data = bytearray(_saved(_photo(), "TIFF"))
    ifd = struct.unpack_from("<I", data, 4)[0]
    if first:
        count = struct.unpack_from("<H", data, ifd)[0]
        for at in range(ifd + 2, ifd + 2 + 12 * count, 12):
            if struct.unpack_from("<H", data, at)[0] in (256, 257):  # width, length
                struct.pack_into("<H", data, at, 65000)  # an unknown private tag instead
        return bytes(data)
    next_at = ifd + 2 + 12 * struct.unpack_from("<H", data, ifd)[0]
    struct.pack_into("<I", data, next_at, len(data))
    # A second page holding only NewSubfileType = 0 (a page of its own, with no size).
    return bytes(data) + struct.pack("<HHHII", 1, 254, 4, 1, 0) + struct.pack("<I", 0)


def _animated(fmt: str) -> bytes:
    frames = [_photo(), _photo().rotate(180)]
    return _saved(frames[0], fmt, save_all=True, append_images=frames[1:], duration=100)


REFUSED: dict[str, tuple[Callable[[], bytes], str, str]] = {
    # name: (file, our code, remove.bg's code)
    "zero bytes": (lambda: b"", "empty_file", "failed_to_read_image"),
    "truncated PNG": (
        lambda: _saved(_photo(), "PNG")[:300],
        "corrupt_image",
        "failed_to_read_image",
    ),
    "truncated JPEG": (
        lambda: (j := _saved(_photo(), "JPEG"))[: len(j) // 2],
        "corrupt_image",
        "failed_to_read_image",
    ),
    "decompression bomb": (_bomb_png, "too_many_pixels", "resolution_too_high"),
    "animated GIF": (lambda: _animated("GIF"), "animated_image", "invalid_file_type"),
    "animated WebP": (lambda: _animated("WEBP"), "animated_image", "invalid_file_type"),
    "animated PNG": (lambda: _animated("PNG"), "animated_image", "invalid_file_type"),
    "text named .jpg": (lambda: b"not a photo\n" * 20, "unsupported_format", "invalid_file_type"),
    "TIFF page without a size": (
        lambda: _tiff_page_without_size(first=False),
        "corrupt_image",
        "failed_to_read_image",
    ),
    # 20,000 thumbnail directories: counted for a minute before (see tests/engine/test_io.py)
    "TIFF of 20,000 directories": (
        lambda: tiff_with_thumbnails(20_000),
        "animated_image",
        "invalid_file_type",
    ),
    "TIFF without a size": (
        lambda: _tiff_page_without_size(first=True),
        "corrupt_image",
        "failed_to_read_image",
    ),
}


def _stored(ctx: Context) -> list[str]:
    root = ctx.settings.files_dir
    return sorted(str(p) for p in root.rglob("*") if p.is_file()) if root.exists() else []


@pytest.mark.parametrize("case", list(REFUSED))
def test_a_refused_upload_says_what_to_do_charges_and_stores_nothing(
    client: TestClient, ctx: Context, case: str
) -> None:
    make, code, removebg_code = REFUSED[case]
    data = make()
    with pytest.raises(ImageError) as refused:
        decode_image(data, max_bytes=25 * 1024 * 1024, max_pixels=36_000_000)
    assert refused.value.code == code
    declared_size(data)  # the header-only read (pricing) raises nothing either
    user = make_user(ctx, credits=5)
    headers = {"X-Api-Key": make_api_key(ctx, user)}
    upload = ("photo.jpg", data, "image/jpeg")
    api = client.post("/api/v1/jobs", headers=headers, files={"file": upload})
    assert api.status_code == 400, api.text
    error = api.json()["error"]
    assert error["code"] == code and error["message"] == refused.value.message
    removebg = client.post("/v1.0/removebg", headers=headers, files={"image_file": upload})
    assert removebg.status_code == 400, removebg.text
    (answer,) = removebg.json()["errors"]
    assert answer["code"] == removebg_code and answer["detail"] == refused.value.message
    ledger = audit(ctx, user.id)
    assert not ledger["jobs"] and ledger["available"] == 5 and ledger["held"] == 0
    assert _stored(ctx) == []


def test_a_damaged_tiff_in_a_batch_is_skipped_with_its_reason(
    client: TestClient, ctx: Context
) -> None:
    user = make_user(ctx, credits=5)
    headers = {"X-Api-Key": make_api_key(ctx, user)}
    response = client.post(
        "/api/v1/batches",
        headers=headers,
        files=[
            ("files", ("good.png", _saved(_photo(), "PNG"), "image/png")),
            ("files", ("scan.tif", _tiff_page_without_size(first=False), "image/tiff")),
        ],
    )
    assert response.status_code == 202, response.text
    created = response.json()
    assert created["total"] == 1
    assert [(r["path"], r["code"]) for r in created["rejected"]] == [("scan.tif", "corrupt_image")]


def _exif_rotated() -> bytes:
    """200 x 100 pixels stored, EXIF orientation 6: shown 100 wide, 200 high."""
    image = _photo((200, 100))
    exif = image.getexif()
    exif[0x0112] = 6
    return _saved(image, "JPEG", exif=exif.tobytes())


def _sixteen_bit_rgb() -> bytes:
    return _png16(np.asarray(_photo()).astype(np.uint16) * 257, color_type=2)


def _sixteen_bit_rgba() -> bytes:
    rgb = np.asarray(_photo()).astype(np.uint16) * 257
    alpha = np.full((*rgb.shape[:2], 1), 65535, np.uint16)
    return _png16(np.concatenate([rgb, alpha], axis=-1), color_type=6)


ACCEPTED: dict[str, tuple[Callable[[], bytes], tuple[int, int]]] = {
    "CMYK JPEG": (lambda: _saved(_photo().convert("CMYK"), "JPEG"), (160, 120)),
    "16-bit RGB PNG": (_sixteen_bit_rgb, (160, 120)),
    "16-bit RGBA PNG": (_sixteen_bit_rgba, (160, 120)),
    "EXIF rotation": (_exif_rotated, (100, 200)),
    "JPEG named .png": (lambda: _saved(_photo(), "JPEG"), (160, 120)),
}


@pytest.mark.parametrize("case", list(ACCEPTED))
def test_unusual_valid_images_give_a_correct_result(
    client: TestClient, ctx: Context, case: str
) -> None:
    make, size = ACCEPTED[case]
    data = make()
    decoded = decode_image(data, max_bytes=25 * 1024 * 1024, max_pixels=36_000_000)
    # The colours survive decoding (16-bit samples scaled, CMYK converted): the disc's blue.
    r, g, b = decoded.convert("RGB").getpixel((decoded.width // 2, decoded.height // 2))[:3]
    assert b > 120 and r < 90, (r, g, b)
    user = make_user(ctx, credits=5)
    headers = {"X-Api-Key": make_api_key(ctx, user)}
    answer = client.post(
        "/v1.0/removebg",
        headers=headers,
        files={"image_file": ("photo.png", data, "image/png")},
        data={"size": "preview", "format": "png"},
    )
    assert answer.status_code == 200, answer.text
    result = Image.open(io.BytesIO(answer.content))
    assert result.size == size and result.mode == "RGBA"
    # The subject (the disc in the middle) is kept, the flat ground around it removed.
    assert result.getpixel((size[0] // 2, size[1] // 2))[3] > 200
    assert result.getpixel((2, 2))[3] < 60
    assert audit(ctx, user.id)["available"] == 4
