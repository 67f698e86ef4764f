"""JSON API for jobs: submit an image, follow it, download the result."""

from __future__ import annotations

import json
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, File, Form, Query, Request, UploadFile
from fastapi.responses import RedirectResponse, Response, StreamingResponse

from removeany.api import paging, uploads
from removeany.api.auth import require_user
from removeany.api.contract import AUTH, errors
from removeany.api.submit import submit_job
from removeany.catalog.prices import PRICING_RULE
from removeany.context import Context
from removeany.credits import service as ledger
from removeany.engine.errors import OptionError
from removeany.engine.io import sniff_format
from removeany.errors import NotFound
from removeany.jobs import results_zip as zips
from removeany.jobs import service as jobs
from removeany.jobs.models import Job
from removeany.jobs.processors import (
    MEDIA_TYPES,
    check_for_image,
    encode_background,
    encode_mask,
    validate_options,
)
from removeany.jobs.schemas import JobOut

router = APIRouter(prefix="/api/v1", tags=["jobs"])


def job_out(job: Job, charged: int) -> JobOut:
    return JobOut(
        id=job.id,
        service=job.service,
        status=job.status,
        cost=job.cost,
        charged=charged,
        input_name=job.input_name,
        input_width=job.input_width,
        input_height=job.input_height,
        result_width=job.result_width,
        result_height=job.result_height,
        result_url=f"/api/v1/jobs/{job.id}/result" if job.status == "succeeded" else None,
        original_url=f"/api/v1/jobs/{job.id}/original",
        error_code=job.error_code,
        error_message=job.error_message,
        detected_type=job.detected_type,
        created_at=job.created_at,
        finished_at=job.finished_at,
    )


def _charged_out(ctx: Context, job: Job) -> JobOut:
    with ctx.db.transaction() as session:
        return job_out(job, ledger.charged_for(session, jobs.job_reference(job.id)))


@router.post(
    "/jobs",
    responses=errors(*AUTH, 400, 402, 415, 503),
    status_code=202,
    response_model=JobOut,
    description=f"Submit an image to a service. {PRICING_RULE}",
)
async def create_job(
    request: Request,
    response: Response,
    file: Annotated[UploadFile, File(description="The image to process")],
    service: Annotated[
        str, Form(description="remove_background, portrait, id_photo or remove_watermark")
    ] = "remove_background",
    size: Annotated[
        str | None,
        Form(description="Output size (preview ... full, 50MP); for id_photo 1inch or 2inch"),
    ] = None,
    format: Annotated[
        str | None,
        Form(
            description="png, jpg, webp, zip (color.jpg + alpha.png), or auto (jpg when "
            "nothing is transparent, else png)"
        ),
    ] = None,
    type: Annotated[
        str | None,
        Form(description="Foreground type: auto, person (portrait path), product, animal, ..."),
    ] = None,
    bg_color: Annotated[
        str | None, Form(description="Hex (81d4fa, fff, 81d4fa77, fff8) or a CSS colour name")
    ] = None,
    bg_image_file: Annotated[
        UploadFile | None, File(description="A photo to put behind the cutout")
    ] = None,
    crop: Annotated[bool | None, Form()] = None,
    crop_margin: Annotated[
        str | None,
        Form(
            description="With crop: '30px' or '10%', two values or four (top right bottom left);"
            " at most 500px or 50% per side, a percentage stopping at 500px"
        ),
    ] = None,
    roi: Annotated[
        str | None, Form(description="Region of interest 'x1 y1 x2 y2' in px or %")
    ] = None,
    scale: Annotated[str | None, Form(description="'original' or 10%..100%")] = None,
    position: Annotated[str | None, Form(description="'original', 'center' or 'X% Y%'")] = None,
    add_shadow: Annotated[bool | None, Form()] = None,
    channels: Annotated[str | None, Form()] = None,
    keep_metadata: Annotated[
        bool | None, Form(description="Keep the upload's EXIF (camera, date, location)")
    ] = None,
    background: Annotated[str | None, Form(description="id_photo: white, blue or red")] = None,
    boxes: Annotated[
        str | None,
        Form(description="remove_watermark: JSON [[x, y, width, height], ...] in pixels"),
    ] = None,
    mask_file: Annotated[
        UploadFile | None,
        File(description="remove_watermark: a mask image, white where the watermark is"),
    ] = None,
    wait: Annotated[bool, Form(description="Answer only when the job has finished")] = False,
) -> JobOut:
    ctx: Context = request.app.state.ctx
    fields: dict[str, Any] = {
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
        "keep_metadata": keep_metadata,
        "background": background,
        "boxes": _boxes(boxes) if boxes else None,
    }
    # Empty form fields count as absent: each service fills in its own defaults.
    raw = {name: value for name, value in fields.items() if value not in (None, "")}
    options = validate_options(service, raw)
    if mask_file is not None and not mask_file.filename and not mask_file.size:
        mask_file = None  # an empty file field
    if bg_image_file is not None and not bg_image_file.filename and not bg_image_file.size:
        bg_image_file = None
    if bg_image_file is not None and service not in ("remove_background", "portrait"):
        raise OptionError(
            "invalid_bg_image_file", f"The {service} service takes no bg_image_file; leave it out."
        )
    if mask_file is not None and service != "remove_watermark":
        raise OptionError(
            "invalid_mask_file", f"The {service} service takes no mask_file; leave it out."
        )
    data = await uploads.read_bounded(file, ctx.settings.max_upload_bytes)
    image = uploads.validate(data, ctx.settings)
    if mask_file is not None:
        mask = await uploads.read_option_image(
            mask_file, ctx.settings, code="invalid_mask", what="The mask file"
        )
        options["mask_png"] = encode_mask(mask, image.size)
    if bg_image_file is not None:
        backdrop = await uploads.read_option_image(
            bg_image_file, ctx.settings, code="invalid_bg_image", what="The background image"
        )
        options["bg_image_jpg"] = encode_background(backdrop)
    check_for_image(service, options, image)
    job = submit_job(
        ctx,
        request,
        service=service,
        options=options,
        original=data,
        image=image,
        input_name=file.filename or "image",
    )
    if wait:
        job = jobs.wait_until_finished(ctx.db, job.id, ctx.settings.job_wait_seconds)
    out = _charged_out(ctx, job)
    response.headers["X-Credits-Charged"] = str(out.charged)
    return out


def _boxes(value: str) -> Any:
    try:
        return json.loads(value)
    except ValueError:
        raise OptionError(
            "invalid_boxes",
            "boxes must be JSON like [[x, y, width, height], ...] in pixels of the photo.",
        ) from None


@router.get(
    "/jobs",
    responses={200: paging.listed("/api/v1/jobs", "jobs"), **errors(*AUTH)},
    response_model=list[JobOut],
)
def list_jobs(
    request: Request,
    response: Response,
    limit: paging.Limit = paging.PAGE_DEFAULT,
    before: paging.Before = None,
) -> list[JobOut]:
    """Your jobs, newest first, one page at a time (pages stay put while new jobs arrive)."""
    ctx: Context = request.app.state.ctx
    with ctx.db.transaction() as session:
        user = require_user(ctx, session, request)
        page, after = jobs.page_for_user(session, user, limit=limit, before=before)
        out = [job_out(j, ledger.charged_for(session, jobs.job_reference(j.id))) for j in page]
    paging.link_next(response, "/api/v1/jobs", after, limit)
    return out


@router.get(
    "/jobs/results.zip",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"application/zip": {}}, "description": "A ZIP of results."},
        **errors(*AUTH, 400, 404),
    },
)
def results_zip(
    request: Request,
    ids: Annotated[
        str, Query(description=f"Comma-separated ids of your jobs, at most {zips.MAX_IDS}")
    ] = "",
) -> StreamingResponse:
    """The results of several of your jobs in one ZIP, streamed. Jobs whose files were deleted
    (retention period, or on request) or that have no result are listed in NOT-INCLUDED.txt."""
    ctx: Context = request.app.state.ctx
    with ctx.db.transaction() as session:
        user = require_user(ctx, session, request)
        plan = zips.plan(session, user, zips.parse_ids(ids))
        stamp = ctx.now().strftime("%Y%m%d-%H%M%S")
    return StreamingResponse(
        zips.stream(ctx.storage, plan),
        media_type="application/zip",
        headers={
            "Content-Disposition": f'attachment; filename="removeany-results-{stamp}.zip"',
            "Cache-Control": "no-store",
        },
    )


@router.get("/jobs/{job_id}", responses=errors(*AUTH, 404), response_model=JobOut)
def get_job(job_id: str, request: Request) -> JobOut:
    ctx: Context = request.app.state.ctx
    with ctx.db.transaction() as session:
        user = require_user(ctx, session, request)
        job = jobs.get_for_user(session, user, job_id)
        return job_out(job, ledger.charged_for(session, jobs.job_reference(job.id)))


@router.get(
    "/jobs/{job_id}/result",
    response_class=Response,
    responses={
        200: {
            "description": "The result, in the job's format",
            "content": {media: {} for media in MEDIA_TYPES.values()},
        },
        307: {
            "description": "Object storage: the result is at Location, a short-lived URL",
            "headers": {"Location": {"schema": {"type": "string", "format": "uri"}}},
        },
        **errors(*AUTH, 404, 410, 503),
    },
)
def job_result(job_id: str, request: Request) -> Response:
    ctx: Context = request.app.state.ctx
    with ctx.db.transaction() as session:
        job = jobs.get_for_user(session, require_user(ctx, session, request), job_id)
    if job.status != "succeeded" or job.result_key is None:
        raise NotFound("This job has no result yet.", code="result_not_ready")
    ext = {media: ext for ext, media in MEDIA_TYPES.items()}.get(job.result_media_type or "", "png")
    stem = job.input_name.rsplit(".", 1)[0] or "image"
    disposition = attachment(f"{stem}-removeany.{ext}", f"result.{ext}")
    media_type = job.result_media_type or "image/png"
    # Object storage: the client downloads from the bucket directly (a short-lived URL).
    url = ctx.storage.download_url(
        job.result_key, filename=disposition.split('"')[1], media_type=media_type
    )
    if url is not None:
        return RedirectResponse(url, status_code=307)
    return Response(
        ctx.storage.get(job.result_key),
        media_type=media_type,
        headers={"Content-Disposition": disposition},
    )


@router.get(
    "/jobs/{job_id}/original",
    response_class=Response,
    responses={
        200: {"description": "The uploaded photo", "content": {"image/*": {}}},
        **errors(*AUTH, 404, 410, 503),
    },
)
def job_original(job_id: str, request: Request) -> Response:
    ctx: Context = request.app.state.ctx
    with ctx.db.transaction() as session:
        job = jobs.get_for_user(session, require_user(ctx, session, request), job_id)
    data = ctx.storage.get(job.input_key)
    fmt = (sniff_format(data) or "PNG").lower()
    return Response(data, media_type=f"image/{fmt}")


def attachment(filename: str, fallback: str) -> str:
    """Content-Disposition for a download: the name in any language as RFC 6266's
    `filename*`, and its ASCII letters as `filename` for old clients (header values are
    Latin-1: a name such as 照片.png there made the download a 500)."""
    safe = "".join(c for c in filename if c.isalnum() or c in "-_.")
    plain = "".join(c for c in safe if c.isascii()).lstrip("-_.") or fallback
    return f"attachment; filename=\"{plain}\"; filename*=UTF-8''{quote(safe or plain)}"
