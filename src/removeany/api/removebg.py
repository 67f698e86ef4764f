"""`POST /v1.0/removebg` and `GET /v1.0/account`: remove.bg's API, so its clients work against a
RemoveAny server. Everything under /v1.0/ answers as remove.bg does: its error shape and codes
(`error_response`), CORS for browser apps (`RemoveBgCors`); /api/v1 keeps its own."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Coroutine
from http import HTTPStatus
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request, UploadFile
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from removeany.api import uploads
from removeany.api.auth import require_user
from removeany.api.contract import RemoveBgErrors
from removeany.api.submit import submit_job
from removeany.catalog.prices import PRICING_RULE
from removeany.context import Context
from removeany.credits import service as ledger
from removeany.engine.errors import ImageError, OptionError
from removeany.errors import DomainError
from removeany.infra.settings import Settings
from removeany.infra.storage import StorageUnavailable
from removeany.jobs import service as jobs
from removeany.jobs.processors import check_for_image, encode_background, validate_options
from removeany.jobs.service import job_reference

PREFIX = "/v1.0/"
FORMATS = {
    "auto": "auto",
    "png": "png",
    "jpg": "jpg",
    "jpeg": "jpg",
    "webp": "webp",
    "zip": "zip",
}
TRUE = {"true", "1", "yes", "on"}
JSON_FIELDS = (
    "image_file_b64",
    "image_url",
    "size",
    "format",
    "bg_color",
    "crop",
    "crop_margin",
    "channels",
    "type",
    "roi",
    "scale",
    "position",
    "add_shadow",
    "shadow_type",
    "bg_image_url",
    "type_level",
)
# remove.bg's classification levels; `none` leaves out the X-Type header.
TYPE_LEVELS = ("none", "1", "2", "latest")
# remove.bg's shadow types: each but `none` gets our one soft shadow.
SHADOW_TYPES = ("auto", "car", "3d", "drop", "none")
# Our error codes under the names remove.bg's clients check, with remove.bg's titles.
_REMOVEBG_CODES: dict[str, tuple[str, str]] = {
    "not_authenticated": ("auth_failed", "Missing API Key"),
    "invalid_api_key": ("auth_failed", "Invalid API Key"),
    "invalid_credentials": ("auth_failed", "Authentication failed"),
    "unsupported_format": ("invalid_file_type", "Invalid file type"),
    "animated_image": ("invalid_file_type", "Invalid file type"),
    "corrupt_image": ("failed_to_read_image", "Failed to read image"),
    "empty_file": ("failed_to_read_image", "Failed to read image"),
    "too_many_pixels": ("resolution_too_high", "Image resolution too high"),
    "output_too_large": ("resolution_too_high", "Image resolution too high"),
    "request_too_large": ("file_too_large", "File too large"),
}
_TITLES = {
    "missing_source": "No image given",
    "multiple_sources": "Multiple image sources given",
    "multiple_bg_sources": "Multiple background sources given",
    "image_url_unsupported": "Image URLs are not supported",
    "file_too_large": "File too large",
    "invalid_json": "Invalid JSON body",
    "invalid_request": "Invalid request",
    "invalid_bg_image": "Invalid background image",
    "unknown_foreground": "Could not identify foreground in image",
    "insufficient_credits": "Insufficient credits",
    "too_many_attempts": "Rate limit exceeded",
}
# The parameters whose `invalid_<name>` codes get remove.bg's "Invalid <name> parameter given".
_PARAMETERS = frozenset(JSON_FIELDS)
# What browser apps may send and read across origins.
_CORS_REQUEST_HEADERS = ["X-Api-Key", "Authorization", "Idempotency-Key"]
_CORS_RESPONSE_HEADERS = [
    "X-Credits-Charged",
    "X-Width",
    "X-Height",
    "X-Type",
    "X-Foreground-Top",
    "X-Foreground-Left",
    "X-Foreground-Width",
    "X-Foreground-Height",
]


def error_response(status: int, code: str, detail: str) -> JSONResponse:
    """An error as remove.bg answers it: `{"errors": [{"title", "code", "detail"}]}` with
    remove.bg's code and a short title; `detail` is our sentence saying what to do. Failed
    authentication is 403 `auth_failed`, as remove.bg documents."""
    code, title = _REMOVEBG_CODES.get(code, (code, _TITLES.get(code, "")))
    if code == "auth_failed":
        status = 403
    if not title and code.removeprefix("invalid_") in _PARAMETERS:
        title = f"Invalid {code.removeprefix('invalid_')} parameter given"
    error = {"title": title or HTTPStatus(status).phrase, "code": code, "detail": detail}
    return JSONResponse({"errors": [error]}, status_code=status)


def http_error(request: Request, exc: HTTPException) -> JSONResponse:
    """Starlette's own refusals under /v1.0/ (no such endpoint, wrong method, a form it cannot
    read) in remove.bg's shape, each with a sentence saying what to do."""
    if exc.status_code == 404:
        detail = (
            f"{request.url.path} is not offered by this server; it answers remove.bg's "
            "POST /v1.0/removebg and GET /v1.0/account."
        )
    elif exc.status_code == 405:
        allowed = (exc.headers or {}).get("Allow", "another method")
        detail = f"{request.method} is not allowed on {request.url.path}; use {allowed}."
    else:
        detail = f"The request could not be read: {exc.detail} Fix it and send it again."
    code = HTTPStatus(exc.status_code).phrase.lower().replace(" ", "_").replace("-", "_")
    response = error_response(exc.status_code, code, detail)
    response.headers.update(exc.headers or {})
    return response


def validation_detail(field: str, error: dict[str, Any]) -> str:
    """A sentence for a request FastAPI could not read into the route's parameters."""
    if field in ("image_file", "bg_image_file") and isinstance(error.get("input"), str):
        instead = ", or send the image as base64 in image_file_b64" if field == "image_file" else ""
        return (
            f"{field} came as text, not a file: send it as a file upload (multipart/form-data "
            f"with a filename){instead}."
        )
    return f"{field}: {error.get('msg')}. Fix it and retry."


def prefers_json(accept: str, media_type: str) -> bool:
    """Whether an Accept header rates JSON above the result's own `media_type`, by q-values; a
    tie goes to the image, as remove.bg does: axios sends `application/json, text/plain, */*`
    by default and remove.bg's Node sample writes what comes back to a .png file."""
    ranges = _media_ranges(accept)
    return _quality(ranges, "application/json") > _quality(ranges, media_type)


def _media_ranges(accept: str) -> list[tuple[str, str, float]]:
    """(type, subtype, q) for each media range of an Accept header; malformed ranges are
    skipped, a malformed q counts as 0."""
    ranges: list[tuple[str, str, float]] = []
    for item in accept.split(","):
        media, *params = (part.strip() for part in item.split(";"))
        main, slash, sub = media.lower().partition("/")
        if not (main and slash and sub):
            continue
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
                q = q if 0.0 <= q <= 1.0 else 0.0
        ranges.append((main, sub, q))
    return ranges


def _quality(ranges: list[tuple[str, str, float]], media_type: str) -> float:
    """The q of the most specific range that matches `media_type`; 0 when none does."""
    main, _, sub = media_type.lower().partition("/")
    best_rank, best_q = -1, 0.0
    for range_main, range_sub, q in ranges:
        if (range_main, range_sub) == (main, sub):
            rank = 2
        elif range_main == main and range_sub == "*":
            rank = 1
        elif (range_main, range_sub) == ("*", "*"):
            rank = 0
        else:
            continue
        if rank > best_rank:
            best_rank, best_q = rank, q
    return best_q


def _b64_limit(settings: Settings) -> int:
    """The largest base64 text an upload may come as (4/3 of its bytes), plus room for other
    fields."""
    return settings.max_upload_bytes * 4 // 3 + 4096


class _LargeFieldsRoute(APIRoute):
    """Reads a form whose text fields may be as large as an upload in base64: remove.bg's
    clients send image_file_b64 as a form field, past Starlette's 1 MB default. The request
    keeps the parsed form, so FastAPI's own read of it returns the same."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def read_form_first(request: Request) -> Response:
            await request.form(max_part_size=_b64_limit(request.app.state.ctx.settings))
            return await handler(request)

        return read_form_first


router = APIRouter(route_class=_LargeFieldsRoute)


class RemoveBgCors:
    """CORS under /v1.0/ only, as remove.bg answers (any origin, X-Api-Key allowed), so browser
    apps written for remove.bg work; the rest of the site stays same-origin. No credentials:
    a page on another site cannot act with a visitor's session here."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.cors = CORSMiddleware(
            app,
            allow_origins=["*"],
            allow_methods=["GET", "POST"],
            allow_headers=_CORS_REQUEST_HEADERS,
            expose_headers=_CORS_RESPONSE_HEADERS,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(PREFIX):
            await self.cors(scope, receive, send)
        else:
            await self.app(scope, receive, send)


def _options(fields: dict[str, str | None]) -> dict[str, Any]:
    """remove.bg's fields as the job's options (validated: bad values raise OptionError)."""
    fmt = (fields["format"] or "auto").lower()
    if fmt not in FORMATS:
        raise OptionError(
            "invalid_format", "format must be one of auto, png, jpg, jpeg, webp, zip."
        )
    size = (fields["size"] or "auto").lower()
    raw: dict[str, Any] = {
        "size": "50MP" if size == "50mp" else size,
        "format": FORMATS[fmt],
        "type": (fields["type"] or "auto").lower(),
        "bg_color": fields["bg_color"] or None,
        "crop": (fields["crop"] or "false").lower() in TRUE,
        "crop_margin": fields["crop_margin"] or None,
        "roi": fields["roi"] or None,
        "scale": fields["scale"] or None,
        "position": fields["position"] or None,
        "add_shadow": _wants_shadow(fields),
        "channels": fields["channels"] or "rgba",
    }
    return validate_options("remove_background", raw)


def _wants_shadow(fields: dict[str, str | None]) -> bool:
    """remove.bg's `shadow_type` decides when given; `add_shadow`, which it replaced,
    otherwise."""
    kind = (fields["shadow_type"] or "").lower()
    if not kind:
        return (fields["add_shadow"] or "false").lower() in TRUE
    if kind not in SHADOW_TYPES:
        raise OptionError(
            "invalid_shadow_type", "shadow_type must be one of auto, car, 3D, drop, none."
        )
    return kind != "none"


def _refuse_per_type_shadows(form: FormData) -> None:
    """`shadow_type[car]=...` picks a shadow per detected type, which needs the classifier
    this server does not have; refused rather than ignored, so nobody waits for a shadow."""
    if any(name.startswith("shadow_type[") for name in form):
        raise OptionError(
            "invalid_shadow_type",
            "Shadows per foreground type (shadow_type[...]) are not offered here. Send one "
            "shadow_type for the photo: auto, car, 3D, drop or none.",
        )


def _type_level(value: str | None) -> str:
    level = (value or "1").lower()
    if level not in TYPE_LEVELS:
        raise OptionError("invalid_type_level", "type_level must be one of none, 1, 2, latest.")
    return level


def _check_sources(
    image_file: UploadFile | None, bg_image_file: UploadFile | None, fields: dict[str, str | None]
) -> None:
    """remove.bg's rule: exactly one image source and at most one background."""
    sources = [image_file is not None, bool(fields["image_file_b64"]), bool(fields["image_url"])]
    if sum(sources) > 1:
        raise OptionError(
            "multiple_sources",
            "Send the image in one field only: image_file or image_file_b64 (this server does "
            "not fetch image_url).",
        )
    if not any(sources):
        raise OptionError(
            "missing_source",
            "Send the image as image_file (a file upload) or image_file_b64 (base64 text).",
        )
    backgrounds = [
        bool(fields["bg_color"]),
        bg_image_file is not None,
        bool(fields["bg_image_url"]),
    ]
    if sum(backgrounds) > 1:
        raise OptionError(
            "multiple_bg_sources", "Send one background: bg_color or bg_image_file, not both."
        )
    if fields["image_url"]:
        raise OptionError(
            "image_url_unsupported",
            "This server does not fetch URLs. Upload the file as image_file instead.",
        )
    if fields["bg_image_url"]:
        raise OptionError(
            "image_url_unsupported",
            "This server does not fetch URLs. Upload the background as bg_image_file.",
        )


async def _json_fields(request: Request) -> dict[str, str | None]:
    """The JSON form of the request: known fields only, booleans and numbers as their text."""
    limit = _b64_limit(request.app.state.ctx.settings)
    too_large = OptionError("file_too_large", "The request body is too large for this server.")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_large
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise too_large
    try:
        payload = json.loads(body)
    except ValueError:
        raise OptionError("invalid_json", "The request body is not valid JSON.") from None
    if not isinstance(payload, dict):
        raise OptionError("invalid_json", "Send the fields as one JSON object.")
    fields: dict[str, str | None] = {}
    for key in JSON_FIELDS:
        value = payload.get(key)
        if value is None:
            continue
        if isinstance(value, bool):
            fields[key] = "true" if value else "false"
        elif isinstance(value, str | int | float):
            fields[key] = str(value)
        else:
            raise OptionError("invalid_json", f"The field {key} must be a string.")
    return fields


_IMAGE = {"schema": {"type": "string", "format": "binary"}}
_REFUSED = {"model": RemoveBgErrors, "description": "Refused, in remove.bg's shape"}
_REMOVEBG_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The result: the image itself (X-Width, X-Height, X-Credits-Charged "
        "headers), or with Accept: application/json its base64 in `data.result_b64`",
        "content": {
            "image/png": _IMAGE,
            "image/jpeg": _IMAGE,
            "image/webp": _IMAGE,
            "application/zip": _IMAGE,
            "application/json": {"schema": {"type": "object"}},
        },
    },
    400: _REFUSED,
    402: _REFUSED,
    403: _REFUSED,
    413: _REFUSED,
    429: _REFUSED,
    500: _REFUSED,
    503: _REFUSED,
}


@router.post(
    "/v1.0/removebg",
    tags=["remove.bg compatible"],
    responses=_REMOVEBG_RESPONSES,
    description="Multipart or urlencoded form fields, or the same fields as a JSON object. "
    f"{PRICING_RULE} X-Credits-Charged says what this one cost.",
)
async def removebg(
    request: Request,
    image_file: UploadFile | None = None,
    image_file_b64: Annotated[str | None, Form()] = None,
    image_url: Annotated[str | None, Form()] = None,
    size: Annotated[str, Form()] = "auto",
    type: Annotated[str, Form()] = "auto",
    format: Annotated[str, Form()] = "auto",
    bg_color: Annotated[str | None, Form()] = None,
    bg_image_file: UploadFile | None = None,
    bg_image_url: Annotated[str | None, Form()] = None,
    crop: Annotated[str, Form()] = "false",
    crop_margin: Annotated[str | None, Form()] = None,
    roi: Annotated[str | None, Form()] = None,
    scale: Annotated[str | None, Form()] = None,
    position: Annotated[str | None, Form()] = None,
    add_shadow: Annotated[str, Form()] = "false",
    shadow_type: Annotated[str | None, Form()] = None,
    channels: Annotated[str, Form()] = "rgba",
    type_level: Annotated[str, Form()] = "1",
) -> Response:
    """Multipart or urlencoded form fields, or the same fields as a JSON object (remove.bg's
    clients send `{"image_file_b64": ..., "size": ...}` with `Content-Type: application/json`)."""
    ctx: Context = request.app.state.ctx
    fields: dict[str, str | None] = {
        "image_file_b64": image_file_b64,
        "image_url": image_url,
        "size": size,
        "format": format,
        "bg_color": bg_color,
        "crop": crop,
        "crop_margin": crop_margin,
        "channels": channels,
        "type": type,
        "roi": roi,
        "scale": scale,
        "position": position,
        "add_shadow": add_shadow,
        "shadow_type": shadow_type,
        "bg_image_url": bg_image_url,
        "type_level": type_level,
    }
    try:
        if request.headers.get("content-type", "").startswith("application/json"):
            fields.update(await _json_fields(request))
        else:
            _refuse_per_type_shadows(await request.form())
        _check_sources(image_file, bg_image_file, fields)
        options = _options(fields)
        level = _type_level(fields["type_level"])
        if bg_image_file is not None:
            background = await uploads.read_option_image(
                bg_image_file, ctx.settings, code="invalid_bg_image", what="The background image"
            )
            options["bg_image_jpg"] = encode_background(background)
        max_bytes = ctx.settings.max_upload_bytes
        if image_file is not None:
            data = await uploads.read_bounded(image_file, max_bytes)
            name = image_file.filename or "image"
        else:
            data = uploads.decode_b64(fields["image_file_b64"] or "", max_bytes)
            name = "image"
        image = uploads.validate(data, ctx.settings)
        check_for_image("remove_background", options, image)
        job = submit_job(
            ctx,
            request,
            service="remove_background",
            options=options,
            original=data,
            image=image,
            input_name=name,
        )
    except (ImageError, OptionError) as exc:
        return error_response(400, exc.code, exc.message)
    except DomainError as exc:
        return error_response(exc.status_code, exc.code, exc.addressed(ctx.settings.base_url))

    job = jobs.wait_until_finished(ctx.db, job.id, ctx.settings.job_wait_seconds)
    if job.status in ("queued", "running"):
        # The client is answered with an error and has no job id to fetch a result with:
        # the job is called off and never charged, unless it finished in the meantime.
        with ctx.db.transaction() as session:
            abandoned = jobs.abandon(session, job, ctx.now())
        if abandoned:
            return error_response(
                503, "timeout", "The server is busy. Try again in a minute; you were not charged."
            )
        job = jobs.wait_until_finished(ctx.db, job.id, 0.0)
    if job.status == "failed":
        user_error = job.error_code in _USER_ERRORS or (job.error_code or "").startswith("invalid_")
        status = 400 if user_error else 500
        detail = job.error_message or "Processing failed. Try again in a minute."
        return error_response(status, job.error_code or "failed", detail)
    if job.status == "cancelled" and job.error_code in _STOPPED_SERVICE:
        # the operator suspended or disabled the service while the job waited, uncharged
        return error_response(503, job.error_code, job.error_message or "")
    if job.status != "succeeded" or job.result_key is None:
        return error_response(503, "timeout", "The server is busy. Try again in a minute.")
    with ctx.db.transaction() as session:
        charged = ledger.charged_for(session, job_reference(job.id))
    try:
        body = ctx.storage.get(job.result_key)
    except StorageUnavailable:
        # The job succeeded and was charged, and its result is kept: only handing it over
        # failed, so the answer says where it is (not storage_unavailable's "Nothing was
        # charged", which is about a submission the outage interrupted).
        return error_response(
            503,
            "storage_unavailable",
            f"Your result was made ({charged} credit{'' if charged == 1 else 's'} charged), but "
            "file storage is unavailable right now. Download it in a few minutes from GET "
            f"/api/v1/jobs/{job.id}/result or from the jobs list on the website; sent again "
            "with the same Idempotency-Key, this request returns it without a second charge.",
        )
    headers = {
        "X-Credits-Charged": str(charged),
        "X-Width": str(job.result_width),
        "X-Height": str(job.result_height),
    }
    if level != "none":
        headers["X-Type"] = job.detected_type or "other"
    if job.foreground:
        for key in ("top", "left", "width", "height"):
            headers[f"X-Foreground-{key.title()}"] = str(job.foreground[key])
    media_type = job.result_media_type or "image/png"
    if prefers_json(request.headers.get("accept", ""), media_type):
        payload = {
            "data": {
                "result_b64": base64.b64encode(body).decode(),
                "foreground_top": (job.foreground or {}).get("top"),
                "foreground_left": (job.foreground or {}).get("left"),
                "foreground_width": (job.foreground or {}).get("width"),
                "foreground_height": (job.foreground or {}).get("height"),
            }
        }
        return JSONResponse(payload, headers=headers)
    return Response(body, media_type=media_type, headers=headers)


@router.get(
    "/v1.0/account",
    tags=["remove.bg compatible"],
    responses={
        200: {"description": "Credits left", "content": {"application/json": {}}},
        403: _REFUSED,
    },
)
def account(request: Request) -> JSONResponse:
    """remove.bg's account call, which its clients make to see what they may still spend.
    `total` is the sum of the kinds of credits, as on remove.bg: bought ones are pay-as-you-go,
    granted ones (sign-up, monthly, promotions, an admin's) the allowance remove.bg calls a
    subscription. `free_calls`, remove.bg's free previews on top of the credits, is 0: every
    result here costs credits."""
    ctx: Context = request.app.state.ctx
    try:
        with ctx.db.transaction() as session:
            user = require_user(ctx, session, request)
            credits = ledger.origins(session, user.id, ctx.now())
    except DomainError as exc:
        return error_response(exc.status_code, exc.code, exc.addressed(ctx.settings.base_url))
    total = credits.bought + credits.granted
    return JSONResponse(
        {
            "data": {
                "attributes": {
                    "credits": {
                        "total": total,
                        "subscription": credits.granted,
                        "payg": credits.bought,
                        "enterprise": 0,
                    },
                    "api": {"free_calls": 0, "sizes": "all"},
                }
            }
        }
    )


_STOPPED_SERVICE = ("service_suspended", "service_disabled")
_USER_ERRORS = {
    "unknown_foreground",
    "corrupt_image",
    "unsupported_format",
    "animated_image",
    "empty_file",
    "too_many_pixels",
    "output_too_large",
    "file_too_large",
    "invalid_bg_color",
    "invalid_crop_margin",
}
