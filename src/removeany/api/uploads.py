"""Reading an upload without trusting it: bounded reads, then the engine's safe decoder."""

from __future__ import annotations

import base64
import binascii

from fastapi import UploadFile
from PIL import Image

from removeany.engine.errors import ImageError, OptionError
from removeany.engine.io import decode_image
from removeany.infra.settings import Settings

# Request bodies are bounded before anything reads them (FastAPI buffers a JSON body whole
# before validating it, so one request could otherwise hold any amount of memory). Forms and
# JSON: far more than a sign-in or a setting needs.
BODY_LIMIT = 1024 * 1024
# New terms and privacy texts: four of up to 200,000 characters each, form-encoded.
TEXT_BODY_LIMIT = 8 * 1024 * 1024


def upload_body_limit(settings: Settings) -> int:
    """A request that carries a photo: with a background image and a mask (or the photo in
    base64) and its other fields."""
    return 3 * settings.max_upload_bytes + BODY_LIMIT


async def read_bounded(upload: UploadFile, max_bytes: int) -> bytes:
    """Read at most max_bytes + 1 so an oversized file is refused without holding all of it."""
    data = await upload.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise too_large(max_bytes)
    return data


def decode_b64(value: str, max_bytes: int) -> bytes:
    if "," in value[:100] and value.startswith("data:"):
        value = value.split(",", 1)[1]
    if len(value) > (max_bytes * 4) // 3 + 8:
        raise too_large(max_bytes)
    try:
        return base64.b64decode(value, validate=False)
    except (binascii.Error, ValueError):
        raise ImageError(
            "corrupt_image", "image_file_b64 is not valid base64. Encode the file bytes again."
        ) from None


def too_large(max_bytes: int) -> ImageError:
    return ImageError(
        "file_too_large",
        f"The file is larger than {max_bytes // (1024 * 1024)} MB. Upload a smaller file.",
    )


def validate(data: bytes, settings: Settings) -> Image.Image:
    return decode_image(
        data, max_bytes=settings.max_upload_bytes, max_pixels=settings.max_upload_pixels
    )


async def read_option_image(
    upload: UploadFile, settings: Settings, *, code: str, what: str
) -> Image.Image:
    """A second image sent with a job (a mask, a background), checked like any upload. Its
    problems are the option's: `code` with a sentence that names `what` it is."""
    data = await read_bounded(upload, settings.max_upload_bytes)
    try:
        return validate(data, settings)
    except ImageError as exc:
        raise OptionError(code, f"{what}: {exc.message}") from None
