"""Errors raised by the engine; callers map them to responses by their stable ``code``."""

from __future__ import annotations

from typing import Literal

ImageErrorCode = Literal[
    "file_too_large",
    "unsupported_format",
    "animated_image",
    "empty_file",
    "corrupt_image",
    "too_many_pixels",
    "output_too_large",
    "metadata_too_large",
    "unknown_foreground",
    "no_watermark",
    "no_face",
    "several_faces",
    "face_cut_off",
    "face_too_small",
]


class ImageError(Exception):
    """A user-supplied image cannot be processed; ``message`` tells the user what to do.

    ``message`` speaks to someone who uploaded the image (the API and the pages, which
    translate it); ``local_message`` to someone holding it as a file on their own disk (the
    offline CLI). They differ only where the remedy does: pass ``local`` when ``message``
    asks for an upload."""

    def __init__(self, code: ImageErrorCode, message: str, *, local: str | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code: ImageErrorCode = code
        self.message = message
        self.local_message = local or message


class OptionError(ValueError):
    """An output option (colour, size, margin, ...) is malformed; the API answers 400."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class ModelError(Exception):
    """Model weights are unknown, missing or not the expected file: an operator must act."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
