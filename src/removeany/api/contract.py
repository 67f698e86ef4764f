"""What the OpenAPI document (/api/openapi.json, shown at /api/docs) says the API answers.

Every refusal under /api/v1 is `{"error": {"code", "message"}}` (app.py), FastAPI's own
validation errors and Starlette's 404/405 included; under /v1.0/ it is remove.bg's
`{"errors": [{"title", "code", "detail"}]}`. FastAPI documents neither: it lists a 422 with
its own `{"detail": [...]}` body, which this server never sends. `errors()` declares a route's
refusals with the real body, and `document()` corrects what FastAPI generates: the 422s, the
413 every body can get (api/limits.py), the 415 of a JSON body sent as something else, a
`4XX` entry for any other refusal, whose `error.code` says which it is, and a `5XX` entry:
a failure of the server itself, `internal_error` (in remove.bg's shape under /v1.0/).
"""

from __future__ import annotations

from collections.abc import Callable
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, Field


class ErrorDetail(BaseModel):
    code: str = Field(description="Stable, machine-readable: e.g. not_found, invalid_request")
    message: str = Field(description="What went wrong and what to do, in English")


class ErrorBody(BaseModel):
    """Every refusal of the JSON API."""

    error: ErrorDetail


class RemoveBgError(BaseModel):
    title: str
    code: str
    detail: str


class RemoveBgErrors(BaseModel):
    """Every refusal of the remove.bg-compatible API, in remove.bg's shape."""

    errors: list[RemoveBgError]


# Why each status is answered, for the document's descriptions.
_WHY = {
    400: "The upload or an option is invalid (`error.code` says which)",
    401: "Not authenticated: send an API key in X-Api-Key (or Authorization: Bearer); "
    "at sign-in, the password or code is wrong",
    402: "Not enough credits",
    403: "Refused: the key is wrong or revoked, the account may not do this, or the CSRF "
    "token is missing",
    404: "No such thing, or not yours",
    409: "Conflicts with the current state",
    410: "Gone: expired, or its files were deleted",
    413: "The request body is larger than this address takes",
    415: "The body is not the kind this operation reads: JSON (Content-Type: "
    "application/json), or a form (multipart/form-data) for uploads",
    422: "A parameter or the body is invalid (`error.message` names the field)",
    429: "Too many attempts: wait (Retry-After) and try again",
    503: "Temporarily unavailable (the service is suspended, or storage is down): try later",
}

AUTH = (401, 403)  # every route that needs a signed-in caller


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """A route's refusals for its `responses=`, each with the JSON API's error body."""
    return {
        status: {"model": ErrorBody, "description": _WHY.get(status, HTTPStatus(status).phrase)}
        for status in statuses
    }


def _ref(name: str) -> dict[str, Any]:
    return {"application/json": {"schema": {"$ref": f"#/components/schemas/{name}"}}}


def _refusal(status: int | str, body: str) -> dict[str, Any]:
    why = _WHY.get(status) if isinstance(status, int) else None
    return {"description": why or "Refused: `code` says why", "content": _ref(body)}


def _correct(path: str, operation: dict[str, Any]) -> None:
    removebg = path.startswith("/v1.0/")
    body = "RemoveBgErrors" if removebg else "ErrorBody"
    responses: dict[str, Any] = operation["responses"]
    if "422" in responses:
        if removebg:  # remove.bg answers 400 to any invalid parameter
            del responses["422"]
            responses.setdefault("400", _refusal(400, body))
        else:
            responses["422"] = _refusal(422, body)
    sent = operation.get("requestBody", {}).get("content", {})
    if sent:
        responses.setdefault("413", _refusal(413, body))
    if "application/json" in sent and not removebg:
        responses.setdefault("415", _refusal(415, body))
    responses.setdefault("4XX", _refusal("4XX", body))
    # app.py: anything unhandled is `internal_error`, in remove.bg's shape under /v1.0/
    responses.setdefault(
        "5XX",
        {
            "description": "The server failed (`internal_error`): try again in a moment, "
            "or tell the site's operator if it keeps happening",
            "content": _ref(body),
        },
    )


def document(app: FastAPI) -> Callable[[], dict[str, Any]]:
    """app.openapi: FastAPI's document with the refusals as this server really answers them."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        doc = get_openapi(
            title=app.title,
            version=app.version,
            description=app.description,
            routes=app.routes,
        )
        for path, operations in doc.get("paths", {}).items():
            for operation in operations.values():
                _correct(path, operation)
        schemas = doc.setdefault("components", {}).setdefault("schemas", {})
        for model in (ErrorDetail, ErrorBody, RemoveBgError, RemoveBgErrors):
            schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
            schema.pop("$defs", None)
            schemas.setdefault(model.__name__, schema)
        for unused in ("HTTPValidationError", "ValidationError"):
            schemas.pop(unused, None)  # FastAPI's 422 body, which this server never sends
        app.openapi_schema = doc
        return doc

    return openapi
