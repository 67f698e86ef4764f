"""Job queues behind one interface. The embedded default runs jobs on in-process threads;
scaled deployments publish to Celery on Redis and run `removeany worker` processes. Both run
the same task, `jobs.worker.process_job`."""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from celery import Celery

    from removeany.infra.settings import Settings

log = logging.getLogger(__name__)


class Queue(Protocol):
    def enqueue(self, job_id: str) -> None: ...
    def shutdown(self) -> None: ...


class InlineQueue:
    """Runs `handler(job_id)` on a small thread pool inside the web process."""

    def __init__(self, handler: Callable[[str], None], workers: int):
        self._handler = handler
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="removeany-job")

    def enqueue(self, job_id: str) -> None:
        """A wake-up sent while the pool shuts down (a job given back as `serve` stops) is
        dropped: the job is queued in the database, and the next start runs it."""
        try:
            future = self._pool.submit(self._handler, job_id)
        except RuntimeError:
            log.info("wake-up for %s dropped: the worker threads are stopping", job_id)
            return
        future.add_done_callback(_log_crash)

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=False)


def _log_crash(future: Future[None]) -> None:
    exc = future.exception()
    if exc is not None:
        log.error("job handler crashed", exc_info=exc)


TASK_NAME = "removeany.process_job"


def celery_app(settings: Settings) -> Celery:
    """The Celery application both producers (web) and `removeany worker` use.

    Messages are acknowledged after the task ran (acks_late) and given back if the worker
    process dies mid-task (reject_on_worker_lost); one message at a time per process
    (prefetch 1) so a busy worker does not sit on others' work."""
    from celery import Celery

    app = Celery("removeany", broker=settings.broker_url, set_as_current=False)
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_acks_on_failure_or_timeout=True,
        task_ignore_result=True,
        task_default_queue=settings.queue_name,
        task_serializer="json",
        accept_content=["json"],
        worker_prefetch_multiplier=1,
        worker_hijack_root_logger=False,
        broker_connection_retry_on_startup=True,
        broker_transport_options={"visibility_timeout": settings.broker_visibility_timeout},
        task_routes={TASK_NAME: {"queue": settings.queue_name}},
    )
    return app


class CeleryQueue:
    """Publishes wake-up messages to Redis; `removeany worker` processes consume them."""

    def __init__(self, settings: Settings):
        self.app = celery_app(settings)
        self.queue_name = settings.queue_name

    def enqueue(self, job_id: str) -> None:
        """A wake-up that cannot be published (Redis down) is logged, not raised: the job is
        already committed, and the workers' sweepers send wake-ups while work is queued, so
        it runs once Redis is back. Raising would answer 500 for an accepted, charged job."""
        from kombu.exceptions import OperationalError

        try:
            self.app.send_task(TASK_NAME, args=[job_id], queue=self.queue_name)
        except OperationalError as exc:
            log.warning("wake-up for %s not published (%s); sweepers re-send it", job_id, exc)

    def shutdown(self) -> None:
        self.app.close()


class BrokerProbe:
    """For readiness probes: a PING to the broker's Redis over a connection kept between
    probes, each attempt bounded by `timeout`. Raises redis' ConnectionError or TimeoutError
    while Redis cannot be reached."""

    def __init__(self, settings: Settings, *, timeout: float):
        import redis

        self._client = redis.Redis.from_url(
            settings.broker_url, socket_connect_timeout=timeout, socket_timeout=timeout
        )

    def ping(self) -> None:
        self._client.ping()

    def close(self) -> None:
        self._client.close()
