"""Reading an upload without trusting it: bounded reads, then the engine's safe decoder."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable

from fastapi import Request, UploadFile
from PIL import Image
from starlette.datastructures import FormData
from starlette.formparsers import MultiPartException, MultiPartParser

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


# Called as each file part of a form starts, with its name and the text fields read before it;
# what it raises ends the upload there.
FileHook = Callable[[str, dict[str, str]], None]
# A multipart file part beyond this many bytes is written to a temporary file on disk.
SPOOL_BYTES = 64 * 1024


class _DiskSpooledParser(MultiPartParser):
    """Starlette's parser keeps every file part under 1 MB in memory, so a batch of 500 shop
    photos sent as files held all 160 MB of them in the server; here each one beyond
    SPOOL_BYTES goes to disk. The number of files is bounded while parsing, by `too_many`."""

    spool_max_size = SPOOL_BYTES

    def __init__(
        self,
        request: Request,
        *,
        max_files: int,
        too_many: Callable[[], Exception],
        on_file: FileHook | None,
    ) -> None:
        super().__init__(request.headers, request.stream(), max_files=float("inf"), max_fields=50)
        self._file_limit = max_files
        self._files_seen = 0
        self._too_many = too_many
        self._on_file = on_file
        self._fields: dict[str, str] = {}

    def on_part_end(self) -> None:
        super().on_part_end()
        name, value = self.items[-1]
        if isinstance(value, str):
            self._fields[name] = value

    def on_headers_finished(self) -> None:
        super().on_headers_finished()
        upload = self._current_part.file
        if upload is not None:
            self._files_seen += 1
            if self._files_seen > self._file_limit:
                raise self._too_many()
            if self._on_file is not None:
                self._on_file(upload.filename or "", self._fields)


async def spooled_form(
    request: Request,
    *,
    max_files: int,
    too_many: Callable[[], Exception],
    malformed: Callable[[str], Exception],
    on_file: FileHook | None = None,
) -> FormData:
    """A multipart form of many files, each spooled to disk; more than `max_files` files
    raise `too_many()` (the caller's error, in the caller's words) as soon as one more
    starts, and `on_file` sees each file as it starts; a body that is not a multipart form
    raises `malformed(reason)` (a phrase, no full stop)."""
    if not request.headers.get("content-type", "").lower().startswith("multipart/form-data"):
        raise malformed("the body is not multipart/form-data")
    try:
        return await _DiskSpooledParser(
            request, max_files=max_files, too_many=too_many, on_file=on_file
        ).parse()
    except MultiPartException as exc:
        raise malformed(exc.message.rstrip(".")) from None


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
