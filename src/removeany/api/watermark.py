"""`POST /api/v1/watermark/detect`: where the watermark is in a photo, as a mask to show and
correct before paying for a removal (the watermark editor, /app/watermark).

Free, and nothing is stored: the upload is decoded, the text detector runs, the mask is
answered and everything is forgotten. Each signed-in person (session cookie + X-CSRF-Token,
or an API key) may ask DETECT_LIMIT times per DETECT_WINDOW; the count uses the same throttle
counters as sign-in (accounts/security.py).

Request: multipart/form-data with `file` (JPG, PNG, WebP, ... as for /api/v1/jobs).

Answer 200, `image/png`: a black-and-white mask, white where the watermark is. It is at the
size of the upright photo (EXIF rotation applied, as jobs see it), or, when the photo's longest
side is over WORK_SIDE pixels, reduced to a longest side of WORK_SIDE (scale it up to the
photo's size before sending it as `mask_file` to /api/v1/jobs). Headers:

    X-Image-Width, X-Image-Height   the upright photo's size
    X-Mask-Width, X-Mask-Height     the mask's size
    X-Mask-Scale                    mask width / photo width ("1" when not reduced)
    X-Watermark-Found               "true" when any pixel is marked, else "false"
    X-Watermark-Coverage            fraction of the mask's pixels marked, e.g. "0.0213"
    X-Credits-Charged               always "0"
    X-RateLimit-Limit, X-RateLimit-Remaining   detections per window, and what is left

Errors are the API's JSON `{"error": {"code", "message"}}`: 400 with the upload codes
(`file_too_large`, `unsupported_format`, `corrupt_image`, `too_many_pixels`), 401
`not_authenticated`, 403 (`csrf_failed`, `account_restricted`, ...), 429 `too_many_attempts`
with Retry-After, 503 `detector_unavailable` when the text detector is not installed. A refused
file still counts towards the limit (decoding it was work).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated

import numpy as np
from fastapi import APIRouter, File, Request, UploadFile
from fastapi.responses import Response
from PIL import Image
from starlette.concurrency import run_in_threadpool

from removeany.accounts import security
from removeany.api import uploads
from removeany.api.auth import require_user
from removeany.api.contract import AUTH, errors
from removeany.context import Context
from removeany.engine.watermark import detect_mask, load_text_detector
from removeany.errors import DomainError
from removeany.moderation.gate import check_submission

router = APIRouter(prefix="/api/v1", tags=["watermark"])

DETECT_LIMIT = 30
DETECT_WINDOW = timedelta(hours=1)
# Longest side of the answered mask; the detector itself looks at 640 pixels, so nothing is
# lost, and the editor's canvas and the answer stay small for very large photos.
WORK_SIDE = 2048


class DetectorUnavailable(DomainError):
    status_code = 503
    code = "detector_unavailable"


def detect_key(user_id: int) -> str:
    """The throttle counter of one person's detections."""
    return f"watermark-detect:user:{user_id}"


@dataclass(frozen=True)
class Detected:
    png: bytes
    image_size: tuple[int, int]
    mask_size: tuple[int, int]
    coverage: float


def _admit(ctx: Context, request: Request, *, count: bool) -> int:
    """Who is asking and whether they may; with `count`, one more hit on their counter. The
    detections left in this window."""
    with ctx.db.transaction() as session:
        user = require_user(ctx, session, request)
        check_submission(session, user, "remove_watermark")
        key = detect_key(user.id)
        security.throttle_check(
            session,
            key,
            limit=DETECT_LIMIT,
            window=DETECT_WINDOW,
            now=ctx.now(),
            what="watermark detections",
        )
        if not count:
            return DETECT_LIMIT
        hits = security.throttle_hit(session, key, window=DETECT_WINDOW, now=ctx.now())
    return max(0, DETECT_LIMIT - hits)


def _detect(ctx: Context, image: Image.Image) -> Detected:
    detector = load_text_detector(ctx.model_dir)
    if detector is None:
        raise DetectorUnavailable(
            "Finding watermarks is not available on this server right now. Paint over the "
            "watermark yourself, or ask the operator to install the models."
        )
    mask = detect_mask(image, detector, max_side=WORK_SIDE)
    buf = io.BytesIO()
    Image.fromarray(mask).save(buf, "PNG", optimize=True)
    height, width = mask.shape
    return Detected(
        png=buf.getvalue(),
        image_size=image.size,
        mask_size=(width, height),
        coverage=float(np.mean(mask)) if mask.size else 0.0,
    )


@router.post(
    "/watermark/detect",
    response_class=Response,
    responses={
        200: {"content": {"image/png": {}}, "description": "The mask, white = watermark"},
        **errors(*AUTH, 400, 415, 429, 503),
    },
)
async def detect_watermark(
    request: Request,
    file: Annotated[UploadFile, File(description="The photo to look for a watermark in")],
) -> Response:
    """Find the watermark in a photo without removing it or charging anything: a PNG mask
    (white = watermark) plus its size and scale in headers. Limited per person and hour."""
    ctx: Context = request.app.state.ctx
    # Refused early, before the photo is read; a detection is used once the photo is readable,
    # so a wrong file does not cost one.
    await run_in_threadpool(lambda: _admit(ctx, request, count=False))
    data = await uploads.read_bounded(file, ctx.settings.max_upload_bytes)
    image = await run_in_threadpool(uploads.validate, data, ctx.settings)
    remaining = await run_in_threadpool(lambda: _admit(ctx, request, count=True))
    found = await run_in_threadpool(_detect, ctx, image)
    scale = found.mask_size[0] / found.image_size[0]
    return Response(
        found.png,
        media_type="image/png",
        headers={
            "X-Image-Width": str(found.image_size[0]),
            "X-Image-Height": str(found.image_size[1]),
            "X-Mask-Width": str(found.mask_size[0]),
            "X-Mask-Height": str(found.mask_size[1]),
            "X-Mask-Scale": "1" if scale == 1 else f"{scale:.6f}",
            "X-Watermark-Found": "true" if found.coverage > 0 else "false",
            "X-Watermark-Coverage": f"{found.coverage:.4f}",
            "X-Credits-Charged": "0",
            "X-RateLimit-Limit": str(DETECT_LIMIT),
            "X-RateLimit-Remaining": str(remaining),
            "Cache-Control": "no-store",
        },
    )
