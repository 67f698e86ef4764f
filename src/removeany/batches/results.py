"""A batch's results ZIP: every succeeded item at its path, and a note (NOT-INCLUDED.txt, in
the requester's language) naming each file that is not in it and why: failed (not charged),
cancelled, not finished yet, skipped when the upload was read, or its result deleted."""

from __future__ import annotations

from collections.abc import Sequence

from removeany.batches.models import Batch
from removeany.batches.service import result_entries
from removeany.i18n import error_text, t
from removeany.jobs.models import Job
from removeany.jobs.results_zip import Entry, Plan


def plan(batch: Batch, items: Sequence[Job]) -> Plan:
    """What goes into the ZIP; `items` are all the batch's jobs, in the batch's order."""
    out = Plan(heading=t("These files of the batch are not in this ZIP:"))
    succeeded = [job for job in items if job.status == "succeeded" and job.result_key]
    for job, (arcname, key) in zip(succeeded, result_entries(succeeded), strict=True):
        gone = t("{path}: its result has been deleted.", path=_path(job))
        out.entries.append(Entry(arcname, key, gone))
    for job in items:
        path = _path(job)
        if job.status == "failed":
            reason = error_text(job.error_message or "", job.error_code)
            out.notes.append(t("{path}: failed, not charged. {reason}", path=path, reason=reason))
        elif job.status == "cancelled":  # every cancellation says why, and that it was free
            reason = error_text(job.error_message or "", job.error_code)
            out.notes.append(t("{path}: cancelled. {reason}", path=path, reason=reason))
        elif job.status in ("queued", "running"):
            out.notes.append(
                t("{path}: not finished yet. Download the results again later.", path=path)
            )
        elif job.result_key is None:
            out.notes.append(t("{path}: its result has been deleted.", path=path))
    for rejected in batch.rejected:
        reason = error_text(rejected.get("message", ""), rejected.get("code"))
        out.notes.append(
            t(
                "{path}: skipped when the upload was read. {reason}",
                path=rejected["path"],
                reason=reason,
            )
        )
    return out


def _path(job: Job) -> str:
    return job.relative_path or job.input_name
