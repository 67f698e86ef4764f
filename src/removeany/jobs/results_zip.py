"""Several jobs' results as one ZIP (`GET /api/v1/jobs/results.zip?ids=...`), streamed file by
file. Names follow the batches' rule (the upload's name with the result's extension, clashes
numbered). Jobs whose files were deleted (retention, or on request) or that have no result are
left out and listed in a note file inside the ZIP, in the requester's language."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.orm import Session

from removeany.accounts.models import User
from removeany.batches.service import result_entries
from removeany.errors import DomainError, NotFound
from removeany.i18n import t
from removeany.infra.storage import Storage
from removeany.infra.zipstream import stream_zip
from removeany.jobs import repository as repo
from removeany.jobs.models import Job
from removeany.privacy import service as privacy

MAX_IDS = 100
NOTE_NAME = "NOT-INCLUDED.txt"


@dataclass(frozen=True)
class Entry:
    arcname: str
    key: str
    gone: str  # the note's line if the file disappears before it is read


@dataclass
class Plan:
    entries: list[Entry] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    # Written at request time: the stream runs later, outside the request's language.
    heading: str = ""


def parse_ids(value: str) -> list[str]:
    """`a,b,c` as a list without blanks or repeats; 1 to MAX_IDS ids."""
    ids = list(dict.fromkeys(part.strip() for part in value.split(",") if part.strip()))
    if not ids:
        raise DomainError(
            "Name the jobs to download: ids=<job id>,<job id>,...", code="invalid_ids"
        )
    if len(ids) > MAX_IDS:
        raise DomainError(
            f"A ZIP holds the results of at most {MAX_IDS} jobs; you asked for {len(ids)}. "
            "Split the list and download several ZIPs.",
            code="too_many_ids",
        )
    return ids


def _when(value: datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC")


def plan(session: Session, user: User, ids: Sequence[str]) -> Plan:
    """What goes into the ZIP. Every id must be one of the user's jobs (else 404, as for a
    single job): someone else's job is indistinguishable from one that does not exist."""
    found = {job.id: job for job in repo.for_user_by_ids(session, user.id, ids)}
    if any(job_id not in found for job_id in ids):
        raise NotFound("No such job. It may have been deleted after the retention period.")
    out = Plan(heading=t("These jobs are not in this ZIP:"))
    available: list[Job] = []
    for job in (found[job_id] for job_id in ids):
        deletion = privacy.deletion_of(session, job.id)
        if deletion is not None:
            out.notes.append(
                t(
                    "{name} (job {id}): its files were deleted on {when}.",
                    name=job.input_name,
                    id=job.id,
                    when=_when(deletion.deleted_at),
                )
            )
        elif job.status == "failed":
            out.notes.append(
                t(
                    "{name} (job {id}): the job failed, so there is no result.",
                    name=job.input_name,
                    id=job.id,
                )
            )
        elif job.status != "succeeded" or job.result_key is None:
            out.notes.append(
                t(
                    "{name} (job {id}): the job has not finished yet.",
                    name=job.input_name,
                    id=job.id,
                )
            )
        else:
            available.append(job)
    # result_entries keeps the order of the succeeded jobs it is given.
    for job, (arcname, key) in zip(available, result_entries(available), strict=True):
        gone = t(
            "{name} (job {id}): its result was deleted while the ZIP was being made.",
            name=job.input_name,
            id=job.id,
        )
        out.entries.append(Entry(arcname, key, gone))
    return out


def note_text(heading: str, notes: Sequence[str]) -> str:
    return "\n".join([heading, "", *(f"- {line}" for line in notes)]) + "\n"


def stream(storage: Storage, zip_plan: Plan) -> Iterator[bytes]:
    """The ZIP, one member at a time; the note lists what is not in it, including results
    deleted while the ZIP was being made."""
    notes = list(zip_plan.notes)
    gone = {entry.arcname: entry.gone for entry in zip_plan.entries}

    def note() -> tuple[str, bytes] | None:
        return (NOTE_NAME, note_text(zip_plan.heading, notes).encode()) if notes else None

    return stream_zip(
        storage,
        [(entry.arcname, entry.key) for entry in zip_plan.entries],
        on_missing=lambda arcname: notes.append(gone[arcname]),
        closing=note,
    )
