"""What the credits API accepts and shows."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from removeany.credits.models import EntryKind


class LotOut(BaseModel):
    id: int
    source: str
    amount: int
    remaining: int
    expires_at: datetime
    created_at: datetime


class EntryOut(BaseModel):
    id: int
    lot_id: int
    lot_source: str
    lot_expires_at: datetime
    kind: EntryKind
    amount: int
    reference: str
    job_id: str | None
    note: str
    created_at: datetime


class CreditsOut(BaseModel):
    available: int
    held: int
    expiring_soon: list[LotOut] = Field(
        description="Lots with credits left that expire within the warning window."
    )
    lots: list[LotOut]
    entries: list[EntryOut]


class RedeemIn(BaseModel):
    code: str = Field(max_length=40)


class PromoIn(BaseModel):
    code: str = Field(max_length=40)
    credits: int = Field(gt=0, le=1_000_000)
    max_uses: int = Field(gt=0, le=10_000_000)
    credit_days: int = Field(default=30, gt=0, le=3650)
    redeem_by: datetime | None = None


class PromoOut(BaseModel):
    code: str
    credits: int
    max_uses: int
    used: int
    credit_days: int
    redeem_by: datetime | None
