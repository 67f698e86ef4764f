"""`removeany worker`: a Celery worker process on Redis running the same task code as the
embedded queue (`jobs.worker.process_job`), plus a lease sweeper.

The sweeper runs as a thread inside every process that executes tasks (each prefork child,
started after its fork; the main process for the solo and threads pools). It never runs in a
prefork parent: a thread there would be forked into every new child mid-flight (and children
deadlocked on the locks it held), and the parent opens no database connection at all.

SIGTERM starts Celery's warm shutdown in the main process, which waits for the running tasks.
The signal is passed on to the processes running them (`_shutdown`, shared with the prefork
children), whose contexts then stop: a job waiting out a bucket outage stops waiting and goes
back on the queue at once (`jobs.worker`), instead of holding the shutdown for up to
`STORAGE_RETRY_SECONDS`."""

from __future__ import annotations

import logging
import multiprocessing
import threading
from typing import TYPE_CHECKING, Protocol

from removeany.infra.queue import TASK_NAME, celery_app
from removeany.infra.settings import Settings

if TYPE_CHECKING:
    from celery import Celery

    from removeany.context import Context

log = logging.getLogger(__name__)


class _Flag(Protocol):
    def set(self) -> None: ...
    def wait(self, timeout: float | None = None) -> bool: ...


_lock = threading.Lock()
_state: dict[str, Context | None] = {"ctx": None}
# Set when this worker's warm shutdown begins: a threading.Event for the solo and threads
# pools, replaced by one prefork children inherit (build_worker_app).
_shutdown: dict[str, _Flag] = {"flag": threading.Event()}


def _task_context(settings: Settings) -> Context:
    """One Context per worker process, built after the fork (connections never cross it)."""
    with _lock:
        ctx = _state["ctx"]
        if ctx is None:
            import removeany.models_registry  # noqa: F401  (every table, for FK resolution)
            from removeany.context import build_context

            ctx = build_context(settings)
            ctx.start_queue()
            _state["ctx"] = ctx
            threading.Thread(
                target=_stop_on_shutdown,
                args=(_shutdown["flag"], ctx),
                name="removeany-shutdown",
                daemon=True,
            ).start()
        return ctx


def _stop_on_shutdown(flag: _Flag, ctx: Context) -> None:
    flag.wait()
    ctx.stopping.set()


def build_worker_app(settings: Settings, *, sweeper: bool = True, forks: bool = True) -> Celery:
    from celery.signals import (
        worker_process_init,
        worker_process_shutdown,
        worker_ready,
        worker_shutting_down,
    )

    app = celery_app(settings)
    if forks:
        # Created before the pool forks its children, so each of them waits on the same one.
        _shutdown["flag"] = multiprocessing.get_context("fork").Event()

    @worker_shutting_down.connect(weak=False)  # type: ignore[untyped-decorator]
    def _shutting_down(**_kwargs: object) -> None:
        # In the main process's signal handler. No thread of this process waits on the flag
        # while holding its lock for long (prefork: only the children wait on it; solo and
        # threads: only the _stop_on_shutdown threads), so setting it here cannot deadlock.
        _shutdown["flag"].set()

    @app.task(name=TASK_NAME, acks_late=True, reject_on_worker_lost=True)  # type: ignore[untyped-decorator]
    def process(job_id: str) -> None:
        from removeany.jobs.worker import process_job

        process_job(_task_context(settings), job_id)

    def start_sweeper() -> None:
        if sweeper:
            Sweeper(settings).start()

    if forks:

        @worker_process_init.connect(weak=False)  # type: ignore[untyped-decorator]
        def _child_started(**_kwargs: object) -> None:
            _state["ctx"] = None
            start_sweeper()

        @worker_process_shutdown.connect(weak=False)  # type: ignore[untyped-decorator]
        def _child_exiting(**_kwargs: object) -> None:
            ctx = _state["ctx"]
            if ctx is not None:
                ctx.close()
                _state["ctx"] = None

    else:

        @worker_ready.connect(weak=False)  # type: ignore[untyped-decorator]
        def _ready(**_kwargs: object) -> None:
            start_sweeper()

    return app


class Sweeper(threading.Thread):
    """Every `lease_sweep_seconds`: re-queue jobs whose worker vanished (lease expired) and
    send a wake-up if work is waiting (insurance against lost messages). Any number of
    sweepers may run at once: every change they make is a conditional UPDATE."""

    def __init__(self, settings: Settings):
        super().__init__(name="removeany-sweeper", daemon=True)
        self.settings = settings

    def run(self) -> None:
        from removeany.jobs.worker import sweep_stale, wake

        ctx = _task_context(self.settings)
        while not ctx.stopping.wait(self.settings.lease_sweep_seconds):
            try:
                sweep_stale(ctx)
                wake(ctx)
            except Exception:
                log.exception("lease sweep failed")


def run_worker(
    settings: Settings, *, concurrency: int, pool: str, loglevel: str, sweeper: bool = True
) -> None:
    if settings.queue_backend != "celery":
        raise SystemExit(
            "removeany worker needs REMOVEANY_QUEUE_BACKEND=celery (and REMOVEANY_BROKER_URL); "
            "the embedded default runs jobs inside `removeany serve`."
        )
    app = build_worker_app(settings, sweeper=sweeper, forks=pool == "prefork")
    app.worker_main(
        [
            "worker",
            f"--concurrency={concurrency}",
            f"--pool={pool}",
            f"--loglevel={loglevel}",
            f"--queues={settings.queue_name}",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        ]
    )


def check_worker(settings: Settings, *, timeout: float) -> tuple[bool, str]:
    """Whether a `removeany worker` of this host answers through the broker and consumes this
    installation's queue (for a container's HEALTHCHECK), and a line saying so. Every worker
    on a host is named `celery@HOST`, so all their answers are collected, until none has
    come for `timeout` seconds: one of another installation sharing the Redis database
    answers too. A worker's main process answers, so a busy prefork or threads pool still does;
    with `--pool solo` the main process runs the jobs (up to 10 per queue message) and
    answers only between them."""
    from celery.utils.nodenames import default_nodename
    from kombu.exceptions import OperationalError

    node = default_nodename(None)
    app = celery_app(settings)
    app.conf.broker_connection_timeout = timeout
    try:
        with app.connection_for_write() as connection:
            connection.ensure_connection(max_retries=1, interval_start=0, interval_step=0)
            # By pattern, not destination: kombu stops at the first answer from a destination.
            replies = app.control.broadcast(
                "active_queues",
                pattern=node,
                matcher="glob",
                reply=True,
                timeout=timeout,
                connection=connection,
            )
    except OperationalError as exc:
        return False, f"cannot reach the broker: {exc}"
    finally:
        app.close()
    answers = [reply[node] for reply in replies or [] if node in reply]
    if not answers:
        return False, f"no worker {node} answered within {timeout:g} s"
    if not any(queue.get("name") == settings.queue_name for queues in answers for queue in queues):
        return False, f"worker {node} answers but does not consume the queue {settings.queue_name}"
    return True, f"worker {node} answers and consumes the queue {settings.queue_name}"
