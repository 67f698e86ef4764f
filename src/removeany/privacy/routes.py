"""JSON API for privacy: delete a job's files now, export everything, delete the account."""

from __future__ import annotations

from datetime import datetime, timedelta

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from removeany.accounts.schemas import Accepted
from removeany.api.auth import SESSION_COOKIE, require_user
from removeany.api.contract import AUTH, errors
from removeany.context import Context
from removeany.jobs import service as jobs
from removeany.privacy import service as privacy
from removeany.privacy.models import JobFileDeletion

router = APIRouter(prefix="/api/v1", tags=["privacy"])


class JobFilesOut(BaseModel):
    job_id: str
    deleted: bool
    deleted_at: datetime | None
    reason: str | None
    delete_after: datetime = Field(description="When the retention sweep deletes them.")


class DeleteAccountIn(BaseModel):
    current_password: str = Field(max_length=1024)


def _ctx(request: Request) -> Context:
    ctx: Context = request.app.state.ctx
    return ctx


def _files_out(
    ctx: Context, job_id: str, created_at: datetime, deletion: JobFileDeletion | None
) -> JobFilesOut:
    return JobFilesOut(
        job_id=job_id,
        deleted=deletion is not None,
        deleted_at=deletion.deleted_at if deletion else None,
        reason=deletion.reason if deletion else None,
        delete_after=created_at + timedelta(hours=ctx.settings.retention_hours),
    )


@router.get("/jobs/{job_id}/files", responses=errors(*AUTH, 404), response_model=JobFilesOut)
def job_files(job_id: str, request: Request) -> JobFilesOut:
    ctx = _ctx(request)
    with ctx.db.transaction() as session:
        job = jobs.get_for_user(session, require_user(ctx, session, request), job_id)
        return _files_out(ctx, job.id, job.created_at, privacy.deletion_of(session, job.id))


@router.delete(
    "/jobs/{job_id}/files", responses=errors(*AUTH, 404, 409), response_model=JobFilesOut
)
def delete_job_files(job_id: str, request: Request) -> JobFilesOut:
    """Delete the original and the result now (the job record stays, without files)."""
    ctx = _ctx(request)
    with ctx.db.transaction() as session:
        job = jobs.get_for_user(session, require_user(ctx, session, request), job_id)
        keys = privacy.delete_job_files(session, job, now=ctx.now())
        out = _files_out(ctx, job.id, job.created_at, privacy.deletion_of(session, job.id))
        privacy.delete_files(ctx.storage, keys)
    return out


@router.get("/account/export", responses=errors(*AUTH), response_class=Response)
def export(request: Request) -> Response:
    """A ZIP of everything we hold about you: account.json and your stored images."""
    ctx = _ctx(request)
    with ctx.db.transaction() as session:
        user = require_user(ctx, session, request)
        data = privacy.export_account(session, ctx.storage, user)
        stamp = ctx.now().strftime("%Y%m%d")
    return Response(
        data,
        media_type="application/zip",
        headers={
            "Content-Disposition": f'attachment; filename="removeany-export-{stamp}.zip"',
            "Cache-Control": "no-store",
        },
    )


@router.post("/account/delete", responses=errors(*AUTH, 429, 503), response_model=Accepted)
def delete_account(body: DeleteAccountIn, request: Request, response: Response) -> Accepted:
    """Erase your images and personal data now (needs your current password). Credits are
    forfeited; the ledger is kept, anonymised."""
    ctx = _ctx(request)
    with ctx.db.transaction() as session:
        user_id = require_user(ctx, session, request).id
    privacy.delete_account(ctx, user_id, body.current_password)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return Accepted(message="Your account was deleted.")
