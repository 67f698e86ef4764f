"""JSON API for batches: upload many files or a ZIP, follow progress (poll or SSE), cancel,
download every result as one ZIP."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response, StreamingResponse
from pydantic import AwareDatetime
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile

from removeany.accounts.models import User
from removeany.api import paging
from removeany.api.auth import require_user
from removeany.api.contract import AUTH, errors
from removeany.api.params import MAX_ID
from removeany.api.uploads import FileHook, spooled_form
from removeany.batches import repository as repo
from removeany.batches import results, service
from removeany.batches.schemas import BatchItemOut, BatchOut, ItemStatus
from removeany.batches.submit import check_credits, check_length, plan_upload, submit_batch
from removeany.context import Context
from removeany.engine.errors import OptionError
from removeany.infra.settings import Settings
from removeany.jobs import results_zip
from removeany.jobs.routes import attachment

router = APIRouter(prefix="/api/v1", tags=["batches"])

_UPLOAD_DOC: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "files": {
                            "type": "array",
                            "items": {"type": "string", "format": "binary"},
                            "description": "Images; a name may contain folders (a/b/c.jpg).",
                        },
                        "archive": {
                            "type": "string",
                            "format": "binary",
                            "description": "A ZIP of images; its folders are kept.",
                        },
                        "service": {"type": "string", "default": "remove_background"},
                        "options": {
                            "type": "string",
                            "description": 'The service\'s options as JSON, e.g. {"format":"png"}',
                        },
                        "name": {"type": "string"},
                    },
                }
            }
        },
    }
}

SSE_POLL_SECONDS = 0.5
MAX_ITEMS_PAGE = 5000  # items in one answer of GET /batches/{id}/items


def counting_images(afford: service.Affordable | None) -> FileHook | None:
    """Counts the images of a form as their parts start: one more than the balance pays for
    at the cheapest size ends the upload with 402 there, before the rest is received."""
    if afford is None:
        return None
    images = 0

    def on_file(filename: str, fields: dict[str, str]) -> None:
        nonlocal images
        if service.looks_like_image(filename):
            images += 1
            afford.check(fields.get("service"), images)

    return on_file


async def read_form(
    request: Request, settings: Settings, afford: service.Affordable | None
) -> FormData:
    """The upload form (API and page), its files spooled to disk; one file more than a batch
    holds (the ZIP, or the loose files), or than `afford` pays for, is refused as soon as it
    starts."""
    return await spooled_form(
        request,
        max_files=settings.batch_max_items + 1,
        too_many=lambda: service.too_many_files(settings),
        on_file=counting_images(afford),
        malformed=lambda reason: service.BatchError(
            f"The upload could not be read ({reason}). Send the files again as a "
            "multipart/form-data form.",
            code="invalid_upload",
        ),
    )


@router.post(
    "/batches",
    responses=errors(*AUTH, 400, 402, 503),
    status_code=202,
    response_model=BatchOut,
    openapi_extra=_UPLOAD_DOC,
)
async def create_batch(request: Request) -> BatchOut:
    ctx: Context = request.app.state.ctx
    settings = ctx.settings
    check_length(settings, int(request.headers.get("content-length") or 0))
    afford = await run_in_threadpool(_affordable, ctx, request)  # and 401 before the body
    form = await read_form(request, settings, afford)
    try:
        service_name = str(form.get("service") or "remove_background")
        raw = str(form.get("options") or "{}")
        try:
            raw_options = json.loads(raw)
        except ValueError:
            raise OptionError("invalid_options", "options must be a JSON object.") from None
        if not isinstance(raw_options, dict):
            raise OptionError("invalid_options", "options must be a JSON object.")
        options = service.parse_options(service_name, raw_options)
        archive = form.get("archive")
        files = [f for f in form.getlist("files") if isinstance(f, UploadFile)]
        archive_file = archive.file if isinstance(archive, UploadFile) else None

        def read_upload() -> service.Plan:
            check_credits(
                afford,
                service_name,
                settings,
                archive=archive_file,
                names=(f.filename or "" for f in files),
            )
            return plan_upload(
                settings,
                archive=archive_file,
                files=[(f.filename or "image", f.file) for f in files],
                service_name=service_name,
                options=options,
            )

        planned = await run_in_threadpool(read_upload)
        name = str(
            form.get("name")
            or (archive.filename if isinstance(archive, UploadFile) else "")
            or "batch"
        )

        def user_of(session: Session) -> User:
            return require_user(ctx, session, request)

        batch = await run_in_threadpool(
            submit_batch,
            ctx,
            user_of,
            service_name=service_name,
            options=options,
            name=name,
            planned=planned,
        )
    finally:
        await form.close()
    return await run_in_threadpool(_summary, ctx, request, batch.id)


def _affordable(ctx: Context, request: Request) -> service.Affordable | None:
    with ctx.db.transaction() as session:
        user = require_user(ctx, session, request)
        return service.affordable(
            session, user, service.SERVICE_OPTIONS, ctx.now(), ctx.settings.monthly_free_credits
        )


def _summary(ctx: Context, request: Request, batch_id: str) -> BatchOut:
    with ctx.db.transaction() as session:
        user = require_user(ctx, session, request)
        batch = service.get_for_user(session, user, batch_id)
        return service.summary(session, batch, ctx.now())


@router.get(
    "/batches",
    responses={200: paging.listed("/api/v1/batches", "batches"), **errors(*AUTH)},
    response_model=list[BatchOut],
)
def list_batches(
    request: Request,
    response: Response,
    limit: paging.Limit = paging.PAGE_DEFAULT,
    before: paging.Before = None,
) -> list[BatchOut]:
    """Your batches, newest first, one page at a time (pages stay put while new ones arrive)."""
    ctx: Context = request.app.state.ctx
    with ctx.db.transaction() as session:
        user = require_user(ctx, session, request)
        page, last = repo.page_for_user(session, user.id, limit=limit, before=before)
        out = [service.summary(session, b, ctx.now()) for b in page]
    paging.link_next(response, "/api/v1/batches", last.id if last else None, limit)
    return out


@router.get("/batches/{batch_id}", responses=errors(*AUTH, 404), response_model=BatchOut)
def get_batch(batch_id: str, request: Request) -> BatchOut:
    return _summary(request.app.state.ctx, request, batch_id)


@router.get(
    "/batches/{batch_id}/items", responses=errors(*AUTH, 404), response_model=list[BatchItemOut]
)
def batch_items(
    batch_id: str,
    request: Request,
    status: Annotated[ItemStatus | None, Query(description="Only the items in this state")] = None,
    offset: Annotated[int, Query(ge=0, le=MAX_ID, description="Items to skip")] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_ITEMS_PAGE, description="Items to return")] = 1000,
) -> list[BatchItemOut]:
    """One page of the batch's items, ordered by relative path."""
    ctx: Context = request.app.state.ctx
    with ctx.db.transaction() as session:
        user = require_user(ctx, session, request)
        batch = service.get_for_user(session, user, batch_id)
        rows = repo.items(session, batch.id, status=status, offset=offset, limit=limit)
        return [service.item_out(job) for job in rows]


@router.post("/batches/{batch_id}/cancel", responses=errors(*AUTH, 404), response_model=BatchOut)
def cancel_batch(batch_id: str, request: Request) -> BatchOut:
    ctx: Context = request.app.state.ctx
    with ctx.db.transaction() as session:
        user = require_user(ctx, session, request)
        batch = service.cancel(session, user, batch_id, ctx.now())
    return _summary(ctx, request, batch.id)


@router.get(
    "/batches/{batch_id}/results", responses=errors(*AUTH, 404), response_class=StreamingResponse
)
def batch_results(batch_id: str, request: Request) -> StreamingResponse:
    """Every succeeded item, at its original relative path with the output format's extension,
    and NOT-INCLUDED.txt naming the files that are not there and why. Available at any time:
    while the batch runs it holds the items finished so far."""
    ctx: Context = request.app.state.ctx
    with ctx.db.transaction() as session:
        user = require_user(ctx, session, request)
        batch = service.get_for_user(session, user, batch_id)
        zip_plan = results.plan(batch, repo.items(session, batch.id))
    stem = batch.name.rsplit(".", 1)[0].replace(".", "") or "batch"
    return StreamingResponse(
        results_zip.stream(ctx.storage, zip_plan),
        media_type="application/zip",
        headers={"Content-Disposition": attachment(f"{stem}-results.zip", "batch-results.zip")},
    )


@router.get(
    "/batches/{batch_id}/events",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"text/event-stream": {}}, "description": "progress, item, done"},
        **errors(*AUTH, 404),
    },
)
async def batch_events(
    batch_id: str,
    request: Request,
    since: Annotated[
        AwareDatetime | None,
        Query(description="With its time zone, e.g. 2026-01-01T12:00:00Z"),
    ] = None,
) -> StreamingResponse:
    """Server-sent events: `progress` (the batch, as GET /batches/{id}) whenever it changes,
    `item` for every item whose status changed (first, each one started or finished since
    `since`, by default since the batch was created), and `done` once nothing is left to
    run."""
    ctx: Context = request.app.state.ctx
    await run_in_threadpool(_summary, ctx, request, batch_id)  # 404 before streaming starts

    def snapshot(watch: service.ItemWatch) -> tuple[BatchOut, list[BatchItemOut]]:
        with ctx.db.transaction() as session:
            user = require_user(ctx, session, request)
            batch = service.get_for_user(session, user, batch_id)
            # The summary first: statements need not share a snapshot (PostgreSQL's read
            # committed), and items read after a "completed" summary are all final, so no
            # item's last change is missed before `done`.
            out = service.summary(session, batch, ctx.now())
            changed = watch.changes(session, batch, out.counts)
            return out, [service.item_out(job) for job in changed]

    async def events() -> AsyncIterator[str]:
        watch = service.ItemWatch(since=since)
        last = ""
        while True:
            out, changed = await run_in_threadpool(snapshot, watch)
            for item in changed:
                yield f"event: item\ndata: {item.model_dump_json()}\n\n"
            body = out.model_dump_json()
            if body != last:
                last = body
                yield f"event: progress\ndata: {body}\n\n"
            if out.status in ("completed", "cancelled"):
                yield f"event: done\ndata: {body}\n\n"
                return
            if await request.is_disconnected():
                return
            await asyncio.sleep(SSE_POLL_SECONDS)

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
