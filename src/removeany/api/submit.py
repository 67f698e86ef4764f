"""The request boundary for new jobs: one transaction, file cleanup if it fails, enqueue after
commit. Shared by the native API, the remove.bg endpoint and the web pages."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi import Request
from PIL import Image

from removeany.api.auth import require_user
from removeany.context import Context
from removeany.jobs import service as jobs
from removeany.jobs.models import Job


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
    written: str | None = None
    try:
        with ctx.db.transaction() as session:
            user = require_user(ctx, session, request)
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
            )
            written = job.input_key
    except BaseException:
        if written is not None:
            ctx.storage.delete(written)
        raise
    assert ctx.queue is not None, "no queue running: start workers or use `removeany worker`"
    ctx.queue.enqueue(job.id)
    return job
