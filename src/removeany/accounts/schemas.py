"""What the accounts API accepts and shows."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class RegisterIn(BaseModel):
    email: str = Field(max_length=320)
    password: str = Field(max_length=1024)


class VerifyIn(BaseModel):
    token: str = Field(max_length=2000)


class UserOut(BaseModel):
    id: int
    email: str
    verified: bool
    is_admin: bool
    created_at: datetime


class ApiKeyIn(BaseModel):
    name: str = Field(default="API key", max_length=100)


class ApiKeyOut(BaseModel):
    id: int
    name: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class ApiKeyCreated(ApiKeyOut):
    key: str = Field(description="Shown only once. Store it now.")
