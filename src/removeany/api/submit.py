"""The request boundary for new jobs: one transaction, file cleanup if it fails, enqueue after
commit. Shared by the native API, the remove.bg endpoint and the web pages."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi import Request
from PIL import Image
from sqlalchemy.exc import IntegrityError

from removeany.api.auth import require_user
from removeany.context import Context
from removeany.jobs import service as jobs
from removeany.jobs.models import Job
from removeany.moderation.gate import check_submission

IDEMPOTENCY_HEADER = "idempotency-key"


def submit_job(
    ctx: Context,
    request: Request,
    *,
    service: str,
    options: dict[str, Any],
    original: bytes,
    image: Image.Image,
    input_name: str,
) -> Job:
    """Create, charge and enqueue a job. A repeated `Idempotency-Key` with the same request
    returns the first job without charging again."""
    key = (request.headers.get(IDEMPOTENCY_HEADER) or "").strip()[:200] or None
    written: str | None = None
    try:
        with ctx.db.transaction() as session:
            user = require_user(ctx, session, request)
            check_submission(session, user, service)
            if key is not None:
                repeat = jobs.find_repeat(
                    session, user, key, service=service, options=options, original=original
                )
                if repeat is not None:
                    return repeat
            job = jobs.submit(
                session,
                ctx.storage,
                user,
                service=service,
                options=options,
                original=original,
                input_name=input_name,
                width=image.width,
                height=image.height,
                now=ctx.now(),
                reserve_ttl=timedelta(seconds=ctx.settings.reserve_ttl_seconds),
                idempotency_key=key,
                monthly_allowance=ctx.settings.monthly_free_credits,
            )
            written = job.input_key
    except IntegrityError:
        if written is not None:
            ctx.storage.delete(written)
        if key is None:
            raise
        # A concurrent request with the same key committed first: answer with its job.
        with ctx.db.transaction() as session:
            user = require_user(ctx, session, request)
            repeat = jobs.find_repeat(
                session, user, key, service=service, options=options, original=original
            )
            if repeat is None:
                raise
            return repeat
    except BaseException:
        if written is not None:
            ctx.storage.delete(written)
        raise
    assert ctx.queue is not None, "no queue running: start workers or use `removeany worker`"
    ctx.queue.enqueue(job.id)
    return job
