"""`POST /v1.0/removebg` and `GET /v1.0/account`: remove.bg's API, so its clients work against a
RemoveAny server."""

from __future__ import annotations

import base64
import json
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request, UploadFile
from fastapi.responses import JSONResponse, Response

from removeany.api import uploads
from removeany.api.auth import require_user
from removeany.api.submit import submit_job
from removeany.context import Context
from removeany.credits import service as ledger
from removeany.engine.errors import ImageError, OptionError
from removeany.errors import DomainError
from removeany.jobs import service as jobs
from removeany.jobs.processors import encode_background, validate_options
from removeany.jobs.service import job_reference

router = APIRouter()

FORMATS = {
    "auto": "png",
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
    "bg_image_url",
)


def error_response(status: int, code: str, title: str) -> JSONResponse:
    return JSONResponse({"errors": [{"title": title, "code": code}]}, status_code=status)


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
        "add_shadow": (fields["add_shadow"] or "false").lower() in TRUE,
        "channels": fields["channels"] or "rgba",
    }
    return validate_options("remove_background", raw)


async def _json_fields(request: Request) -> dict[str, str | None]:
    """The JSON form of the request: known fields only, booleans and numbers as their text."""
    # Base64 is 4/3 of the file, plus room for the other fields.
    limit = request.app.state.ctx.settings.max_upload_bytes * 4 // 3 + 4096
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


@router.post("/v1.0/removebg", tags=["remove.bg compatible"])
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
    channels: Annotated[str, Form()] = "rgba",
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
        "bg_image_url": bg_image_url,
    }
    try:
        if request.headers.get("content-type", "").startswith("application/json"):
            fields.update(await _json_fields(request))
        options = _options(fields)
        if fields["bg_image_url"]:
            return error_response(
                400,
                "image_url_unsupported",
                "This server does not fetch URLs. Upload the background as bg_image_file.",
            )
        if bg_image_file is not None:
            background = await uploads.read_option_image(
                bg_image_file, ctx.settings, code="invalid_bg_image", what="The background image"
            )
            options["bg_image_jpg"] = encode_background(background)
        max_bytes = ctx.settings.max_upload_bytes
        if image_file is not None:
            data = await uploads.read_bounded(image_file, max_bytes)
            name = image_file.filename or "image"
        elif fields["image_file_b64"]:
            data = uploads.decode_b64(fields["image_file_b64"], max_bytes)
            name = "image"
        elif fields["image_url"]:
            return error_response(
                400,
                "image_url_unsupported",
                "This server does not fetch URLs. Upload the file as image_file instead.",
            )
        else:
            return error_response(
                400, "missing_image", "Send the image as image_file or image_file_b64."
            )
        image = uploads.validate(data, ctx.settings)
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
        return error_response(exc.status_code, exc.code, exc.message)

    job = jobs.wait_until_finished(ctx.db, job.id, ctx.settings.job_wait_seconds)
    if job.status == "failed":
        user_error = job.error_code in _USER_ERRORS or (job.error_code or "").startswith("invalid_")
        status = 400 if user_error else 500
        return error_response(status, job.error_code or "failed", job.error_message or "")
    if job.status != "succeeded" or job.result_key is None:
        return error_response(503, "timeout", "The server is busy. Try again in a minute.")
    with ctx.db.transaction() as session:
        charged = ledger.charged_for(session, job_reference(job.id))
    body = ctx.storage.get(job.result_key)
    headers = {
        "X-Credits-Charged": str(charged),
        "X-Width": str(job.result_width),
        "X-Height": str(job.result_height),
        "X-Type": job.detected_type or "other",
    }
    if job.foreground:
        for key in ("top", "left", "width", "height"):
            headers[f"X-Foreground-{key.title()}"] = str(job.foreground[key])
    if "application/json" in request.headers.get("accept", ""):
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
    return Response(body, media_type=job.result_media_type, headers=headers)


@router.get("/v1.0/account", tags=["remove.bg compatible"])
def account(request: Request) -> JSONResponse:
    """remove.bg's account call, which its clients make to see what they may still spend. There
    are no subscriptions here: bought credits are reported as pay-as-you-go, granted ones (sign
    up, monthly, promotions, an admin's) as the free calls."""
    ctx: Context = request.app.state.ctx
    try:
        with ctx.db.transaction() as session:
            user = require_user(ctx, session, request)
            credits = ledger.origins(session, user.id, ctx.now())
    except DomainError as exc:
        return error_response(exc.status_code, exc.code, exc.message)
    total = credits.bought + credits.granted
    return JSONResponse(
        {
            "data": {
                "attributes": {
                    "credits": {
                        "total": total,
                        "subscription": 0,
                        "payg": credits.bought,
                        "enterprise": 0,
                    },
                    "api": {"free_calls": credits.granted, "sizes": "all"},
                }
            }
        }
    )


_USER_ERRORS = {
    "unknown_foreground",
    "corrupt_image",
    "unsupported_format",
    "too_many_pixels",
    "file_too_large",
    "invalid_bg_color",
    "invalid_crop_margin",
}
