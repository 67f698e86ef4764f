"""What the credits API shows."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel


class LotOut(BaseModel):
    id: int
    source: str
    amount: int
    remaining: int
    expires_at: datetime | None
    created_at: datetime


class EntryOut(BaseModel):
    id: int
    lot_id: int
    kind: str
    amount: int
    reference: str
    created_at: datetime


class CreditsOut(BaseModel):
    available: int
    held: int
    lots: list[LotOut]
    entries: list[EntryOut]
