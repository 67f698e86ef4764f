"""Issue #7 (trust) wiring for the app: account security, legal, moderation and privacy
routers, pages, and their error mapping. `app.py` calls `install(app)` once."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse

from removeany.accounts.security import TooManyAttempts
from removeany.accounts.security_routes import router as security_router
from removeany.api.removebg import error_response
from removeany.legal.routes import router as legal_router
from removeany.moderation.routes import public as status_router
from removeany.moderation.routes import router as admin_router
from removeany.privacy.routes import router as privacy_router


def _error(
    request: Request, status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    if request.url.path.startswith("/v1.0/"):
        response = error_response(status, code, message)
        response.headers.update(headers or {})
        return response
    return JSONResponse(
        {"error": {"code": code, "message": message}}, status_code=status, headers=headers
    )


def long_text_routers() -> tuple[APIRouter, ...]:
    """Publishing new terms (JSON or the admin page's form) sends their whole texts: these take
    bodies up to uploads.TEXT_BODY_LIMIT (api/limits.py)."""
    from removeany.moderation.pages import router as admin_pages

    return legal_router, admin_pages


def install(app: FastAPI) -> None:
    from removeany.accounts.pages import router as account_pages
    from removeany.legal.pages import router as legal_pages
    from removeany.notices import notices
    from removeany.web.routes import templates

    templates.env.globals["trust_notices"] = notices

    for router in (
        security_router,
        admin_router,
        status_router,
        privacy_router,
        account_pages,
        legal_pages,
        *long_text_routers(),
    ):
        app.include_router(router)

    @app.exception_handler(TooManyAttempts)
    async def too_many(request: Request, exc: TooManyAttempts) -> JSONResponse:
        return _error(request, 429, exc.code, exc.message, {"Retry-After": str(exc.retry_after)})

    @app.exception_handler(FileNotFoundError)
    async def file_gone(request: Request, exc: FileNotFoundError) -> JSONResponse:
        # A job's files were deleted (retention period, or on request) after the job was read.
        return _error(
            request,
            410,
            "file_deleted",
            "This file was deleted: images are kept only for a limited time, or until you "
            "delete them. Process the image again if you need it.",
        )
