"""A wide-gamut colour profile for tests: photos tagged with it show how colours survive.

Pillow can only create sRGB, LAB and XYZ profiles, and the test machines carry no .icc files,
so the profile is written here: an ICC version 2 matrix/TRC display profile with the
Adobe RGB (1998) primaries (adapted to the D50 connection space, as ICC profiles state them)
and its 563/256 gamma. Little CMS reads it like any other.
"""

from __future__ import annotations

import io
import struct

from PIL import Image, ImageCms

# Adobe RGB (1998) red, green and blue colorants and the D50 white, in XYZ.
_COLORANTS = {
    b"rXYZ": (0.60974, 0.31111, 0.01947),
    b"gXYZ": (0.20528, 0.62567, 0.06087),
    b"bXYZ": (0.14919, 0.06322, 0.74457),
}
_D50 = (0.9642, 1.0, 0.8249)
_GAMMA = 563 / 256


def _s15(value: float) -> bytes:
    return struct.pack(">i", round(value * 65536))


def _xyz(x: float, y: float, z: float) -> bytes:
    return b"XYZ " + bytes(4) + _s15(x) + _s15(y) + _s15(z)


def _description(text: str) -> bytes:
    ascii_text = text.encode("ascii") + b"\0"
    # ASCII part, then empty Unicode (language, count) and ScriptCode (code, count, 67 bytes)
    return b"desc" + bytes(4) + struct.pack(">I", len(ascii_text)) + ascii_text + bytes(8 + 3 + 67)


def wide_gamut_profile() -> bytes:
    """The profile's bytes (tags: desc, cprt, wtpt, the colorants, one gamma curve each)."""
    curve = b"curv" + bytes(4) + struct.pack(">IH", 1, round(_GAMMA * 256)) + bytes(2)
    tags = [
        (b"desc", _description("Adobe RGB (1998) primaries, test")),
        (b"cprt", b"text" + bytes(4) + b"none\0"),
        (b"wtpt", _xyz(*_D50)),
        *((signature, _xyz(*xyz)) for signature, xyz in _COLORANTS.items()),
        (b"rTRC", curve),
        (b"gTRC", curve),
        (b"bTRC", curve),
    ]
    start = 128 + 4 + 12 * len(tags)
    table, body = b"", b""
    for signature, data in tags:
        body += bytes(-(start + len(body)) % 4)  # tags start on 4-byte boundaries
        table += signature + struct.pack(">II", start + len(body), len(data))
        body += data
    header = (
        struct.pack(">I", start + len(body))
        + b"lcms"
        + bytes((2, 0x10, 0, 0))  # version 2.1
        + b"mntr"  # display device
        + b"RGB "
        + b"XYZ "
        + bytes(12)  # date
        + b"acsp"
        + bytes(28)  # platform, flags, manufacturer, model, attributes, intent
        + b"".join(_s15(v) for v in _D50)
        + bytes(48)  # creator, profile id, reserved
    )
    return header + struct.pack(">I", len(tags)) + table + body


def srgb_profile() -> bytes:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def convert(image: Image.Image, source: bytes, target: bytes) -> Image.Image:
    """``image``'s RGB pixels from the ``source`` profile's colours to ``target``'s."""
    out = ImageCms.profileToProfile(
        image.convert("RGB"),
        ImageCms.ImageCmsProfile(io.BytesIO(source)),
        ImageCms.ImageCmsProfile(io.BytesIO(target)),
        renderingIntent=ImageCms.Intent.RELATIVE_COLORIMETRIC,
        outputMode="RGB",
    )
    assert out is not None
    return out
