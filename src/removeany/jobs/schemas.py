"""Options a job accepts, and what the API shows of a job."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

Size = Literal["preview", "small", "regular", "medium", "hd", "4k", "full", "auto", "50MP"]
# A user's watermark mask, stored with the job's options: a 1-bit PNG, base64.
MAX_MASK_B64 = 1_000_000
# A background photo to put behind a cutout, stored with the job's options: a JPEG, base64.
MAX_BACKGROUND_B64 = 3_000_000
# Options that hold something the person uploaded beside the photo (a background photo, a
# mask drawn on it): they go with the job's files (privacy.service.mark_deleted).
UPLOADED_OPTIONS = ("bg_image_jpg", "mask_png")
# remove.bg's foreground types; `person` takes the portrait path, `auto` lets the engine choose.
ForegroundType = Literal[
    "auto", "person", "product", "animal", "car", "transportation", "graphic", "other"
]
MAX_BOXES = 100
_Coord = Annotated[int, Field(ge=0, le=1_000_000)]
_Extent = Annotated[int, Field(ge=1, le=1_000_000)]
# [x, y, width, height] in pixels of the uploaded image.
WatermarkBox = tuple[_Coord, _Coord, _Extent, _Extent]


class RemoveBackgroundOptions(BaseModel):
    """The remove.bg options we honour; unknown fields are refused so typos are visible."""

    model_config = ConfigDict(extra="forbid")

    size: Size = "full"
    # zip: color.jpg + alpha.png, as remove.bg's zip format; auto: JPG when the result has no
    # transparency, PNG otherwise (remove.bg's default).
    format: Literal["auto", "png", "jpg", "webp", "zip"] = "png"
    type: ForegroundType = "auto"
    bg_color: str | None = None
    bg_image_jpg: str | None = Field(default=None, max_length=MAX_BACKGROUND_B64)
    crop: bool = False
    crop_margin: str | None = None
    roi: str | None = None
    scale: str | None = None
    position: str | None = None
    add_shadow: bool = False
    channels: Literal["rgba", "alpha"] = "rgba"
    # Copy the upload's EXIF (camera, date, location) into the result; off by default.
    keep_metadata: bool = False


class PortraitOptions(RemoveBackgroundOptions):
    """Portrait cutout takes background removal's output options."""


class IdPhotoOptions(BaseModel):
    """A standard ID photo: print size at 300 dpi (engine.portrait.ID_SIZES) on a flat colour."""

    model_config = ConfigDict(extra="forbid")

    size: Literal["1inch", "2inch"] = "1inch"
    background: Literal["white", "blue", "red"] = "white"
    format: Literal["jpg", "png"] = "jpg"


class RemoveWatermarkOptions(BaseModel):
    """Watermark removal: detected automatically unless `boxes` or a mask say where it is.
    The output keeps the input's size and format unless `size` or `format` ask otherwise."""

    model_config = ConfigDict(extra="forbid")

    size: Size = "full"
    format: Literal["png", "jpg", "webp"] | None = None
    boxes: list[WatermarkBox] | None = Field(default=None, max_length=MAX_BOXES)
    mask_png: str | None = Field(default=None, max_length=MAX_MASK_B64)
    keep_metadata: bool = False


class JobOut(BaseModel):
    id: str
    service: str
    status: str
    cost: int = Field(
        description="Credits the job holds while it waits or runs (with crop, the price of the "
        "largest result it can make), and what it cost once it succeeded"
    )
    charged: int = Field(description="Credits spent: 0 until it succeeds, and if it fails")
    input_name: str
    input_width: int
    input_height: int
    result_width: int | None
    result_height: int | None
    result_url: str | None
    original_url: str
    error_code: str | None
    error_message: str | None
    detected_type: str | None
    created_at: datetime
    finished_at: datetime | None
