"""The ASGI application: API, remove.bg endpoint and web pages over one Context."""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request, params
from fastapi.concurrency import run_in_threadpool
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from removeany import __version__, health
from removeany.accounts.routes import router as accounts_router
from removeany.api import contract, removebg, uploads
from removeany.api.limits import BodyLimits, BodyTooLarge, route_limits
from removeany.api.watermark import router as watermark_router
from removeany.batches.pages import router as batch_pages
from removeany.batches.routes import router as batches_router
from removeany.batches.submit import FORM_OVERHEAD
from removeany.billing.pages import router as billing_pages
from removeany.billing.routes import router as billing_router
from removeany.catalog.routes import router as catalog_router
from removeany.context import Context, build_context
from removeany.credits.routes import router as credits_router
from removeany.engine.errors import ImageError, OptionError
from removeany.errors import DomainError
from removeany.i18n import LocaleMiddleware
from removeany.infra.settings import Settings
from removeany.infra.storage import StorageMisconfigured
from removeany.jobs.pages import router as job_pages
from removeany.jobs.routes import router as jobs_router
from removeany.jobs.worker import resume_unfinished
from removeany.maintenance import Sweeper
from removeany.trust import install as install_trust
from removeany.trust import long_text_routers
from removeany.web.routes import (
    ResourceHeaders,
    not_found_page,
    server_error_page,
    static_files,
    too_large_page,
)
from removeany.web.routes import router as web_router
from removeany.web.trial import router as trial_router

log = logging.getLogger(__name__)


def create_app(ctx: Context | None = None, *, run_workers: bool = True) -> FastAPI:
    """Build the app. Without a context, one is built from settings and migrated."""
    owned = ctx is None
    context = ctx or build_context(Settings(), migrate=True)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        sweeper: Sweeper | None = None
        if context.queue is None:
            if context.settings.queue_backend == "celery":
                context.start_queue()  # a producer: `removeany worker` processes run the jobs
            elif run_workers:
                context.start_queue()
                resume_unfinished(context)
            sweeper = Sweeper(context, context.settings.sweep_interval_seconds)
            sweeper.start()
            context.mail.start()  # emails left unsent before a restart, and retries
        yield
        readiness.close()
        if sweeper is not None:
            sweeper.stop()
        if owned:
            context.close()

    app = FastAPI(
        title="RemoveAny",
        version=__version__,
        description="Background removal, portrait cutout, watermark removal and batches.",
        lifespan=lifespan,
        docs_url=None,  # /api/docs is web.routes.api_docs: FastAPI's page loads a CDN's scripts
        openapi_url="/api/openapi.json",
        redoc_url=None,
    )
    app.openapi = contract.document(app)  # type: ignore[method-assign]
    app.state.ctx = context
    # In celery mode `removeany worker` processes run the jobs, not this one.
    runs_jobs = run_workers and context.settings.queue_backend != "celery"
    readiness = app.state.readiness = health.Readiness(context, runs_jobs=runs_jobs)
    # The request's language (pages and emails): ?lang=, the `lang` cookie or Accept-Language.
    app.add_middleware(LocaleMiddleware, secure=context.settings.cookie_secure)
    app.add_middleware(removebg.RemoveBgCors)
    app.add_middleware(ResourceHeaders)
    app.include_router(health.router)
    app.include_router(removebg.router)
    app.include_router(accounts_router)
    app.include_router(credits_router)
    app.include_router(catalog_router)
    app.include_router(billing_router)
    app.include_router(jobs_router)
    app.include_router(watermark_router)
    app.include_router(batches_router)
    install_trust(app)
    app.include_router(batch_pages)
    app.include_router(web_router)
    app.include_router(trial_router)
    app.include_router(billing_pages)
    app.include_router(job_pages)
    photo = uploads.upload_body_limit(context.settings)
    batch = context.settings.batch_max_bytes + FORM_OVERHEAD
    bounds = [(r, photo) for r in (removebg.router, jobs_router, watermark_router, trial_router)]
    bounds += [(batches_router, batch), (batch_pages, batch)]
    bounds += [(r, uploads.TEXT_BODY_LIMIT) for r in long_text_routers()]
    app.add_middleware(BodyLimits, default=uploads.BODY_LIMIT, routes=route_limits(bounds))
    app.mount("/static", static_files(), name="static")
    _install_error_handlers(app)
    # Added last: outside every other middleware, so an error in one of them is caught too.
    app.add_middleware(ServerErrors)
    return app


def _error(request: Request, status: int, code: str, message: str) -> JSONResponse:
    if request.url.path.startswith(removebg.PREFIX):
        return removebg.error_response(status, code, message)
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


def _is_page_form(request: Request) -> bool:
    """A web page's form (not the APIs, not a page script that asked for JSON)."""
    path = request.url.path
    if path.startswith(("/api/", removebg.PREFIX)):
        return False
    return "application/json" not in request.headers.get("accept", "")


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def domain_error(request: Request, exc: DomainError) -> JSONResponse:
        if isinstance(exc, StorageMisconfigured):  # the user reads storage_unavailable
            log.error("file storage refuses this server: %s", exc.reason)
        base_url = request.app.state.ctx.settings.base_url
        return _error(request, exc.status_code, exc.code, exc.addressed(base_url))

    @app.exception_handler(ImageError)
    async def image_error(request: Request, exc: ImageError) -> JSONResponse:
        return _error(request, 400, exc.code, exc.message)

    @app.exception_handler(OptionError)
    async def option_error(request: Request, exc: OptionError) -> JSONResponse:
        return _error(request, 400, exc.code, exc.message)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {"loc": ["body"], "msg": "invalid"}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body") or "request"
        if request.url.path.startswith(removebg.PREFIX):  # remove.bg answers 400 to any of it
            detail = removebg.validation_detail(where, first)
            return removebg.error_response(400, "invalid_request", detail)
        if _not_json(request, first):
            return _error(
                request,
                415,
                "unsupported_media_type",
                "The body must be a JSON object. Send it with Content-Type: application/json.",
            )
        if _not_a_form(request, exc.errors()):
            return _error(
                request,
                415,
                "unsupported_media_type",
                "The body must be a form. Send it as multipart/form-data, files included.",
            )
        if first.get("type") == "json_invalid":
            return _error(
                request,
                422,
                "invalid_json",
                f"The body is not valid JSON (at character {where}). Fix it and retry.",
            )
        return _error(
            request, 422, "invalid_request", f"{where}: {first.get('msg')}. Fix it and retry."
        )

    @app.exception_handler(Exception)
    async def server_error(request: Request, exc: Exception) -> Response:
        # Only what escapes ServerErrors (FastAPI's own outer middleware): Starlette logs and
        # raises it again after this answer.
        log_server_error(request.scope, exc)
        return internal_error_response(request)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        path = request.url.path
        if exc.status_code == 413:  # api/limits.py: a body over its route's bound
            if isinstance(exc, BodyTooLarge) and _is_page_form(request):
                return await run_in_threadpool(too_large_page, request, exc.limit)
            return _error(request, 413, "request_too_large", str(exc.detail))
        if path.startswith(removebg.PREFIX):
            return removebg.http_error(request, exc)
        if path.startswith("/api/") and exc.status_code in (404, 405):
            return _api_refusal(request, exc)
        browsing = "text/html" in request.headers.get("accept", "")
        if exc.status_code == 404 and browsing and not path.startswith("/api/"):
            return await run_in_threadpool(not_found_page, request)
        return await http_exception_handler(request, exc)


# A proxy's or client's X-Request-ID, quoted in the log line when it looks like an id (no
# spaces or line breaks to forge other lines with).
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:/+=-]{1,128}")


def log_server_error(scope: Scope, exc: BaseException) -> None:
    """One log line, with the traceback, for a request the server failed."""
    where = f"{scope.get('method', '')} {scope.get('path', '')!r}"
    raw = dict(scope.get("headers") or ()).get(b"x-request-id", b"").decode("latin-1")
    if _REQUEST_ID.fullmatch(raw):
        where += f" (request id {raw})"
    log.error("unhandled error on %s", where, exc_info=exc)


def internal_error_response(request: Request) -> Response:
    """Anything no handler answers: a bug, or a failure of the machine (a database, a disk).
    The caller gets no internals: on /api/ and /v1.0/ internal_error in that API's shape, on
    a page the error page in the visitor's language."""
    if request.url.path.startswith(("/api/", removebg.PREFIX)):  # /v1.0/: remove.bg's shape
        return _error(
            request,
            500,
            "internal_error",
            "Something went wrong on the server. Try again in a moment; if it keeps "
            "happening, tell the site's operator.",
        )
    return server_error_page(request)


class ServerErrors:
    """Answers a request whose handling raised, and logs its traceback once. Starlette's own
    last handler (ServerErrorMiddleware) answers with the app's handler for Exception but then
    raises the error again "so that servers can log it": under uvicorn every such traceback
    was logged twice, once by that handler and once as "Exception in ASGI application".
    Here the error ends with its answer. One raised after the answer began (a download or an
    event stream cut short) cannot be answered any more: it is logged, and the connection is
    left for the server to close."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def sending(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, sending)
        except Exception as exc:
            log_server_error(scope, exc)
            if started:
                return
            request = Request(scope, receive)
            response = await run_in_threadpool(internal_error_response, request)
            await response(scope, receive, send)


def _not_json(request: Request, error: dict[str, Any]) -> bool:
    """A JSON body's route was sent something else (a form, text/plain): FastAPI hands the
    model the raw bytes and reports a type error on the whole body."""
    if tuple(error.get("loc", ())) != ("body",):
        return False
    if error.get("type") not in ("model_attributes_type", "dict_type"):
        return False
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    return not (content_type == "application/json" or content_type.endswith("+json"))


_FORMS = ("multipart/form-data", "application/x-www-form-urlencoded")


def _not_a_form(request: Request, errors: Sequence[Any]) -> bool:
    """A form's API route (a photo upload) was sent JSON or a bare body: FastAPI reads no
    form and reports its fields missing ("file: Field required")."""
    route = request.scope.get("route")
    body = getattr(route, "body_field", None)
    if body is None or not isinstance(body.field_info, params.Form):
        return False
    if not request.url.path.startswith("/api/"):
        return False
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type in _FORMS:
        return False
    return any(tuple(error.get("loc", ()))[:1] == ("body",) for error in errors)


def _api_refusal(request: Request, exc: HTTPException) -> JSONResponse:
    """Starlette's own 404 (no such address) and 405 (wrong method) under /api/ in the JSON
    API's shape, like every other refusal there."""
    path = request.url.path
    if exc.status_code == 405:
        # Starlette's Allow names the first route at this path only (POST for /api/v1/jobs,
        # which GET answers too).
        allowed = ", ".join(
            method
            for method in ("DELETE", "GET", "PATCH", "POST", "PUT")
            if any(
                route.matches({**request.scope, "method": method})[0] is Match.FULL
                for route in request.app.router.routes
            )
        )
        response = _error(
            request,
            405,
            "method_not_allowed",
            f"{request.method} is not allowed on {path}; use {allowed}.",
        )
        response.headers["Allow"] = allowed
        return response
    return _error(
        request,
        404,
        "not_found",
        f"There is no {path} in this API. The addresses it offers are listed at "
        f"{request.app.state.ctx.settings.base_url.rstrip('/')}/api/docs.",
    )
