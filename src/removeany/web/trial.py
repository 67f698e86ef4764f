"""Trying the service before signing up: one photo on the home page, a preview-size cut-out.

The upload is decoded, scaled to the preview budget (at most 0.25 megapixels) and run through
the engine inside the request; the preview goes back in the response as a `data:` URL. Nothing
is stored: no file, no job, no credit entry. The only row written is the throttle counter of
the client's address (accounts.security), `REMOVEANY_TRIAL_PER_IP_PER_HOUR` tries an hour.

The form posts with the pre-session signed token (`_render_form` / `_check_form_token`). The
home page's script sends the same form with `Accept: application/json` and shows the answer in
place; without JavaScript the home page is rendered again with the preview or the error.
Errors a visitor can cause carry the JSON API's stable codes and sentences.
"""

from __future__ import annotations

import base64
import threading
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from PIL import Image

from removeany import i18n
from removeany.accounts import security
from removeany.accounts.security import TooManyAttempts
from removeany.api import uploads
from removeany.api.auth import client_ip
from removeany.context import Context
from removeany.engine.compose import SIZE_BUDGETS, fit_pixels
from removeany.engine.errors import ImageError, ModelError, OptionError
from removeany.engine.io import OutputFormat, encode_image
from removeany.errors import DomainError, NotFound
from removeany.jobs import processors
from removeany.moderation import service as moderation
from removeany.operator_models import ServiceModels
from removeany.web.routes import _check_form_token, _ctx, _headers, signed_out_home, t

router = APIRouter(include_in_schema=False)

TRIAL_SIZE = "preview"
TRIAL_WINDOW = timedelta(hours=1)
# Try-outs run the engine in the web process: at most this many at once, the others wait.
_RUNNING = threading.BoundedSemaphore(2)


class TrialLimitReached(DomainError):
    status_code = 429
    code = "trial_limit_reached"

    def __init__(self, message: str, retry_after: int):
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True)
class Preview:
    """A try-out's answer: both images as `data:` URLs, never written anywhere."""

    before: str
    after: str
    width: int
    height: int
    tries_left: int


def trial_key(ip: str) -> str:
    return f"trial:ip:{ip}"


def _limit_reached(limit: int, retry_after: int) -> TrialLimitReached:
    minutes = max(1, (retry_after + 59) // 60)
    if minutes == 1:
        message = t(
            "You have used the {limit} free tries of this hour. Sign up free to keep going, "
            "or try again in a minute.",
            limit=limit,
        )
    else:
        message = t(
            "You have used the {limit} free tries of this hour. Sign up free to keep going, "
            "or try again in {minutes} minutes.",
            limit=limit,
            minutes=minutes,
        )
    return TrialLimitReached(message, retry_after)


def _check_limit(ctx: Context, ip: str, *, count: bool) -> int:
    """Refuse once this address has used its tries; with `count`, use one. Returns how many
    tries are left after this one."""
    limit = ctx.settings.trial_per_ip_per_hour
    with ctx.db.transaction() as session:
        # A try is background removal: suspended or disabled by the operator, so is the try.
        moderation.require_service_available(session, "remove_background")
        try:
            security.throttle_check(
                session,
                trial_key(ip),
                limit=limit,
                window=TRIAL_WINDOW,
                now=ctx.now(),
                what="tries",
            )
        except TooManyAttempts as exc:
            raise _limit_reached(limit, exc.retry_after) from None
        if not count:
            return limit
        used = security.throttle_hit(session, trial_key(ip), window=TRIAL_WINDOW, now=ctx.now())
    return max(0, limit - used)


def _data_url(image: Image.Image, fmt: OutputFormat) -> str:
    """Written as results are (`encode_image`): with the photo's colour profile, as the
    cut-out beside it has, and no other metadata."""
    data = encode_image(image, fmt, quality=85)
    media = "image/jpeg" if fmt == "jpg" else "image/png"
    return f"data:{media};base64,{base64.b64encode(data).decode('ascii')}"


def cut_out_preview(
    image: Image.Image, model_dir: Path, models: ServiceModels
) -> tuple[str, str, int, int]:
    """The before and after previews of a decoded upload, as `data:` URLs (CPU work: call it
    from a worker thread)."""
    small = fit_pixels(image, SIZE_BUDGETS[TRIAL_SIZE])
    with _RUNNING:
        out = processors.run(
            "remove_background",
            small,
            {"size": TRIAL_SIZE, "format": "png"},
            model_dir,
            models=models,
        )
    after = f"data:image/png;base64,{base64.b64encode(out.data).decode('ascii')}"
    before = _data_url(small, "png" if small.mode == "RGBA" else "jpg")
    return before, after, out.width, out.height


async def _preview(ctx: Context, request: Request, upload: UploadFile | None) -> Preview:
    if ctx.settings.trial_per_ip_per_hour <= 0:
        raise NotFound(
            t("Trying without an account is turned off on this server. Sign up to continue."),
            code="trial_disabled",
        )
    ip = client_ip(request)
    # Refuse early, before reading the photo. (Database work runs off the event loop.)
    await run_in_threadpool(_check_limit, ctx, ip, count=False)
    if upload is None or (not upload.filename and not upload.size):
        raise DomainError(t("Choose a photo first."), code="invalid_request", status_code=422)
    data = await uploads.read_bounded(upload, ctx.settings.max_upload_bytes)
    image = uploads.validate(data, ctx.settings)
    del data
    # A try is used once the photo is readable: a wrong file does not cost one.
    left = await run_in_threadpool(_check_limit, ctx, ip, count=True)
    try:
        before, after, width, height = await run_in_threadpool(
            cut_out_preview, image, ctx.model_dir, ctx.service_models
        )
    except ModelError:
        raise DomainError(
            t("The image engine is not available right now. Try again later."),
            code="engine_unavailable",
            status_code=503,
        ) from None
    return Preview(before, after, width, height, left)


def _wants_json(request: Request) -> bool:
    return "application/json" in request.headers.get("accept", "")


def _status_and_message(exc: Exception) -> tuple[int, str, str]:
    if isinstance(exc, ImageError | OptionError):
        return 400, exc.code, exc.message
    assert isinstance(exc, DomainError)
    return exc.status_code, exc.code, exc.message


@router.post("/try", response_class=Response)
async def try_it(
    request: Request,
    file: Annotated[UploadFile | None, File()] = None,
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    """One photo, a preview-size cut-out, nothing stored. Answers JSON to the page's script
    (`Accept: application/json`), else the home page with the preview."""
    ctx = _ctx(request)
    try:
        _check_form_token(request, csrf_token)
        preview = await _preview(ctx, request, file)
    except (DomainError, ImageError, OptionError) as exc:
        status, code, message = _status_and_message(exc)
        headers = {}
        if isinstance(exc, TrialLimitReached):
            headers["Retry-After"] = str(exc.retry_after)
        # The API's code and sentence; the sentence in the page's language (i18n.py).
        text = i18n.error_text(message, code)
        if _wants_json(request):
            response: Response = JSONResponse(
                {"error": {"code": code, "message": text}}, status_code=status, headers=headers
            )
            return _headers(response)
        page = await run_in_threadpool(
            lambda: signed_out_home(request, status_code=status, trial_error=text)
        )
        page.headers.update(headers)
        return page
    finally:
        if file is not None:
            await file.close()
    if _wants_json(request):
        return _headers(
            JSONResponse(
                {
                    "result": preview.after,
                    "width": preview.width,
                    "height": preview.height,
                    "tries_left": preview.tries_left,
                }
            )
        )
    return await run_in_threadpool(lambda: signed_out_home(request, trial=preview))
