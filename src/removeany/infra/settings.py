"""Operator settings (REMOVEANY_* environment variables); the embedded default needs none."""

from __future__ import annotations

import contextlib
import os
import secrets
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="REMOVEANY_", env_file=None, extra="ignore")

    data_dir: Path = Path("data")
    database_url: str | None = None
    model_dir: Path | None = None
    # Operator ONNX models: a JSON file with a list of {name, file, sha256, input_size, mean,
    # std}; every file is verified against its hash when the platform starts.
    custom_models: Path | None = None
    # The model each cutout service runs: a built-in name or one from custom_models (unset:
    # the engine's defaults, see operator_models.ServiceModels).
    cutout_model: str | None = None
    portrait_model: str | None = None
    secret_key: str | None = None
    base_url: str = "http://127.0.0.1:8000"

    mail_backend: Literal["outbox", "smtp"] = "outbox"
    mail_from: str = "RemoveAny <no-reply@removeany.local>"
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 25
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_starttls: bool = False
    # Emails wait in the database until delivered (docs/deployment.md, Mail): a failed one is
    # tried again with growing pauses (30 s, doubled, at most an hour) for this long, then
    # given up and shown to administrators.
    mail_retry_hours: float = Field(default=24.0, gt=0)
    # How often each sender looks for emails other processes wrote, and retries that are due.
    mail_poll_seconds: float = Field(default=15.0, gt=0)
    # Sent emails (bodies emptied at once) and given-up ones are deleted after this long.
    mail_keep_sent_hours: float = Field(default=24.0, gt=0)
    mail_keep_failed_days: float = Field(default=7.0, gt=0)

    queue_backend: Literal["inline", "celery"] = "inline"
    inline_workers: int = Field(default=1, ge=1)
    job_wait_seconds: float = 120.0
    # Scale-out (docs/deployment.md): Celery on Redis, leases, fairness, batch limits, S3.
    broker_url: str = "redis://127.0.0.1:6379/0"
    # Where sign-in, sign-up, try-out and detection throttles count: the database (embedded
    # default) or Redis (scaled: REMOVEANY_RATE_LIMIT_REDIS_URL, default the broker's URL).
    rate_limit_backend: Literal["database", "redis"] = "database"
    rate_limit_redis_url: str | None = None
    rate_limit_prefix: str = "removeany:rate:"
    queue_name: str = "removeany"
    broker_visibility_timeout: int = Field(default=3600, ge=1)
    worker_concurrency: int = Field(default=1, ge=1)
    job_lease_seconds: float = Field(default=300.0, gt=0)
    # How often a running job's worker looks whether the job is still its own (cancelled, or
    # settled or re-queued elsewhere), so a job called off stops holding its worker within
    # seconds; the heartbeat itself is written every third of the lease.
    job_check_seconds: float = Field(default=2.0, gt=0)
    lease_sweep_seconds: float = Field(default=30.0, gt=0)
    max_running_jobs_per_user: int = Field(default=4, ge=1)
    batch_max_items: int = Field(default=5000, ge=1)
    batch_max_bytes: int = Field(default=2 * 1024**3, ge=1)
    batch_max_pixels: int = Field(default=5_000_000_000, ge=1)
    batch_page_items: int = Field(default=100, ge=1)  # files listed per page of a batch

    storage_backend: Literal["local", "s3"] = "local"
    s3_bucket: str | None = None
    s3_endpoint_url: str | None = None
    s3_region: str = "us-east-1"
    s3_access_key_id: str | None = None
    s3_secret_access_key: str | None = None
    s3_prefix: str = ""
    s3_presign_seconds: int = Field(default=900, ge=1)
    # How long a worker keeps retrying, with backoff, a job whose original or result the
    # bucket cannot read or write right now (connection refused, timeouts, 5xx, SlowDown);
    # the job stays running meanwhile and fails uncharged (storage_unavailable) after it.
    storage_retry_seconds: float = Field(default=300.0, ge=0)
    # Encrypt stored originals and results at rest (AES-256-GCM, key derived from the secret
    # key); downloads are then streamed through the app instead of presigned.
    encrypt_files: bool = False

    signup_credits: int = Field(default=10, ge=0)
    signup_credit_days: int = Field(default=30, ge=1)
    signup_grants_per_ip_per_day: int = Field(default=3, ge=0)
    monthly_free_credits: int = Field(default=0, ge=0)
    paid_credit_days: int = Field(default=365, ge=1)
    # How long credits an administrator grants last when the grant names no days (the admin
    # console, `removeany admin credits`, the admin API, `removeany users create --credits`):
    # the terms promise that every credit expires.
    admin_credit_days: int = Field(default=365, ge=1)
    expiry_warning_days: int = Field(default=7, ge=0)
    reserve_ttl_seconds: int = 3600
    sweep_interval_seconds: float = Field(default=60.0, gt=0)

    # Unset: the sandbox's test checkout on a local (http) site, Stripe on an https one, so that
    # a public site never hands out credits for nothing because its operator left the default.
    payment_provider: Literal["sandbox", "stripe"] = "sandbox"
    stripe_secret_key: str | None = None
    stripe_webhook_secret: str | None = None
    stripe_api_base: str = "https://api.stripe.com"

    max_upload_bytes: int = 25 * 1024 * 1024
    max_upload_pixels: int = 36_000_000

    session_days: int = 14
    # Cookies only over https; unset: whether base_url is an https address.
    cookie_secure: bool = False
    # Addresses of reverse proxies whose X-Forwarded-For/-Proto are believed (comma-separated,
    # or "*"); the client address they report is what throttling and audit records see.
    trusted_proxies: str = "127.0.0.1"

    # Trust (issue #7): throttling, reset links, retention.
    login_failures_per_account: int = Field(default=10, ge=1)
    login_failures_per_ip: int = Field(default=50, ge=1)
    login_window_seconds: int = Field(default=900, ge=1)
    signups_per_ip: int = Field(default=10, ge=1)
    signup_window_seconds: int = Field(default=3600, ge=1)
    password_reset_minutes: int = Field(default=60, ge=1)
    retention_hours: float = Field(default=24.0, gt=0)
    # A known device (browser and IP, remembered to announce sign-ins from new ones) is
    # forgotten after this many days without a sign-in from it.
    known_device_days: int = Field(default=90, ge=1)
    # Trying the service on the home page without an account (a preview-size cut-out,
    # never stored): tries per client address per hour; 0 turns the try-out off.
    trial_per_ip_per_hour: int = Field(default=5, ge=0)

    @model_validator(mode="after")
    def _secure_cookies_over_https(self) -> Settings:
        """A site served over https sends its session cookie only over https, even when the
        operator did not also set REMOVEANY_COOKIE_SECURE."""
        if "cookie_secure" not in self.model_fields_set:
            self.cookie_secure = self.base_url.startswith("https://")
        return self

    @model_validator(mode="after")
    def _no_test_checkout_on_a_public_site(self) -> Settings:
        """A site served over https takes payments through Stripe unless the operator chose
        the sandbox (a demo): there, anyone may "buy" credits on the test page. Without
        Stripe's keys, buying answers that payments are not configured."""
        if "payment_provider" not in self.model_fields_set and self.base_url.startswith("https://"):
            self.payment_provider = "stripe"
        return self

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
        """A configured key, else one generated once and kept in the data dir. Processes
        starting together on a new data dir all use the first key written: each writes one
        under a name of its own, readable by this user only, and links it into place, which
        never replaces a key already there."""
        if self.secret_key:
            return self.secret_key
        path = self.data_dir / "secret_key"
        if not path.exists():
            self.data_dir.mkdir(parents=True, exist_ok=True)
            candidate = path.with_name(f"secret_key.{secrets.token_hex(8)}.tmp")
            fd = os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as out:
                out.write(secrets.token_urlsafe(48))
            try:
                with contextlib.suppress(FileExistsError):
                    os.link(candidate, path)
            finally:
                candidate.unlink()
        return path.read_text().strip()


@lru_cache
def get_settings() -> Settings:
    return Settings()
