"""Pure image engine: PIL/numpy in and out, usable without a database or server."""

from removeany.engine.background import predict_alpha, remove_background
from removeany.engine.errors import ImageError, ModelError, OptionError
from removeany.engine.io import decode_image, encode_image

__all__ = [
    "ImageError",
    "ModelError",
    "OptionError",
    "decode_image",
    "encode_image",
    "predict_alpha",
    "remove_background",
]
