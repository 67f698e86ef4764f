"""Options a job accepts, and what the API shows of a job."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict


class RemoveBackgroundOptions(BaseModel):
    """The remove.bg options we honour; unknown fields are refused so typos are visible."""

    model_config = ConfigDict(extra="forbid")

    size: Literal["preview", "small", "regular", "medium", "hd", "4k", "full", "auto", "50MP"] = (
        "full"
    )
    format: Literal["png", "jpg", "webp"] = "png"
    bg_color: str | None = None
    crop: bool = False
    crop_margin: str | None = None
    channels: Literal["rgba", "alpha"] = "rgba"


class JobOut(BaseModel):
    id: str
    service: str
    status: str
    cost: int
    charged: int
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
