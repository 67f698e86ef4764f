"""Web pages for batches: start one from many images or a ZIP, follow it live, cancel it and
download every result as one ZIP.

Thin like the other pages: the upload form goes through `batches.submit` exactly as the JSON
API's upload does (one transaction for the batch and its items, wake-ups after the commit).
The batch page is rendered on the server, so it works without JavaScript; `static/batch.js`
then follows the batch with the API's server-sent events (`/api/v1/batches/{id}/events`).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile

from removeany import i18n
from removeany.accounts.models import User
from removeany.batches import repository as repo
from removeany.batches import service
from removeany.batches.routes import read_form
from removeany.batches.schemas import BatchOut
from removeany.batches.submit import check_credits, check_length, plan_upload, submit_batch
from removeany.catalog.prices import price_ranges
from removeany.credits import service as ledger
from removeany.engine.errors import ImageError, OptionError
from removeany.errors import DomainError, Unauthorized
from removeany.privacy import service as privacy
from removeany.web.routes import (
    Viewer,
    _ctx,
    _error_page,
    _form_viewer,
    _to_login,
    _viewer,
    older_refused,
    price_parts,
    redirect,
    render,
    t,
    templates,
    tn,
)

router = APIRouter(include_in_schema=False)

RECENT_BATCHES = 20
ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
# Services a batch can run, as the form names them (each must be in service.SERVICE_OPTIONS).
SERVICES = {
    "remove_background": "Remove background",
    "portrait": "Portrait cutout",
    "id_photo": "ID photo",
    "remove_watermark": "Remove watermark",
}
# Services whose result is a cut-out, so the background, crop and channel fields apply.
CUTOUT_SERVICES = ("remove_background", "portrait")
# remove.bg's sizes as the form offers them, smallest first.
SIZES = [
    ("preview", "Preview (up to 0.25 MP)"),
    ("medium", "Medium (up to 1.5 MP)"),
    ("hd", "HD (up to 4 MP)"),
    ("4k", "4K (up to 10 MP)"),
    ("full", "Full resolution"),
    ("50MP", "Up to 50 MP"),
]
DEFAULTS = {
    "service": "remove_background",
    "size": "full",
    "format": "png",
    "bg": "transparent",
    "bg_color": "#ffffff",
    "crop": "",
    "crop_margin": "",
    "channels": "rgba",
    "id_size": "1inch",
    "id_background": "white",
    "name": "",
}
ITEM_STATUS = {
    "queued": "Waiting",
    "running": "Processing",
    "succeeded": "Done",
    "failed": "Failed",
    "cancelled": "Cancelled",
    "skipped": "Skipped",
}
BATCH_STATUS = {
    "running": "Running",
    "cancelling": "Cancelling",
    "cancelled": "Cancelled",
    "completed": "Completed",
}
FINISHED = frozenset({"completed", "cancelled"})
ITEM_REFUNDED = "Refunded: you were not charged for this file."
ETA_SOON = "Less than a minute left."
ETA_MINUTE = "About 1 minute left."
ETA_MINUTES = "About {n} minutes left."
ETA_HOURS = "About {n} hours left."
UNPROCESSABLE = "The file could not be processed."


def _strings() -> dict[str, Any]:
    """What batch.js says, translated on the server like everything else."""
    return {
        "items": {k: t(v) for k, v in ITEM_STATUS.items()},
        "batch": {k: t(v) for k, v in BATCH_STATUS.items()},
        "progress": t("{finished} of {total} files finished ({pct}%)"),
        "etaSoon": t(ETA_SOON),
        "etaMinute": t(ETA_MINUTE),
        "etaMinutes": t(ETA_MINUTES),
        "etaHours": t(ETA_HOURS),
        "refunded": t(ITEM_REFUNDED),
        "unprocessable": t(UNPROCESSABLE),
        "download": t("Download"),
        "polling": t("Live updates were interrupted; checking every few seconds instead."),
        "chosen": t("{count} files chosen ({mb} MB)"),
        "chosenOne": t("1 file chosen ({mb} MB)"),
        "estimate": t("About {credits} credits for {count} images."),
        "estimateOne": t("About {credits} credits for 1 image."),
        "estimateOneOne": t("About 1 credit for 1 image."),
        "estimateZip": t("The ZIP's images are counted when it is uploaded."),
        "estimateRange": t(
            "{low} to {high} credits for {count} images, depending on the size of each result."
        ),
        "estimateRangeOne": t(
            "{low} to {high} credits for 1 image, depending on the size of its result."
        ),
        "uploading": t("Uploading… the batch page opens when the upload is done."),
        "uploadProgress": t("{pct}% uploaded ({sent} of {total} MB)"),
        "uploadCancelled": t("The upload was cancelled; no batch was started."),
        "uploadFailed": t(
            "The upload did not reach the server. Check your connection and try again."
        ),
        "short": t(
            "These images need about {credits} credits and your balance is {balance}. Buy "
            "credits on the Credits page (/credits) or choose fewer images."
        ),
        "errors": i18n.error_sentences(),
        "errorForms": i18n.error_forms(),
    }


def _item_note(status: str, message: str | None, code: str | None = None) -> str:
    """The sentence shown beside an item: why it failed, and that it cost nothing."""
    reason = i18n.error_text(message, code) if message else ""
    if status == "failed":
        return f"{reason or t(UNPROCESSABLE)} {t(ITEM_REFUNDED)}"
    if status == "skipped":
        return f"{reason} {t('Not charged.')}"
    if status == "cancelled":
        return reason
    return ""


def _eta_text(seconds: int | None) -> str:
    """The batch's time left as people say it; static/batch.js says it the same way."""
    if seconds is None:
        return ""
    if seconds < 60:
        return t(ETA_SOON)
    minutes = int(seconds / 60 + 0.5)  # rounded half up, as JavaScript's Math.round
    if minutes < 90:
        return t(ETA_MINUTE) if minutes == 1 else t(ETA_MINUTES, n=minutes)
    return t(ETA_HOURS, n=int(seconds / 3600 + 0.5))


def _batch_status_label(status: str) -> str:
    return t(BATCH_STATUS.get(status, status))


def _item_status_label(status: str) -> str:
    return t(ITEM_STATUS.get(status, status))


templates.env.globals.update(
    batch_status_label=_batch_status_label,
    item_status_label=_item_status_label,
    batch_item_note=_item_note,
    batch_eta=_eta_text,
)


# --- the list and the upload form ------------------------------------------------------------


def _prices(session: Session, service_name: str) -> dict[str, dict[str, Any]]:
    """What an image costs at each size the form offers, by its result's size
    (`prices.price_ranges`): the least and the most (`low`, `high`), the hint under the
    fields and the size's label in the menu; batch.js shows the chosen service's."""
    found: dict[str, dict[str, Any]] = {}
    labels = {size: t(label) for size, label in SIZES}
    for size, label in labels.items():
        ranges = price_ranges(session, service_name, size)
        if not ranges:
            continue
        low, high = min(c for c, _ in ranges), max(c for c, _ in ranges)
        if len(ranges) == 1:
            hint = tn("Price: 1 credit per image.", "Price: {n} credits per image.", low)
        else:
            hint = t("Price per image: {prices}.", prices=price_parts(ranges))
        amount = (
            tn("1 credit", "{n} credits", low)
            if low == high
            else t("{low} to {high} credits", low=low, high=high)
        )
        found[size] = {
            "low": low,
            "high": high,
            "hint": hint,
            "option": f"{label} · {amount}",
        }
    return found


# Refusals the person can act on from another page: that page, offered under the message.
_ERROR_ACTION_PAGES = {"terms_not_accepted": "/legal/accept", "insufficient_credits": "/credits"}
_ERROR_ACTION_LABELS = {
    "terms_not_accepted": "Review and accept",
    "insufficient_credits": "Buy credits",
}


def _error_action(error: Exception | None) -> dict[str, str] | None:
    """The page that resolves `error`, as a link's address and label; None for the rest."""
    code = getattr(error, "code", "")
    if code not in _ERROR_ACTION_PAGES:
        return None
    return {"href": _ERROR_ACTION_PAGES[code], "label": t(_ERROR_ACTION_LABELS.get(code, code))}


def _batches_page(
    request: Request,
    *,
    status_code: int = 200,
    error: Exception | None = None,
    chosen: dict[str, str] | None = None,
    before: str | None = None,
) -> Response:
    ctx = _ctx(request)
    with ctx.db.transaction() as session:
        viewer = _viewer(ctx, session, request)
        if viewer is None:
            return _to_login(request, "/batches")
        balance = ledger.balance(session, viewer.user.id, ctx.now())
        prices = {name: _prices(session, name) for name in SERVICES}
        try:
            page, last = repo.page_for_user(
                session, viewer.user.id, limit=RECENT_BATCHES, before=before
            )
        except DomainError as exc:
            return older_refused(request, exc, viewer)
        recent: list[BatchOut] = [service.summary(session, b, ctx.now()) for b in page]
    return render(
        request,
        "batches.html",
        status_code=status_code,
        viewer=viewer,
        balance=balance,
        prices=prices,
        sizes=[(size, t(label)) for size, label in SIZES if size in prices[DEFAULTS["service"]]],
        services=[(name, t(label)) for name, label in SERVICES.items()],
        chosen={**DEFAULTS, **(chosen or {})},
        batches=recent,
        older=last.id if last is not None else None,
        paged=before is not None,
        error=error,
        error_action=_error_action(error),
        max_mb=ctx.settings.max_upload_bytes // (1024 * 1024),
        max_bytes=ctx.settings.max_upload_bytes,
        max_items=ctx.settings.batch_max_items,
        batch_strings=_strings(),
    )


@router.get("/batches", response_class=HTMLResponse)
def batches(request: Request, before: str | None = None) -> Response:
    """The batch form and RECENT_BATCHES batches, newest first, with an "Older batches" link
    (`?before=<last batch's id>`, the API's keyset) while older ones remain."""
    return _batches_page(request, before=before)


def _chosen(form: FormData) -> dict[str, str]:
    """The form's option fields as typed, to validate and to show again after an error."""
    return {
        key: str(value)
        for key in DEFAULTS
        if isinstance(value := form.get(key), str) and value.strip()
    }


def _raw_options(service_name: str, chosen: dict[str, str]) -> dict[str, Any]:
    """The form's fields that apply to `service_name`, as the API's `options` object
    (validated by service.parse_options). The form shows every field without JavaScript, so
    fields of other services are left out here rather than refused."""
    if service_name == "id_photo":
        return {
            "size": chosen.get("id_size", DEFAULTS["id_size"]),
            "background": chosen.get("id_background", DEFAULTS["id_background"]),
        }
    if service_name == "remove_watermark":  # keeps each photo's own format
        return {"size": chosen.get("size", DEFAULTS["size"])}
    raw: dict[str, Any] = {
        "size": chosen.get("size", DEFAULTS["size"]),
        "format": chosen.get("format", DEFAULTS["format"]),
        "channels": chosen.get("channels", DEFAULTS["channels"]),
    }
    if chosen.get("bg") == "color":
        raw["bg_color"] = chosen.get("bg_color", "").strip().lstrip("#")
    if chosen.get("crop"):
        raw["crop"] = True
        if chosen.get("crop_margin", "").strip():
            raw["crop_margin"] = chosen["crop_margin"].strip()
    return raw


def _is_zip(upload: UploadFile) -> bool:
    upload.file.seek(0)
    head = upload.file.read(4)
    upload.file.seek(0)
    return head in ZIP_MAGIC


def _affordable(request: Request) -> service.Affordable | None:
    """The signed-in visitor's credits, read before the form (its CSRF token is checked once
    the form is read, before anything is created)."""
    ctx = _ctx(request)
    with ctx.db.transaction() as session:
        viewer = _viewer(ctx, session, request)
        if viewer is None:
            return None
        return service.affordable(
            session, viewer.user, SERVICES, ctx.now(), ctx.settings.monthly_free_credits
        )


def _start(request: Request, form: FormData, afford: service.Affordable | None) -> Response:
    ctx = _ctx(request)
    with ctx.db.transaction() as session:
        viewer = _form_viewer(ctx, session, request, str(form.get("csrf_token") or ""), "/batches")
        if not isinstance(viewer, Viewer):
            return viewer
    chosen = _chosen(form)
    # A file input with nothing chosen still sends one empty, nameless part.
    uploads = [
        f for f in form.getlist("files") if isinstance(f, UploadFile) and (f.filename or f.size)
    ]
    try:
        service_name = chosen.get("service", DEFAULTS["service"])
        if service_name not in SERVICES:
            raise service.BatchError(t("Choose a service from the list."), code="unknown_service")
        options = service.parse_options(service_name, _raw_options(service_name, chosen))
        archives = [f for f in uploads if _is_zip(f)]
        images = [f for f in uploads if f not in archives]
        if len(archives) > 1:
            raise service.BatchError(
                t("Choose one ZIP at a time, or choose the images themselves."),
                code="several_archives",
            )
        check_credits(
            afford,
            service_name,
            ctx.settings,
            archive=archives[0].file if archives else None,
            names=(f.filename or "" for f in images),
        )
        planned = plan_upload(
            ctx.settings,
            archive=archives[0].file if archives else None,
            files=[(f.filename or "image", f.file) for f in images],
            service_name=service_name,
            options=options,
            empty_message=t("Choose images, or one ZIP of images, to start a batch."),
        )
        name = (
            chosen.get("name", "").strip()
            or (archives[0].filename if archives else "")
            or (images[0].filename if len(images) == 1 else "")
            or t("{count} images", count=len(images))
        )

        def user_of(session: Session) -> User:
            current = _viewer(ctx, session, request)
            if current is None:
                raise Unauthorized(t("Your session has ended. Sign in again to continue."))
            return current.user

        batch = submit_batch(
            ctx, user_of, service_name=service_name, options=options, name=name, planned=planned
        )
    except (DomainError, ImageError, OptionError) as exc:
        status = exc.status_code if isinstance(exc, DomainError) else 400
        return _batches_page(request, status_code=status, error=exc, chosen=chosen)
    return redirect(f"/batches/{batch.id}")


@router.post("/batches", response_class=HTMLResponse)
async def start_batch(request: Request) -> Response:
    """The upload form: many images or one ZIP (its folders kept), then the batch's page."""
    ctx = _ctx(request)
    try:
        check_length(ctx.settings, int(request.headers.get("content-length") or 0))
        afford = await run_in_threadpool(_affordable, request)
        form = await read_form(request, ctx.settings, afford)
    except DomainError as exc:
        refused = exc  # `exc` is unbound in the lambda
        return await run_in_threadpool(
            lambda: _batches_page(request, status_code=refused.status_code, error=refused)
        )
    try:
        return await run_in_threadpool(_start, request, form, afford)
    finally:
        await form.close()


# --- one batch ---------------------------------------------------------------------------------


# What the batch page lists: every file, or the failed ones (with those skipped at upload).
SHOWN = ("all", "failed")
# The events stream sends the items started or finished since the page read them, this much
# earlier: a worker's times are set before its commit.
LIVE_OVERLAP = timedelta(seconds=5)


@router.get("/batches/{batch_id}", response_class=HTMLResponse)
def batch_page(
    batch_id: str, request: Request, cancelled: str = "", page: int = 1, show: str = "all"
) -> Response:
    """The batch and one page of its files: a 5,000-file batch listed every one of them."""
    ctx = _ctx(request)
    per_page = ctx.settings.batch_page_items
    show = show if show in SHOWN else "all"
    with ctx.db.transaction() as session:
        read_at = ctx.now()
        viewer = _viewer(ctx, session, request)
        if viewer is None:
            return _to_login(request)
        try:
            batch = service.get_for_user(session, viewer.user, batch_id)
        except DomainError as exc:
            return _error_page(request, exc, viewer)
        balance = ledger.balance(session, viewer.user.id, ctx.now())
        summary = service.summary(session, batch, ctx.now())
        listed = summary.counts.failed if show == "failed" else summary.total
        pages = max(1, -(-listed // per_page))
        page = min(max(1, page), pages)
        status = "failed" if show == "failed" else None
        rows = repo.items(
            session, batch.id, status=status, offset=(page - 1) * per_page, limit=per_page
        )
        items = [service.item_out(job) for job in rows]
        deleted = privacy.deleted_among(session, [job.id for job in rows])
        results_kept = privacy.results_kept(session, batch.id)
    query = (
        f"status=failed&offset={(page - 1) * per_page}"
        if status
        else f"offset={(page - 1) * per_page}"
    )
    return render(
        request,
        "batch.html",
        viewer=viewer,
        balance=balance,
        batch=summary,
        items=items,
        deleted=deleted,
        results_kept=results_kept,
        show=show,
        page=page,
        pages=pages,
        first=(page - 1) * per_page + 1,
        last=(page - 1) * per_page + len(items),
        listed=listed,
        page_items_url=f"{summary.items_url}?{query}&limit={per_page}",
        events_since=(read_at - LIVE_OVERLAP).isoformat(),
        # Files skipped at upload are listed after the last page, and with the failed ones.
        show_skipped=page == pages,
        finished=summary.status in FINISHED,
        pct=round(summary.progress * 100),
        cancelled=bool(cancelled),
        batch_strings=_strings(),
    )


@router.post("/batches/{batch_id}/cancel", response_class=HTMLResponse)
def cancel_batch(
    batch_id: str, request: Request, csrf_token: Annotated[str, Form()] = ""
) -> Response:
    """Items not started yet are cancelled and their holds released; running ones finish."""
    ctx = _ctx(request)
    with ctx.db.transaction() as session:
        viewer = _form_viewer(ctx, session, request, csrf_token, f"/batches/{batch_id}")
        if not isinstance(viewer, Viewer):
            return viewer
        try:
            batch = service.cancel(session, viewer.user, batch_id, ctx.now())
        except DomainError as exc:
            return _error_page(request, exc, viewer)
        batch_id = batch.id
    return redirect(f"/batches/{batch_id}?cancelled=1")
