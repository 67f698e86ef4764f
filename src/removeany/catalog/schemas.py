"""What the price API accepts and shows."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class PriceOut(BaseModel):
    service: str
    tier: str
    credits: int
    version: int
    created_at: datetime


class PriceIn(BaseModel):
    service: str = Field(max_length=40)
    tier: str = Field(max_length=20)
    credits: int = Field(ge=0, le=10_000)
    note: str = Field(default="", max_length=200)
