"""Request bodies bounded before anything reads them.

FastAPI reads a JSON body whole before validating it, so one request could otherwise hold any
amount of memory. Each route's bound is set by what it takes (a photo, a batch, the texts of
new terms; else `uploads.BODY_LIMIT`). A body over it is refused with 413 as an HTTPException
raised while the body is read, so the app's error handlers answer it in the caller's shape
(the JSON API's, remove.bg's, or for a web form a page in the visitor's language), with a
sentence (FastAPI's own `max_body_size` answers a plain "Content Too Large" that no
handler can replace).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from fastapi import APIRouter
from starlette.exceptions import HTTPException
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class BodyTooLarge(HTTPException):
    def __init__(self, limit: int) -> None:
        self.limit = limit
        super().__init__(
            status_code=413,
            detail=f"The request is larger than this address takes ({limit // (1024 * 1024)} "
            "MB). Send a smaller file, or fewer at once.",
        )


def route_limits(routers: Iterable[tuple[APIRouter, int]]) -> list[tuple[re.Pattern[str], int]]:
    """Each route of these routers with the bound of its router."""
    return [
        (route.path_regex, limit)
        for router, limit in routers
        for route in router.routes
        if isinstance(route, Route)
    ]


class BodyLimits:
    """Refuses a body over its route's bound: by its declared Content-Length before reading,
    and by counting what is read when it declares none (chunked)."""

    def __init__(
        self, app: ASGIApp, *, default: int, routes: list[tuple[re.Pattern[str], int]]
    ) -> None:
        self.app = app
        self.default = default
        self.routes = routes

    def limit_for(self, path: str) -> int:
        return next((limit for regex, limit in self.routes if regex.match(path)), self.default)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["path"])
        declared = _content_length(scope)
        seen = 0

        async def bounded() -> Message:
            nonlocal seen
            if declared is not None and declared > limit:
                raise BodyTooLarge(limit)
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLarge(limit)
            return message

        await self.app(scope, bounded, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
