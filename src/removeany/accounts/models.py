"""Tables owned by accounts: users, browser sessions, API keys, and the security records around
them (throttle counters, password reset tokens, 2FA recovery codes, known devices)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from removeany.i18n import N_
from removeany.infra.db import Base, UTCDateTime, utcnow


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    email_verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # active | restricted (may sign in, may not process) | banned | deleted (anonymised)
    status: Mapped[str] = mapped_column(String(20), default="active", server_default="active")
    status_reason: Mapped[str | None] = mapped_column(Text, default=None)
    # Set by "this wasn't me": no sign-in until the password is reset.
    locked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    password_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    # The first sign-in: a sign-in from an unknown device is announced after it, even once
    # every known device has been forgotten (they are, after KNOWN_DEVICE_DAYS unseen).
    first_signed_in_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    # TOTP (RFC 6238): the seed is set at setup, enabled once a first code is confirmed; the
    # last accepted time step blocks replaying a code.
    # Sealed with AES-GCM under a key derived from the secret key (accounts/sealing.py).
    totp_secret: Mapped[str | None] = mapped_column(String(255), default=None)
    totp_enabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    totp_last_step: Mapped[int | None] = mapped_column(Integer, default=None)
    # The language emails are written in ("en", "zh-CN"): chosen at sign-up, changed with the
    # site's language switch. None: the language of the request that sends the email.
    locale: Mapped[str | None] = mapped_column(String(16), default=None)

    @property
    def is_verified(self) -> bool:
        return self.email_verified_at is not None

    @property
    def has_2fa(self) -> bool:
        return self.totp_enabled_at is not None


class WebSession(Base):
    """A signed-in browser. The cookie carries a random token; only its hash is stored.
    `password_fingerprint` binds it to the password it was started with (accounts.service):
    setting another password, by any path, ends it."""

    __tablename__ = "web_sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    user_agent: Mapped[str] = mapped_column(String(400), default="")
    ip: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    password_fingerprint: Mapped[str] = mapped_column(String(32), server_default="")


# The name of a key made without one: stored, and answered by the API, as written; pages and
# emails show it in the reader's language (`service.shown_key_name`).
DEFAULT_KEY_NAME = N_("API key")


class ApiKey(Base):
    """Shown once at creation; stored as a SHA-256 hash (keys are long random strings)."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    prefix: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)


class RateCounter(Base):
    """A fixed-window counter (failed sign-ins per account or IP, sign-ups per IP). In the
    database so every process sees the same count."""

    __tablename__ = "rate_counters"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    window_start: Mapped[datetime] = mapped_column(UTCDateTime)
    count: Mapped[int] = mapped_column(Integer, default=0)


class PasswordResetToken(Base):
    """An emailed reset link; only its hash is stored and `used_at` makes it single-use.
    `credential_fingerprint` is the account's at issue (accounts.security): a link works only
    while the account's password, address and lock are still what they were then."""

    __tablename__ = "password_reset_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    credential_fingerprint: Mapped[str] = mapped_column(String(32), server_default="")


class RecoveryCode(Base):
    """A single-use 2FA recovery code, stored as an argon2id hash."""

    __tablename__ = "recovery_codes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    code_hash: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)


class KnownDevice(Base):
    """A (user agent, IP) pair that has signed in; a new one triggers an email. Forgotten
    after KNOWN_DEVICE_DAYS without a sign-in from it (then announced again if it comes back)."""

    __tablename__ = "known_devices"
    __table_args__ = (UniqueConstraint("user_id", "fingerprint", name="uq_known_devices_user_fp"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    user_agent: Mapped[str] = mapped_column(String(400), default="")
    ip: Mapped[str] = mapped_column(String(64), default="")
    first_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class EmailReservation(Base):
    """An address an account moved away from, kept for that account while the old address's
    undo link works (security.NOT_ME_MAX_AGE): nobody else may sign up with it or move to it
    meanwhile, so an intruder who changed the address cannot block the undo by taking the
    old one. Deleted with the account, by the retention sweep once expired, and by the undo."""

    __tablename__ = "email_reservations"

    address: Mapped[str] = mapped_column(String(320), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
