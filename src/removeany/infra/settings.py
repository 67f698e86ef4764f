"""Operator settings (REMOVEANY_* environment variables); the embedded default needs none."""

from __future__ import annotations

import secrets
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="REMOVEANY_", env_file=None, extra="ignore")

    data_dir: Path = Path("data")
    database_url: str | None = None
    model_dir: Path | None = None
    secret_key: str | None = None
    base_url: str = "http://127.0.0.1:8000"

    mail_backend: Literal["outbox", "smtp"] = "outbox"
    mail_from: str = "RemoveAny <no-reply@removeany.local>"
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 25
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_starttls: bool = False

    queue_backend: Literal["inline"] = "inline"
    inline_workers: int = Field(default=1, ge=1)
    job_wait_seconds: float = 120.0

    signup_credits: int = Field(default=10, ge=0)
    signup_credit_days: int = Field(default=30, ge=1)
    reserve_ttl_seconds: int = 3600

    max_upload_bytes: int = 25 * 1024 * 1024
    max_upload_pixels: int = 36_000_000
    default_model: str = "u2netp"

    session_days: int = 14
    cookie_secure: bool = False

    @property
    def sqlalchemy_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'removeany.db').resolve()}"

    @property
    def outbox_dir(self) -> Path:
        return self.data_dir / "outbox"

    @property
    def files_dir(self) -> Path:
        return self.data_dir / "files"

    def resolved_secret_key(self) -> str:
        """A configured key, else one generated once and kept in the data dir."""
        if self.secret_key:
            return self.secret_key
        path = self.data_dir / "secret_key"
        if not path.exists():
            self.data_dir.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            tmp.write_text(secrets.token_urlsafe(48))
            tmp.chmod(0o600)
            tmp.replace(path)
        return path.read_text().strip()


@lru_cache
def get_settings() -> Settings:
    return Settings()
