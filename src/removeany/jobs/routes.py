"""JSON API for jobs: submit an image, follow it, download the result."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError

from removeany.api import uploads
from removeany.api.auth import require_user
from removeany.api.submit import submit_job
from removeany.context import Context
from removeany.credits import service as ledger
from removeany.engine.errors import OptionError
from removeany.engine.io import sniff_format
from removeany.errors import NotFound
from removeany.jobs import repository as repo
from removeany.jobs import service as jobs
from removeany.jobs.models import Job
from removeany.jobs.processors import compose_options
from removeany.jobs.schemas import JobOut, RemoveBackgroundOptions

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


@router.post("/jobs", status_code=202, response_model=JobOut)
async def create_job(
    request: Request,
    file: Annotated[UploadFile, File(description="The image to process")],
    service: Annotated[str, Form()] = "remove_background",
    size: Annotated[str, Form()] = "full",
    format: Annotated[str, Form()] = "png",
    bg_color: Annotated[str | None, Form()] = None,
    crop: Annotated[bool, Form()] = False,
    crop_margin: Annotated[str | None, Form()] = None,
    channels: Annotated[str, Form()] = "rgba",
    wait: Annotated[bool, Form(description="Answer only when the job has finished")] = False,
) -> JobOut:
    ctx: Context = request.app.state.ctx
    try:
        options = RemoveBackgroundOptions.model_validate(
            {
                "size": size,
                "format": format,
                "bg_color": bg_color or None,
                "crop": crop,
                "crop_margin": crop_margin or None,
                "channels": channels,
            }
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        raise OptionError(
            f"invalid_{first['loc'][0]}", f"{first['loc'][0]}: {first['msg']}."
        ) from None
    compose_options(options.model_dump())
    data = await uploads.read_bounded(file, ctx.settings.max_upload_bytes)
    image = uploads.validate(data, ctx.settings)
    job = submit_job(
        ctx,
        request,
        service=service,
        options=options.model_dump(),
        original=data,
        image=image,
        input_name=file.filename or "image",
    )
    if wait:
        job = jobs.wait_until_finished(ctx.db, job.id, ctx.settings.job_wait_seconds)
    return _charged_out(ctx, job)


@router.get("/jobs", response_model=list[JobOut])
def list_jobs(request: Request) -> list[JobOut]:
    ctx: Context = request.app.state.ctx
    with ctx.db.transaction() as session:
        user = require_user(ctx, session, request)
        return [
            job_out(j, ledger.charged_for(session, jobs.job_reference(j.id)))
            for j in repo.recent_for_user(session, user.id, limit=50)
        ]


@router.get("/jobs/{job_id}", response_model=JobOut)
def get_job(job_id: str, request: Request) -> JobOut:
    ctx: Context = request.app.state.ctx
    with ctx.db.transaction() as session:
        user = require_user(ctx, session, request)
        job = jobs.get_for_user(session, user, job_id)
        return job_out(job, ledger.charged_for(session, jobs.job_reference(job.id)))


@router.get("/jobs/{job_id}/result", response_class=Response)
def job_result(job_id: str, request: Request) -> Response:
    ctx: Context = request.app.state.ctx
    with ctx.db.transaction() as session:
        job = jobs.get_for_user(session, require_user(ctx, session, request), job_id)
    if job.status != "succeeded" or job.result_key is None:
        raise NotFound("This job has no result yet.", code="result_not_ready")
    ext = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp"}.get(
        job.result_media_type or "", "png"
    )
    stem = job.input_name.rsplit(".", 1)[0] or "image"
    disposition = _attachment(f"{stem}-removeany.{ext}")
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


@router.get("/jobs/{job_id}/original", response_class=Response)
def job_original(job_id: str, request: Request) -> Response:
    ctx: Context = request.app.state.ctx
    with ctx.db.transaction() as session:
        job = jobs.get_for_user(session, require_user(ctx, session, request), job_id)
    data = ctx.storage.get(job.input_key)
    fmt = (sniff_format(data) or "PNG").lower()
    return Response(data, media_type=f"image/{fmt}")


def _attachment(filename: str) -> str:
    safe = "".join(c for c in filename if c.isalnum() or c in "-_.") or "result.png"
    return f'attachment; filename="{safe}"'
