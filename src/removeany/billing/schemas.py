"""What the billing API accepts and shows."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class PackOut(BaseModel):
    slug: str
    name: str
    credits: int
    price_cents: int
    currency: str


class CheckoutIn(BaseModel):
    pack: str = Field(max_length=40)


class OrderOut(BaseModel):
    id: str
    credits: int
    amount_cents: int
    currency: str
    provider: str
    status: str
    refunded_cents: int
    checkout_url: str | None
    created_at: datetime
    paid_at: datetime | None
