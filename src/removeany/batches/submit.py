"""The boundary for new batches (API and CLI): one transaction for the batch and all its items,
originals deleted again if it fails, wake-ups sent only after the commit."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from sqlalchemy.orm import Session

from removeany.accounts.models import User
from removeany.batches import service
from removeany.batches.models import Batch
from removeany.context import Context
from removeany.moderation.gate import check_submission

# Wake-ups per batch: each drains up to jobs.worker.DRAIN_LIMIT items and hands over, so this
# only bounds how many workers start on a batch at once.
MAX_WAKEUPS = 256


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
            check_submission(session, user, service_name)
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
