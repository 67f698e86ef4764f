"""Probes for load balancers and orchestrators (docs/deployment.md, Health probes).

`GET /healthz` (liveness) answers 200 as long as the process serves requests; it checks
nothing else, so a database outage never gets a replica restarted. `GET /readyz` (readiness)
answers 200 when this process can do its work, else 503, with each check's state:

    {"status": "ready", "checks": {"database": "ok", "migrations": "ok", "storage": "ok",
     "models": "ok", "queue": "ok"}}

database: a connection answers (`infra.db.SchemaProbe`); migrations: the schema is at this
release's heads ("pending", "newer"; "unknown" while the database cannot be read); storage:
the data folder may be written to, or the bucket answers a HEAD (`infra.storage
.readiness_check`: "refused" for wrong keys, no bucket, no permission); models: the weights
this process runs are in place and intact ("missing", "altered"; hashed once, then checked by
size and time); queue, with REMOVEANY_QUEUE_BACKEND=celery only: the broker's Redis answers
a PING. "unavailable" means no answer or an error, "timeout" no answer within READY_TIMEOUT.
The body names states only: the reasons (which host refused, which setting to fix) go to the
log, once each time a check's state changes, never to an unauthenticated caller.

Each check runs on a thread of its own and a probe waits at most READY_TIMEOUT for all of
them; a check still waiting from an earlier probe (a database that accepted the connection
but does not answer) is waited on again rather than started twice, so stuck calls never
pile up however often the probes come."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, wait
from typing import TYPE_CHECKING

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError

from removeany.engine.errors import ModelError
from removeany.engine.models import get_model, model_path, verify_model
from removeany.infra.db import SchemaProbe
from removeany.infra.queue import BrokerProbe
from removeany.infra.storage import StorageMisconfigured, StorageUnavailable, readiness_check
from removeany.operator_models import ServiceModels

if TYPE_CHECKING:
    from removeany.context import Context

log = logging.getLogger(__name__)

# Seconds a probe waits for its checks; orchestrators' probe timeouts should allow 3.
READY_TIMEOUT = 2.0
# Left out of serve's access log (`infra.logs.server_log_config`).
PROBE_PATHS = ("/healthz", "/readyz")
_NO_STORE = {"Cache-Control": "no-store"}
_UNREAD = ("unknown", "the database cannot be read")

# A check's findings: check name -> (state, the reason for the log or None).
Findings = dict[str, tuple[str, str | None]]

router = APIRouter(include_in_schema=False)


@router.api_route("/healthz", methods=["GET", "HEAD"])
async def healthz() -> JSONResponse:
    return JSONResponse({"status": "ok"}, headers=_NO_STORE)


@router.api_route("/readyz", methods=["GET", "HEAD"])
def readyz(request: Request) -> JSONResponse:
    readiness: Readiness = request.app.state.readiness
    checks = readiness.report()
    ready = all(state == "ok" for state in checks.values())
    return JSONResponse(
        {"status": "ready" if ready else "not_ready", "checks": checks},
        status_code=200 if ready else 503,
        headers=_NO_STORE,
    )


class _Check:
    """One dependency check, at most one call of it at a time, each on its own daemon thread
    (a call stuck on a silent peer must not hold up the process's exit)."""

    def __init__(self, name: str, call: Callable[[], Findings], waiting: Findings):
        self.name = name
        self.call = call
        self.waiting = waiting  # what a probe reports while the call has not answered
        self._lock = threading.Lock()
        self._pending: Future[Findings] | None = None

    def start(self) -> Future[Findings]:
        with self._lock:
            if self._pending is None or self._pending.done():
                self._pending = Future()
                threading.Thread(
                    target=self._run, args=(self._pending,), name=f"readyz-{self.name}", daemon=True
                ).start()
            return self._pending

    def _run(self, future: Future[Findings]) -> None:
        try:
            future.set_result(self.call())
        except Exception as exc:  # a bug in a check reads as the dependency's failure
            reason = f"{type(exc).__name__}: {exc}"
            future.set_result({name: ("unavailable", reason) for name in self.waiting})


class Readiness:
    """The checks /readyz runs for this process, and the log of their changes."""

    def __init__(self, ctx: Context, *, runs_jobs: bool):
        settings = ctx.settings
        self._schema = SchemaProbe(settings.sqlalchemy_url, timeout=READY_TIMEOUT)
        self._storage = readiness_check(settings, timeout=READY_TIMEOUT)
        self._broker = (
            BrokerProbe(settings, timeout=READY_TIMEOUT)
            if settings.queue_backend == "celery"
            else None
        )
        self._models = [
            (setting, name, ctx.model_dir)
            for setting, name in ServiceModels.run_by(settings, runs_jobs=runs_jobs)
        ]
        late = ("timeout", f"no answer within {READY_TIMEOUT:g} s")
        self._checks = [
            _Check(
                "database",
                self._check_database,
                {"database": late, "migrations": _UNREAD},
            ),
            _Check("storage", self._check_storage, {"storage": late}),
            _Check("models", self._check_models, {"models": late}),
        ]
        if self._broker is not None:
            self._checks.append(_Check("queue", self._check_queue, {"queue": late}))
        self._logged: dict[str, str] = {}
        self._log_lock = threading.Lock()

    def report(self) -> dict[str, str]:
        """Each check's state, waiting at most READY_TIMEOUT for them all."""
        started = [(check, check.start()) for check in self._checks]
        wait([future for _, future in started], timeout=READY_TIMEOUT)
        findings: Findings = {}
        for check, future in started:
            findings.update(future.result() if future.done() else check.waiting)
        self._log_changes(findings)
        return {name: state for name, (state, _reason) in findings.items()}

    def close(self) -> None:
        self._schema.dispose()
        if self._broker is not None:
            self._broker.close()

    def _log_changes(self, findings: Findings) -> None:
        with self._log_lock:
            for name, (state, reason) in findings.items():
                if self._logged.get(name, "ok") == state:
                    continue
                self._logged[name] = state
                if state == "ok":  # at WARNING too, which serve's log shows
                    log.warning("readiness: %s is ok again", name)
                else:
                    log.warning("readiness: %s %s: %s", name, state, reason)

    def _check_database(self) -> Findings:
        try:
            schema = self._schema.schema()
        except SQLAlchemyError as exc:
            # The driver's own first line: never the URL, which may hold a password.
            reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
            return {"database": ("unavailable", reason), "migrations": _UNREAD}
        why = {
            "pending": "the schema is behind this release: run `removeany migrate`",
            "newer": "a newer release migrated the database: run that release",
        }.get(schema)
        return {"database": ("ok", None), "migrations": (schema, why)}

    def _check_storage(self) -> Findings:
        try:
            self._storage()
        except StorageMisconfigured as exc:
            return {"storage": ("refused", exc.reason)}
        except StorageUnavailable as exc:
            return {"storage": ("unavailable", str(exc.__cause__ or "the folder is missing"))}
        return {"storage": ("ok", None)}

    def _check_models(self) -> Findings:
        for setting, name, model_dir in self._models:
            spec = get_model(name)  # registered at start, or the process would not be serving
            path = model_path(spec, model_dir)
            try:
                verify_model(spec, path)
            except ModelError as exc:
                state = "altered" if path.exists() else "missing"
                return {"models": (state, f"{setting} ({name}): {exc.message}")}
        return {"models": ("ok", None)}

    def _check_queue(self) -> Findings:
        import redis

        assert self._broker is not None
        try:
            self._broker.ping()
        except redis.RedisError as exc:
            return {"queue": ("unavailable", str(exc))}
        return {"queue": ("ok", None)}
