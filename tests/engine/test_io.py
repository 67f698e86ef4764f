"""Safe decoding and clean encoding of real and deliberately hostile images."""

from __future__ import annotations

import io
import struct
import time
import zlib

import numpy as np
import pytest
from PIL import Image, JpegImagePlugin, TiffImagePlugin

from removeany.engine.errors import ImageError
from removeany.engine.io import (
    MOST_TIFF_PAGES,
    OutputFormat,
    SourceEncoding,
    declared_mode,
    declared_size,
    decode_image,
    encode_image,
    sniff_format,
    source_encoding,
)

from ._eval import photo_path

LIMITS = {"max_bytes": 50_000_000, "max_pixels": 50_000_000}


def _photo() -> Image.Image:
    with Image.open(photo_path("object", "alphamatting_GT05")) as im:
        return im.convert("RGB")


def _encode(image: Image.Image, fmt: str, **params: object) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **params)
    return out.getvalue()


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    body = kind + payload
    return struct.pack(">I", len(payload)) + body + struct.pack(">I", zlib.crc32(body))


def _decode_error(data: bytes, **limits: int) -> str:
    with pytest.raises(ImageError) as caught:
        decode_image(data, **{**LIMITS, **limits})
    assert caught.value.message.endswith(".")
    return caught.value.code


@pytest.mark.parametrize(("fmt", "sniffed"), [("PNG", "PNG"), ("JPEG", "JPEG"), ("WEBP", "WEBP")])
def test_decodes_real_photo_in_each_format(fmt: str, sniffed: str) -> None:
    photo = _photo()
    data = _encode(photo, fmt)
    assert sniff_format(data) == sniffed
    decoded = decode_image(data, **LIMITS)
    assert decoded.mode == "RGB"
    assert decoded.size == photo.size
    difference = np.abs(np.asarray(decoded, np.int16) - np.asarray(photo, np.int16)).mean()
    assert difference < 4  # lossy formats stay close to the original


def test_png_with_alpha_stays_rgba() -> None:
    rgba = _photo().convert("RGBA")
    rgba.putalpha(77)
    decoded = decode_image(_encode(rgba, "PNG"), **LIMITS)
    assert decoded.mode == "RGBA"
    assert np.asarray(decoded.getchannel("A")).max() == 77


def test_exif_orientation_is_applied() -> None:
    image = Image.new("RGB", (40, 20), (0, 0, 255))
    image.paste((255, 0, 0), (0, 0, 20, 20))  # left half red
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    decoded = decode_image(_encode(image, "JPEG", exif=exif.tobytes(), quality=95), **LIMITS)
    assert decoded.size == (20, 40)
    top, bottom = decoded.getpixel((10, 5)), decoded.getpixel((10, 35))
    assert isinstance(top, tuple) and isinstance(bottom, tuple)
    assert top[0] > 200 and top[2] < 60  # the left half is now on top
    assert bottom[2] > 200 and bottom[0] < 60


@pytest.mark.parametrize(("orientation", "size"), [(1, (40, 20)), (3, (40, 20)), (6, (20, 40))])
def test_the_declared_size_is_the_decoded_size(orientation: int, size: tuple[int, int]) -> None:
    """Read from the header alone, upright: photos are grouped by it before any is decoded."""
    exif = Image.Exif()
    exif[0x0112] = orientation
    data = _encode(Image.new("RGB", (40, 20)), "JPEG", exif=exif.tobytes())
    assert declared_size(data) == size == decode_image(data, **LIMITS).size
    assert declared_size(b"not an image") is None


@pytest.mark.parametrize(
    "data",
    [b"hello, not an image", b"%PDF-1.7\n", b"<svg xmlns='http://www.w3.org/2000/svg'/>"],
)
def test_non_images_are_unsupported(data: bytes) -> None:
    assert _decode_error(data) == "unsupported_format"


def test_truncated_jpeg_is_corrupt() -> None:
    data = _encode(_photo(), "JPEG", quality=90)
    assert _decode_error(data[: len(data) // 2]) == "corrupt_image"


def test_garbage_after_valid_signature_is_corrupt() -> None:
    assert _decode_error(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40) == "corrupt_image"


def test_decompression_bomb_is_refused_from_the_header() -> None:
    """A 100,000 x 100,000 PNG in 100 bytes: refused before any pixel memory is allocated."""
    header = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 1000)
    data = (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", idat)
        + _png_chunk(b"IEND", b"")
    )
    assert len(data) < 200
    assert _decode_error(data) == "too_many_pixels"
    # Far above Pillow's own bomb limit, yet reported as our code rather than Pillow's error.
    assert _decode_error(data, max_pixels=200_000_000) == "too_many_pixels"


def _gif_with_a_huge_frame() -> bytes:
    """A 10x10 GIF whose one frame declares 30,000 x 30,000 pixels (35 bytes): Pillow's own
    bomb check fires while the header is read."""
    screen = b"GIF89a" + struct.pack("<HHBBB", 10, 10, 0, 0, 0)
    frame = b"," + struct.pack("<HHHHB", 0, 0, 30_000, 30_000, 0)
    return screen + frame + b"\x02\x02\x44\x01\x00;"


def test_a_gif_frame_larger_than_its_screen_is_refused() -> None:
    assert _decode_error(_gif_with_a_huge_frame()) == "too_many_pixels"


def test_an_empty_file_is_called_empty() -> None:
    """A 0-byte "photo.png" (a copy that never finished) is not a wrong format."""
    with pytest.raises(ImageError) as caught:
        decode_image(b"", **LIMITS)
    assert caught.value.code == "empty_file"
    assert "The file is empty" in caught.value.message


def test_byte_limit_is_checked_first() -> None:
    data = _encode(_photo(), "PNG")
    assert _decode_error(data, max_bytes=len(data) - 1) == "file_too_large"
    assert _decode_error(b"x" * 101, max_bytes=100) == "file_too_large"


def test_pixel_limit() -> None:
    photo = _photo()
    data = _encode(photo, "PNG")
    pixels = photo.width * photo.height
    assert _decode_error(data, max_pixels=pixels - 1) == "too_many_pixels"
    assert decode_image(data, max_bytes=len(data), max_pixels=pixels).size == photo.size


def test_sixteen_bit_grayscale_is_scaled_to_eight_bit() -> None:
    ramp = np.linspace(0, 65535, 64 * 16, dtype=np.uint16).reshape(16, 64)
    decoded = decode_image(_encode(Image.fromarray(ramp), "PNG"), **LIMITS)
    assert decoded.mode == "RGB"
    red = np.asarray(decoded)[..., 0]
    assert red.min() == 0 and red.max() == 255


def test_dark_sixteen_bit_and_float_samples_keep_their_level() -> None:
    """A dark 16-bit photo is still 16-bit (not read as 8-bit, 257 times too bright), and float
    samples in 0..1 are a full range (not black)."""
    dark = np.linspace(0, 255, 64, dtype=np.uint16).reshape(8, 8)  # at most 255 of 65535
    decoded = decode_image(_encode(Image.fromarray(dark), "PNG"), **LIMITS)
    assert np.asarray(decoded)[..., 0].max() == 1
    ramp = np.linspace(0.0, 1.0, 64, dtype=np.float32).reshape(8, 8)
    decoded = decode_image(_encode(Image.fromarray(ramp, "F"), "TIFF"), **LIMITS)
    red = np.asarray(decoded)[..., 0]
    assert red.min() == 0 and red.max() == 255


def test_palette_with_transparency_becomes_rgba() -> None:
    image = Image.new("P", (8, 8), 0)
    image.putpalette([255, 0, 0, 0, 255, 0] + [0] * 762)
    image.paste(1, (0, 0, 4, 8))
    decoded = decode_image(_encode(image, "PNG", transparency=0), **LIMITS)
    assert decoded.mode == "RGBA"
    alpha = np.asarray(decoded.getchannel("A"))
    assert alpha[:, :4].min() == 255 and alpha[:, 4:].max() == 0


def test_cmyk_jpeg_and_gif_decode_to_rgb() -> None:
    photo = _photo().resize((64, 40))
    for data in (_encode(photo.convert("CMYK"), "JPEG"), _encode(photo.convert("P"), "GIF")):
        decoded = decode_image(data, **LIMITS)
        assert decoded.mode == "RGB" and decoded.size == (64, 40)


def _profile(space: bytes) -> bytes:
    """An ICC header declaring ``space``: enough for what a viewer reads first, not a usable
    colour transform."""
    header = bytearray(128)
    header[0:4] = struct.pack(">I", 128)
    header[12:16] = b"prtr"
    header[16:20] = space
    header[20:24] = b"Lab "
    header[36:40] = b"acsp"
    return bytes(header + struct.pack(">I", 0))


def test_a_profile_stays_only_where_it_describes_the_pixels() -> None:
    """Decoded to RGB, a CMYK or grey photo drops its profile (an RGB file tagged CMYK is
    misread by every viewer); an RGB photo keeps its own."""
    photo = _photo().resize((32, 24))
    cmyk = decode_image(
        _encode(photo.convert("CMYK"), "JPEG", icc_profile=_profile(b"CMYK")), **LIMITS
    )
    assert cmyk.mode == "RGB" and "icc_profile" not in cmyk.info
    grey = decode_image(_encode(photo.convert("L"), "PNG", icc_profile=_profile(b"GRAY")), **LIMITS)
    assert grey.mode == "RGB" and "icc_profile" not in grey.info
    rgb = decode_image(_encode(photo, "PNG", icc_profile=_profile(b"RGB ")), **LIMITS)
    assert rgb.info["icc_profile"][16:20] == b"RGB "


def _frames(fmt: str, count: int) -> bytes:
    frames = [Image.new("RGB", (8, 8), (80 * i, 0, 0)) for i in range(count)]
    return _encode(frames[0], fmt, save_all=True, append_images=frames[1:])


@pytest.mark.parametrize("fmt", ["GIF", "PNG", "WEBP", "TIFF"])
def test_animations_and_multi_page_files_are_refused(fmt: str) -> None:
    """Only one picture is processed: an animated GIF, PNG (APNG) or WebP, or a multi-page
    TIFF, is refused with a stable code and what to do, not cut down to its first frame."""
    with pytest.raises(ImageError) as caught:
        decode_image(_frames(fmt, 3), **LIMITS)
    assert caught.value.code == "animated_image"
    assert "holds 3 frames" in caught.value.message
    assert "save the frame you want as PNG or JPEG" in caught.value.message
    assert decode_image(_frames(fmt, 1), **LIMITS).size == (8, 8)


def test_extra_frames_that_are_no_picture_of_their_own_are_not_refused() -> None:
    """A camera's MPO (a JPEG whose second frame is a preview) and a TIFF whose second page
    is a thumbnail (NewSubfileType 1) hold one picture."""
    big, small = Image.new("RGB", (64, 48), (200, 0, 0)), Image.new("RGB", (32, 24), (0, 9, 0))
    mpo = _encode(big, "MPO", save_all=True, append_images=[small])
    assert sniff_format(mpo) == "JPEG"
    assert decode_image(mpo, **LIMITS).size == (64, 48)
    buf = io.BytesIO()
    with TiffImagePlugin.AppendingTiffWriter(buf, new=True) as tiff:
        for page, subfile_type in ((big, 0), (small, 1)):
            page.encoderinfo = {"tiffinfo": {254: subfile_type}}
            page.encoderconfig = ()
            TiffImagePlugin._save(page, tiff, "")
            tiff.newFrame()
    assert Image.open(io.BytesIO(buf.getvalue())).n_frames == 2
    assert decode_image(buf.getvalue(), **LIMITS).size == (64, 48)


def tiff_with_thumbnails(count: int) -> bytes:
    """A one-pixel TIFF page followed by `count` one-pixel thumbnail directories
    (NewSubfileType 1), each a copy of the page's tags."""
    data = bytearray(_encode(Image.new("L", (1, 1)), "TIFF"))
    first = struct.unpack_from("<I", data, 4)[0]
    tags = struct.unpack_from("<H", data, first)[0]
    entries = struct.pack("<HHII", 254, 4, 1, 1) + bytes(data[first + 2 : first + 2 + 12 * tags])
    struct.pack_into("<I", data, first + 2 + 12 * tags, len(data))
    size = 2 + len(entries) + 4
    for index in range(count):
        following = len(data) + size if index < count - 1 else 0
        data += struct.pack("<H", tags + 1) + entries + struct.pack("<I", following)
    return bytes(data)


def test_a_tiff_of_many_directories_is_refused_without_reading_them_all() -> None:
    """Pillow parses each directory in Python, for n_frames and again for its type: 20,000
    thumbnail directories (2.5 MB) took about a minute to count before the decode (100,000:
    6 minutes). At most MOST_TIFF_PAGES are read now; one picture beside more directories
    than that is refused as a multi-page file."""
    assert decode_image(tiff_with_thumbnails(MOST_TIFF_PAGES - 1), **LIMITS).size == (1, 1)
    for count in (MOST_TIFF_PAGES, 20_000):
        started = time.monotonic()
        with pytest.raises(ImageError) as caught:
            decode_image(tiff_with_thumbnails(count), **LIMITS)
        assert time.monotonic() - started < 5
        assert caught.value.code == "animated_image"
        assert f"holds more than {MOST_TIFF_PAGES} frames" in caught.value.message


def test_the_header_tells_the_mode() -> None:
    assert declared_mode(_encode(_photo().convert("L"), "PNG")) == "L"
    assert declared_mode(b"not an image") == ""


def test_jpg_output_flattens_alpha_onto_white_or_given_background() -> None:
    rgba = Image.new("RGBA", (16, 16), (255, 0, 0, 0))
    for background in ((255, 255, 255), (0, 0, 0)):
        data = encode_image(rgba, "jpg", background=background)
        with Image.open(io.BytesIO(data)) as out:
            assert out.format == "JPEG"
            pixel = np.asarray(out.convert("RGB"))[8, 8]
        assert np.abs(pixel.astype(int) - background).max() < 4


@pytest.mark.parametrize(("fmt", "pil_format"), [("png", "PNG"), ("jpg", "JPEG"), ("webp", "WEBP")])
def test_encoding_writes_no_exif(fmt: OutputFormat, pil_format: str) -> None:
    exif = Image.Exif()
    exif[0x010F] = "Camera maker"
    exif[0x0112] = 1
    source = decode_image(_encode(_photo(), "JPEG", exif=exif.tobytes()), **LIMITS)
    assert "exif" in source.info  # the decoded image still carries it
    with Image.open(io.BytesIO(encode_image(source, fmt))) as out:
        assert out.format == pil_format
        assert "exif" not in out.info
        assert len(out.getexif()) == 0
        assert out.size == source.size


def test_more_exif_than_a_jpeg_holds_is_a_user_error_not_a_crash() -> None:
    """Pillow's ValueError ('EXIF data is too long') was a job's processing_failed."""
    exif = Image.Exif()
    exif[0x010E] = "x" * 70_000
    block = exif.tobytes()
    image = Image.new("RGB", (8, 8))
    with pytest.raises(ImageError) as refused:
        encode_image(image, "jpg", exif=block)
    assert refused.value.code == "metadata_too_large"
    assert "70,0" in refused.value.message and "keep_metadata" in refused.value.message
    for fmt in ("png", "webp"):
        assert encode_image(image, fmt, exif=block)


def _psnr(a: Image.Image, b: Image.Image) -> float:
    d = np.asarray(a.convert("RGB"), np.float64) - np.asarray(b.convert("RGB"), np.float64)
    return float(10 * np.log10(255.0**2 / max(float(np.mean(d * d)), 1e-10)))


@pytest.mark.parametrize(
    ("quality", "subsampling", "progressive"), [(95, 0, False), (98, 0, True), (80, 2, False)]
)
def test_a_jpeg_written_like_its_source_keeps_its_tables_and_scan(
    quality: int, subsampling: int, progressive: bool
) -> None:
    """A photo written back as JPEG (watermark removal) is encoded with its own quantisation
    tables, chroma subsampling and scan: re-encoding a 4:4:4 photo as 4:2:0 at quality 95 cost
    every untouched block (PSNR 43.95 dB over a Kodak photo's unmarked area; 41.28 dB for a
    progressive quality-98 one), and a quality-80 photo came back 72 % larger for nothing."""
    data = _encode(
        _photo(), "JPEG", quality=quality, subsampling=subsampling, progressive=progressive
    )
    source = source_encoding(data)
    decoded = decode_image(data, **LIMITS)
    written = encode_image(decoded, "jpg", quality=95, like=source)
    with Image.open(io.BytesIO(data)) as before, Image.open(io.BytesIO(written)) as after:
        assert after.quantization == before.quantization
        assert JpegImagePlugin.get_sampling(after) == subsampling
        assert bool(after.info.get("progressive")) == progressive
        assert len(written) < len(data) * 1.05
        assert _psnr(decoded, after) >= 50


def test_a_lossless_webp_is_written_back_losslessly() -> None:
    """Lossy WebP at quality 95 changed every pixel of a lossless WebP (PSNR 42.27 dB), and
    with transparency the colours under its clear pixels."""
    photo = _photo().convert("RGBA")
    clear = np.zeros(photo.size[::-1], np.uint8)
    clear[:, 40:] = 255
    photo.putalpha(Image.fromarray(clear))
    data = _encode(photo, "WEBP", lossless=True, exact=True)
    decoded = decode_image(data, **LIMITS)
    written = encode_image(decoded, "webp", quality=95, like=source_encoding(data))
    with Image.open(io.BytesIO(written)) as after:
        assert np.array_equal(np.asarray(after), np.asarray(photo))
    lossy = _encode(photo, "WEBP", quality=90)
    assert not source_encoding(lossy).lossless
    assert source_encoding(lossy).format == "WEBP"


def test_the_source_encoding_says_grey_and_format() -> None:
    grey = source_encoding(_encode(_photo().convert("L"), "PNG"))
    assert grey.format == "PNG" and grey.grey and grey.jpeg_tables is None
    assert not source_encoding(_encode(_photo(), "PNG")).grey
    assert source_encoding(b"not an image") == SourceEncoding(format=None)


def test_a_profile_is_written_only_on_pixels_it_describes() -> None:
    """An RGB profile on a grey matte (channels=alpha, the zip's alpha.png) is not written:
    a grey PNG may not carry one (libpng drops it with a warning; viewers disagree)."""
    rgb = _photo().resize((32, 24))
    rgb.info["icc_profile"] = _profile(b"RGB ")
    matte = rgb.convert("L")
    assert matte.info["icc_profile"][16:20] == b"RGB "  # Pillow carries it over
    with Image.open(io.BytesIO(encode_image(matte, "png"))) as out:
        assert out.mode == "L" and "icc_profile" not in out.info
    with Image.open(io.BytesIO(encode_image(rgb, "png"))) as out:
        assert out.info["icc_profile"][16:20] == b"RGB "
