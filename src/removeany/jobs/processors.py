"""Maps a job's service and options to engine calls. Pure: image in, encoded bytes out."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from removeany.engine.background import remove_background
from removeany.engine.compose import ComposeOptions, compose_result, foreground_box, parse_options
from removeany.engine.io import encode_image

MEDIA_TYPES = {"png": "image/png", "jpg": "image/jpeg", "webp": "image/webp"}


@dataclass(frozen=True)
class Output:
    data: bytes
    media_type: str
    width: int
    height: int
    detected_type: str | None
    foreground: dict[str, int] | None


def compose_options(options: dict[str, Any]) -> ComposeOptions:
    """Validate stored options; raising OptionError here lets submission refuse before charging."""
    return parse_options(
        size=options.get("size", "full"),
        bg_color=options.get("bg_color"),
        crop=bool(options.get("crop", False)),
        crop_margin=options.get("crop_margin"),
        channels=options.get("channels", "rgba"),
    )


def run(service: str, image: Image.Image, options: dict[str, Any], model_dir: Path) -> Output:
    if service == "remove_background":
        return _remove_background(image, options, model_dir)
    raise ValueError(f"unknown service {service!r}")


def _remove_background(image: Image.Image, options: dict[str, Any], model_dir: Path) -> Output:
    compose = compose_options(options)
    rgba = remove_background(image, model_dir=model_dir)
    composed = compose_result(rgba, compose)
    fmt = options.get("format", "png")
    left, top, width, height = foreground_box(np.asarray(rgba.getchannel("A")))
    return Output(
        data=encode_image(composed, fmt),
        media_type=MEDIA_TYPES[fmt],
        width=composed.width,
        height=composed.height,
        detected_type=None,
        foreground={"left": left, "top": top, "width": width, "height": height},
    )
