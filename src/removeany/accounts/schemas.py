"""What the accounts API accepts and shows."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from removeany.accounts.models import DEFAULT_KEY_NAME


class RegisterIn(BaseModel):
    email: str = Field(max_length=320)
    password: str = Field(max_length=1024)
    accept_terms: bool = Field(
        default=False,
        description="Accept the current Terms of Service and Privacy Policy (GET "
        "/api/v1/legal/current). Needed before using the services.",
    )


class VerifyIn(BaseModel):
    token: str = Field(max_length=2000)


class UserOut(BaseModel):
    id: int
    email: str
    verified: bool
    is_admin: bool
    created_at: datetime
    status: str = "active"
    two_factor: bool = False


class ApiKeyIn(BaseModel):
    name: str = Field(default=DEFAULT_KEY_NAME, max_length=100)


class ApiKeyOut(BaseModel):
    id: int
    name: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class ApiKeyCreated(ApiKeyOut):
    key: str = Field(description="Shown only once. Store it now.")


class LoginIn(BaseModel):
    email: str = Field(max_length=320)
    password: str = Field(max_length=1024)
    totp_code: str | None = Field(default=None, max_length=40)


class LoginOut(BaseModel):
    user: UserOut
    csrf_token: str = Field(description="Send as X-CSRF-Token on writes made with the cookie.")
    new_device: bool


class EmailIn(BaseModel):
    email: str = Field(max_length=320)


class TokenIn(BaseModel):
    token: str = Field(max_length=2000)


class ResetConfirmIn(BaseModel):
    token: str = Field(max_length=2000)
    new_password: str = Field(max_length=1024)


class PasswordChangeIn(BaseModel):
    current_password: str = Field(max_length=1024)
    new_password: str = Field(max_length=1024)


class EmailChangeIn(BaseModel):
    current_password: str = Field(max_length=1024)
    new_email: str = Field(max_length=320)


class ReauthIn(BaseModel):
    current_password: str = Field(max_length=1024)


class TotpSetupOut(BaseModel):
    secret: str
    otpauth_uri: str


class CodeIn(BaseModel):
    code: str = Field(max_length=40)


class TotpDisableIn(BaseModel):
    current_password: str = Field(max_length=1024)
    code: str = Field(default="", max_length=40)


class RecoveryCodesOut(BaseModel):
    recovery_codes: list[str] = Field(description="Shown only once. Store them safely.")


class SessionOut(BaseModel):
    id: int
    user_agent: str
    ip: str
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime
    current: bool


class SecurityOut(BaseModel):
    two_factor: bool
    recovery_codes_left: int
    sessions: list[SessionOut]
    api_keys: list[ApiKeyOut]


class Accepted(BaseModel):
    ok: bool = True
    message: str
