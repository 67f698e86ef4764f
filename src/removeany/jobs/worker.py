"""The task every queue backend runs: load the original, run the engine, settle the job."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from removeany.engine.errors import ImageError, ModelError, OptionError
from removeany.engine.io import decode_image
from removeany.jobs import processors, service
from removeany.jobs import repository as repo

if TYPE_CHECKING:
    from removeany.context import Context

log = logging.getLogger(__name__)

INTERNAL_ERROR = "Something went wrong on our side. You were not charged; please try again later."


def process_job(ctx: Context, job_id: str) -> None:
    with ctx.db.transaction() as session:
        if not repo.claim(session, job_id, ctx.now()):
            return
        job = repo.get(session, job_id)
        assert job is not None
        job_service, options, input_key = job.service, dict(job.options), job.input_key
    try:
        image = decode_image(
            ctx.storage.get(input_key),
            max_bytes=ctx.settings.max_upload_bytes,
            max_pixels=ctx.settings.max_upload_pixels,
        )
        output = processors.run(job_service, image, options, ctx.model_dir)
        result_key = f"results/{job_id}"
        ctx.storage.put(result_key, output.data)
    except (ImageError, OptionError) as exc:
        _fail(ctx, job_id, exc.code, exc.message)
        return
    except ModelError as exc:
        log.error("model problem while processing %s: %s", job_id, exc.message)
        _fail(ctx, job_id, "service_unavailable", INTERNAL_ERROR)
        return
    except Exception:
        log.exception("job %s crashed", job_id)
        _fail(ctx, job_id, "processing_failed", INTERNAL_ERROR)
        return
    with ctx.db.transaction() as session:
        job = repo.get(session, job_id)
        assert job is not None
        service.succeed(
            session,
            job,
            result_key=result_key,
            media_type=output.media_type,
            width=output.width,
            height=output.height,
            detected_type=output.detected_type,
            foreground=output.foreground,
            now=ctx.now(),
        )


def _fail(ctx: Context, job_id: str, code: str, message: str) -> None:
    with ctx.db.transaction() as session:
        job = repo.get(session, job_id)
        assert job is not None
        service.fail(session, job, code=code, message=message, now=ctx.now())


def resume_unfinished(ctx: Context) -> None:
    """After a restart, jobs that were queued or mid-run go back on the queue."""
    with ctx.db.transaction() as session:
        repo.requeue_running(session)
        ids = list(repo.unfinished_ids(session))
    assert ctx.queue is not None
    for job_id in ids:
        ctx.queue.enqueue(job_id)
