"""The boundary for new batches (API and CLI): one transaction for the batch and all its items,
originals deleted again if it fails, wake-ups sent only after the commit."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import timedelta
from typing import IO, Any

from sqlalchemy.orm import Session

from removeany.accounts.models import User
from removeany.batches import service
from removeany.batches.models import Batch
from removeany.batches.schemas import RejectedFile
from removeany.context import Context
from removeany.infra.settings import Settings
from removeany.moderation.gate import check_submission

# Wake-ups per batch: each drains up to jobs.worker.DRAIN_LIMIT items and hands over, so this
# only bounds how many workers start on a batch at once.
MAX_WAKEUPS = 256
# Room for the multipart framing and the form's other fields around the files themselves.
FORM_OVERHEAD = 16 * 1024 * 1024


def check_length(settings: Settings, content_length: int) -> None:
    """Refuse an upload by its declared length, before its body is read and spooled."""
    if content_length > settings.batch_max_bytes + FORM_OVERHEAD:
        raise service.BatchTooLarge(
            f"The upload is larger than {settings.batch_max_bytes // 1024**2:,} MB. "
            "Split it into several batches."
        )


def check_credits(
    afford: service.Affordable | None,
    service_name: str,
    settings: Settings,
    *,
    archive: IO[bytes] | None,
    names: Iterable[str],
) -> None:
    """Refuse 402 before any file is read when the images the upload holds by their names
    (a ZIP's from its central directory) cost more than the balance at the cheapest size.
    Blocking: async callers run it in a thread."""
    if afford is None:
        return
    images = sum(1 for name in names if service.looks_like_image(name))
    if archive is not None:
        images += service.count_zip_images(archive, settings)
    afford.check(service_name, images)


def plan_upload(
    settings: Settings,
    *,
    archive: IO[bytes] | None,
    files: Iterable[tuple[str, IO[bytes]]],
    service_name: str,
    options: dict[str, Any],
    empty_message: str = "Send image files in `files` or a ZIP in `archive`.",
) -> service.Plan:
    """Every file of an upload (a ZIP's members, then the loose files) read and validated once.
    Blocking: async callers run it in a thread."""
    entries: list[service.Entry | RejectedFile] = []
    if archive is not None:
        entries.extend(service.entries_from_zip(archive, settings))
    entries.extend(service.entries_from_files(files))
    if not entries:
        raise service.BatchError(empty_message, code="empty_batch")
    return service.plan(entries, settings, service=service_name, options=options)


def submit_batch(
    ctx: Context,
    user_of: Callable[[Session], User],
    *,
    service_name: str,
    options: dict[str, Any],
    name: str,
    planned: service.Plan,
) -> Batch:
    written: list[str] = []
    try:
        with ctx.db.transaction() as session:
            user = user_of(session)
            check_submission(session, user, service_name, batch=True)
            batch, items = service.create(
                session,
                ctx.storage,
                user,
                service=service_name,
                options=options,
                name=name,
                planned=planned,
                now=ctx.now(),
                reserve_ttl=timedelta(seconds=ctx.settings.reserve_ttl_seconds),
                written=written,
                monthly_allowance=ctx.settings.monthly_free_credits,
            )
            first = [job.id for job in items[:MAX_WAKEUPS]]
    except BaseException:
        for key in written:
            ctx.storage.delete(key)
        raise
    assert ctx.queue is not None, "no queue running: start workers or use `removeany worker`"
    for job_id in first:
        ctx.queue.enqueue(job_id)
    return batch
