"""Job queues behind one interface. The embedded default runs jobs on in-process threads."""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Protocol

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
        self._pool.submit(self._handler, job_id).add_done_callback(_log_crash)

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=False)


def _log_crash(future: Future[None]) -> None:
    exc = future.exception()
    if exc is not None:
        log.error("job handler crashed", exc_info=exc)
