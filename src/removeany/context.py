"""The platform's wiring: one object built from settings, shared by web, API, CLI and workers."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from removeany.engine.models import default_model_dir
from removeany.infra.db import Database, utcnow
from removeany.infra.installation import check_secret_key
from removeany.infra.mail import make_transport
from removeany.infra.queue import CeleryQueue, InlineQueue, Queue
from removeany.infra.ratelimit import SESSION_KEY, RedisCounters
from removeany.infra.settings import Settings
from removeany.infra.storage import Storage, make_storage
from removeany.mail.sender import MailSender
from removeany.operator_models import ServiceModels, register_operator_models


@dataclass
class Context:
    settings: Settings
    db: Database
    storage: Storage
    secret_key: str
    clock: Callable[[], datetime] = field(default=utcnow)
    queue: Queue | None = None
    stopping: threading.Event = field(default_factory=threading.Event)
    # Delivers the emails committed transactions wrote (`removeany.mail`), on this context's
    # clock.
    mail: MailSender = field(init=False)

    def __post_init__(self) -> None:
        self.mail = MailSender(self.db, make_transport(self.settings), self.settings, self.now)

    @property
    def model_dir(self) -> Path:
        return self.settings.model_dir or default_model_dir()

    @property
    def service_models(self) -> ServiceModels:
        return ServiceModels.from_settings(self.settings)

    def now(self) -> datetime:
        return self.clock()

    def start_queue(self) -> None:
        """Connect to the configured queue: in-process worker threads (the embedded default),
        or a Celery producer whose jobs `removeany worker` processes run."""
        if self.settings.queue_backend == "celery":
            self.queue = CeleryQueue(self.settings)
            return
        from removeany.jobs.worker import process_job

        self.queue = InlineQueue(
            lambda job_id: process_job(self, job_id), self.settings.inline_workers
        )

    def close(self) -> None:
        self.stopping.set()
        if self.queue is not None:
            self.queue.shutdown()
            self.queue = None
        self.mail.close()
        self.db.dispose()


def _session_info(settings: Settings) -> dict[str, object]:
    """What every session carries: the Redis throttle counters when they are configured."""
    if settings.rate_limit_backend != "redis":
        return {}
    url = settings.rate_limit_redis_url or settings.broker_url
    return {SESSION_KEY: RedisCounters(url, prefix=settings.rate_limit_prefix)}


def build_context(settings: Settings, *, migrate: bool = False) -> Context:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    register_operator_models(settings)
    db = Database(settings.sqlalchemy_url, session_info=_session_info(settings))
    if migrate:
        db.migrate()
    secret_key = settings.resolved_secret_key()
    ctx = Context(
        settings=settings,
        db=db,
        storage=make_storage(settings, secret_key=secret_key),
        secret_key=secret_key,
    )
    if migrate:
        # A process about to serve or change data: its key must be the installation's
        # (`SecretKeyMismatch` otherwise), before it writes anything under it.
        check_secret_key(db, secret_key, now=ctx.now())
        # Data the software brings, after the schema: the built-in terms where no operator
        # text is in force (a new installation, or an upgrade from an older built-in version).
        from removeany.legal.install import install_builtin_terms

        install_builtin_terms(ctx)
    return ctx
