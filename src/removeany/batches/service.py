"""Batch rules: reading uploads safely, limits, creating items as jobs, cancelling, results.
Flushes, never commits: callers own the transaction (see batches.submit for the boundary)."""

from __future__ import annotations

import lzma
import stat
import uuid
import zipfile
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import PurePosixPath
from typing import IO, Any

from pydantic import BaseModel
from sqlalchemy.orm import Session

from removeany.accounts.models import User
from removeany.accounts.service import require_verified
from removeany.batches import repository as repo
from removeany.batches import zipdir
from removeany.batches.models import Batch
from removeany.batches.schemas import BatchCounts, BatchItemOut, BatchOut, RejectedFile
from removeany.catalog.prices import cheapest
from removeany.credits import free
from removeany.credits import service as ledger
from removeany.credits.service import InsufficientCredits
from removeany.engine.errors import ImageError
from removeany.engine.io import decode_image
from removeany.errors import DomainError, NotFound
from removeany.infra.settings import Settings
from removeany.infra.storage import Storage
from removeany.jobs import processors
from removeany.jobs import repository as jobs_repo
from removeany.jobs import service as jobs
from removeany.jobs.models import Job
from removeany.jobs.processors import MEDIA_TYPES
from removeany.jobs.worker import cancel_queued

# Options each service accepts (the same as a single job's); a service not listed here passes
# its options to its processor, which refuses bad ones (the item then fails, released).
SERVICE_OPTIONS: dict[str, type[BaseModel]] = processors.SERVICE_OPTIONS
OPTION_CHECKS: dict[str, Callable[[dict[str, Any]], object]] = processors.OPTION_CHECKS
EXTENSIONS = {media_type: ext for ext, media_type in MEDIA_TYPES.items()}
_JUNK_NAMES = frozenset({".DS_Store", "Thumbs.db", "desktop.ini"})
# Names counted as images when a batch is priced before its files are read.
IMAGE_SUFFIXES = frozenset(
    {".png", ".jpg", ".jpeg", ".jfif", ".webp", ".gif", ".bmp", ".tif", ".tiff"}
)
TERMINAL = frozenset({"succeeded", "failed", "cancelled"})


class BatchError(DomainError):
    code = "invalid_batch"


class BatchTooLarge(BatchError):
    status_code = 413
    code = "batch_too_large"


class UnreadableEntry(BatchError):
    """A ZIP member whose data cannot be read: the plan skips it with this reason."""

    code = "unreadable_entry"


def invalid_archive() -> BatchError:
    return BatchError(
        "The archive is not a valid ZIP file. Create it again and re-upload it.",
        code="invalid_archive",
    )


# What zipfile raises for a member it cannot read (its directory entry points at no local
# header or at another name, an unknown compression method, data that is not what the
# method says, a wrong CRC, a truncated stream; a negative offset is a ValueError).
_MEMBER_READ_ERRORS = (
    zipfile.BadZipFile,
    NotImplementedError,
    RuntimeError,
    zlib.error,
    lzma.LZMAError,
    EOFError,
    OSError,
    ValueError,
)


@dataclass
class Entry:
    """One file of an upload: where it sits in the batch and how to read it (bounded)."""

    path: str
    declared_size: int
    read: Callable[[int], bytes]  # read(limit) -> at most limit bytes


@dataclass
class PlannedItem:
    entry: Entry
    size: int
    width: int
    height: int


@dataclass
class Plan:
    items: list[PlannedItem] = field(default_factory=list)
    rejected: list[dict[str, str]] = field(default_factory=list)
    total_bytes: int = 0
    total_pixels: int = 0


@dataclass(frozen=True)
class Affordable:
    """A user's credits and the least an image of each service costs, read before an upload
    is: a batch whose image count alone shows it cannot be paid is refused while its files
    are still arriving, before they are read or stored (the exact price is checked again by
    `create`)."""

    available: int
    cheapest: dict[str, int]

    def check(self, service: str | None, images: int) -> None:
        """Raise 402 if `images` images of `service` (any service while it is not known
        yet) cost more than the balance even at the cheapest size."""
        prices = [self.cheapest[service]] if service in self.cheapest else self.cheapest.values()
        needed = images * min(prices, default=0)
        if needed > self.available:
            raise InsufficientCredits(needed, self.available)


def affordable(
    session: Session, user: User, services: Iterable[str], now: datetime, monthly_allowance: int
) -> Affordable | None:
    """What `user` can pay for; None for an unconfirmed account, which is refused for that
    reason when the batch is created."""
    if not user.is_verified:
        return None
    free.ensure_monthly_allowance(session, user.id, now=now, credits=monthly_allowance)
    prices = {name: cheapest(session, name) for name in services}
    return Affordable(
        available=ledger.balance(session, user.id, now).available,
        cheapest={name: price for name, price in prices.items() if price is not None},
    )


def looks_like_image(name: str) -> bool:
    return PurePosixPath(name.lower()).suffix in IMAGE_SUFFIXES


def count_zip_images(fileobj: IO[bytes], settings: Settings) -> int:
    """Members of a ZIP that will be items if their images decode, from its central
    directory alone (nothing is decompressed): the batch's least possible size."""
    count = sum(
        1
        for entry in entries_from_zip(fileobj, settings)
        if isinstance(entry, Entry)
        and looks_like_image(entry.path)
        and entry.declared_size <= settings.max_upload_bytes
    )
    fileobj.seek(0)
    return count


def new_batch_id() -> str:
    return uuid.uuid4().hex


def parse_options(service: str, raw: dict[str, Any]) -> dict[str, Any]:
    """Validate options before anything is charged; unknown fields are refused."""
    model = SERVICE_OPTIONS.get(service)
    if model is None:
        return dict(raw)
    return processors.validate_options(service, raw)


def safe_relative_path(name: str) -> str | None:
    """A name from a ZIP or an upload as a clean relative POSIX path, each part kept by the
    single uploads' rule (`jobs.service.visible_name`: no control or invisible formatting
    characters), or None if it tries to leave the batch (absolute, drive letter, '..'; judged
    after that cleaning, so `..<U+202E>` is '..' too: zip-slip safe)."""
    if len(name) > 1024:
        return None
    name = name.replace("\\", "/")
    if name.startswith("/"):
        return None
    parts = [p for p in map(jobs.visible_name, name.split("/")) if p not in ("", ".")]
    if not parts or any(p == ".." for p in parts):
        return None
    if ":" in parts[0]:
        return None
    return "/".join(parts)


def _is_junk(path: str) -> bool:
    parts = path.split("/")
    return parts[0] == "__MACOSX" or parts[-1] in _JUNK_NAMES or parts[-1].startswith("._")


def entries_from_zip(fileobj: IO[bytes], settings: Settings) -> Iterator[Entry | RejectedFile]:
    """Entries of a ZIP, refusing what could hurt: paths leaving the batch, links, encrypted
    members, nested archives (not opened) and bombs (every read is bounded by the per-file
    limit, whatever sizes the archive declares)."""
    most = 2 * settings.batch_max_items + 1000
    # The entries are counted from the directory's headers before zipfile reads it: zipfile
    # makes a ZipInfo of every entry before anything can count them, and a directory of
    # 46-byte entries all pointing at one member makes a 2 GiB upload 45 million of them
    # (tens of GB). zipdir refuses any archive whose directory could be read otherwise.
    try:
        directory = zipdir.find(fileobj)
        entries = zipdir.count_entries(fileobj, directory, most + 1)
    except zipdir.Malformed:
        raise invalid_archive() from None
    finally:
        fileobj.seek(0)
    if entries > most:
        raise too_many_files(settings)
    try:
        archive = zipfile.ZipFile(fileobj)
    except (zipfile.BadZipFile, OSError, ValueError, NotImplementedError):
        # NotImplementedError: a member needing a newer version than zipfile reads (> 6.3).
        raise invalid_archive() from None
    infos = archive.infolist()
    if len(infos) != entries:  # zipfile read another directory than zipdir found
        raise invalid_archive()
    # zipfile cuts a name at its first NUL byte; one that starts with NUL (or is empty) has
    # none left, and ZipInfo.is_dir() then raises IndexError. Judged before anything is
    # yielded, so counting and reading refuse such an archive alike.
    if any(not info.filename for info in infos):
        raise invalid_archive()
    seen: set[str] = set()
    for info in infos:
        if info.is_dir():
            continue
        path = safe_relative_path(member_name(info))
        if path is None:
            yield RejectedFile(
                path=jobs.visible_name(info.filename)[:300],
                code="unsafe_path",
                message="The path leaves the archive (absolute or '..'); the file was skipped.",
            )
            continue
        if _is_junk(path) or any(p.startswith(".") for p in path.split("/")):
            continue
        if stat.S_ISLNK(info.external_attr >> 16):
            yield RejectedFile(
                path=path, code="unsupported_entry", message="Links are not followed; skipped."
            )
            continue
        if info.flag_bits & 0x1:
            yield RejectedFile(
                path=path,
                code="encrypted_entry",
                message="The file is password-protected; add it unencrypted.",
            )
            continue
        if path in seen:
            yield RejectedFile(path=path, code="duplicate_path", message="Duplicate name; skipped.")
            continue
        seen.add(path)
        yield Entry(path, info.file_size, _zip_reader(archive, info))


# Bit 11 of a member's flags: its name is UTF-8 (else, by the standard, CP437).
_UTF8_NAME = 0x800


def member_name(info: zipfile.ZipInfo) -> str:
    """The member's name as the computer that made the ZIP wrote it. Without the UTF-8 flag
    zipfile reads names as CP437, but macOS and Linux tools write UTF-8 without setting it,
    and Windows in Chinese writes GBK: 鞋子/商品.jpg came out as '╨¼╫╙/╔╠╞╖.jpg', in the
    items and in the results ZIP. Such bytes are read as UTF-8 if they are valid UTF-8, else as
    GBK if every Chinese character in it has both bytes above ASCII (the common characters
    do; an old Windows ZIP's 'Müller' (M, 0x81, l...) does not), else as CP437."""
    name = info.filename
    if info.flag_bits & _UTF8_NAME or name.isascii():
        return name
    raw = name.encode("cp437")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        pass
    try:
        chinese = raw.decode("gbk")
    except UnicodeDecodeError:
        return name
    if all(c.isascii() or c.encode("gbk")[1] >= 0x80 for c in chinese):
        return chinese
    return name


def _zip_reader(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> Callable[[int], bytes]:
    def read(limit: int) -> bytes:
        try:
            with archive.open(info) as fh:
                return fh.read(limit)
        except _MEMBER_READ_ERRORS:
            raise UnreadableEntry(
                "The file cannot be read from the archive: it is damaged or packed with a "
                "compression method we do not read. Create the ZIP again with ordinary "
                "compression and re-upload it."
            ) from None

    return read


def entries_from_files(files: Iterable[tuple[str, IO[bytes]]]) -> Iterator[Entry | RejectedFile]:
    seen: set[str] = set()
    for filename, fh in files:
        path = safe_relative_path(filename or "image")
        if path is None:
            yield RejectedFile(
                path=jobs.visible_name(filename)[:300],
                code="unsafe_path",
                message="Unsafe file name; skipped.",
            )
            continue
        if path in seen:
            yield RejectedFile(path=path, code="duplicate_path", message="Duplicate name; skipped.")
            continue
        seen.add(path)
        fh.seek(0, 2)
        size = fh.tell()
        yield Entry(path, size, _file_reader(fh, size))


def _file_reader(fh: IO[bytes], size: int) -> Callable[[int], bytes]:
    def read(limit: int) -> bytes:
        # A file on disk asked for `limit` bytes allocates all of them first (25 MB for each
        # photo of a batch): ask for what it holds.
        fh.seek(0)
        return fh.read(min(limit, size + 1))

    return read


def too_many_files(settings: Settings) -> BatchTooLarge:
    return BatchTooLarge(
        f"A batch holds at most {settings.batch_max_items:,} files. Split the upload into "
        "several batches."
    )


def plan(
    entries: Iterable[Entry | RejectedFile],
    settings: Settings,
    *,
    service: str,
    options: dict[str, Any],
) -> Plan:
    """Read and validate every file once, enforcing the per-file and per-batch limits. A file
    whose result `options` could not give (a format too small for it: `output_too_large`)
    is rejected here, with the reason, rather than charged and failed after processing."""
    result = Plan()
    for entry in entries:
        if isinstance(entry, RejectedFile):
            result.rejected.append(entry.model_dump())
            continue
        if len(result.items) >= settings.batch_max_items:
            raise too_many_files(settings)
        limit = settings.max_upload_bytes
        if entry.declared_size > limit:
            result.rejected.append(_rejected(entry.path, _too_big(limit)))
            continue
        try:
            data = entry.read(limit + 1)
        except UnreadableEntry as exc:
            result.rejected.append({"path": entry.path, "code": exc.code, "message": exc.message})
            continue
        if len(data) > limit:
            result.rejected.append(_rejected(entry.path, _too_big(limit)))
            continue
        result.total_bytes += len(data)
        if result.total_bytes > settings.batch_max_bytes:
            raise BatchTooLarge(
                f"The files add up to more than {settings.batch_max_bytes // 1024**2:,} MB. "
                "Split the upload into several batches."
            )
        try:
            image = decode_image(data, max_bytes=limit, max_pixels=settings.max_upload_pixels)
        except ImageError as exc:
            result.rejected.append(_rejected(entry.path, exc))
            continue
        try:
            processors.check_output(service, options, image)
        except ImageError as exc:
            image.close()
            result.rejected.append(_rejected(entry.path, exc))
            continue
        result.total_pixels += image.width * image.height
        if result.total_pixels > settings.batch_max_pixels:
            raise BatchTooLarge(
                f"The images add up to more than {settings.batch_max_pixels:,} pixels. "
                "Split the upload into several batches or resize the images."
            )
        result.items.append(PlannedItem(entry, len(data), image.width, image.height))
        image.close()
    if not result.items:
        detail = "; ".join(f"{r['path']}: {r['message']}" for r in result.rejected[:3])
        raise BatchError(
            "The upload holds no image we can process. Upload PNG, JPEG, WebP, GIF, BMP or "
            "TIFF files, or a ZIP of them." + (f" ({detail})" if detail else ""),
            code="empty_batch",
        )
    return result


def _too_big(limit: int) -> ImageError:
    return ImageError("file_too_large", f"The file is larger than {limit:,} bytes; it was skipped.")


def _rejected(path: str, exc: ImageError) -> dict[str, str]:
    return {"path": path, "code": exc.code, "message": exc.message}


def create(
    session: Session,
    storage: Storage,
    user: User,
    *,
    service: str,
    options: dict[str, Any],
    name: str,
    planned: Plan,
    now: datetime,
    reserve_ttl: timedelta,
    written: list[str],
    monthly_allowance: int = 0,
) -> tuple[Batch, list[Job]]:
    """The batch row and one job per item, each through jobs.service.submit (price, hold,
    original), once the balance covers the whole batch. All or nothing: if anything fails on
    item N, the caller rolls back and deletes the originals listed in `written`."""
    batch = Batch(
        id=new_batch_id(),
        user_id=user.id,
        name=name[:255],
        service=service,
        options=options,
        total_items=len(planned.items),
        total_bytes=planned.total_bytes,
        total_pixels=planned.total_pixels,
        rejected=planned.rejected,
        created_at=now,
    )
    session.add(batch)
    session.flush()
    require_verified(user)
    # The whole batch is priced before any original is written: 500 photos for a balance of
    # 250 were refused only after 250 originals were stored, then deleted again.
    jobs_repo.lock_owner(session, user.id)
    free.ensure_monthly_allowance(session, user.id, now=now, credits=monthly_allowance)
    needed = sum(
        jobs.price_of(session, service, options, item.width, item.height).credits
        for item in planned.items
    )
    available = ledger.balance(session, user.id, now).available
    if needed > available:
        raise InsufficientCredits(needed, available)
    created: list[Job] = []
    for item in planned.items:
        data = item.entry.read(item.size + 1)
        job = jobs.submit(
            session,
            storage,
            user,
            service=service,
            options=options,
            original=data,
            input_name=PurePosixPath(item.entry.path).name,
            width=item.width,
            height=item.height,
            now=now,
            reserve_ttl=reserve_ttl,
        )
        written.append(job.input_key)
        job.batch_id = batch.id
        job.relative_path = item.entry.path
        created.append(job)
    session.flush()
    return batch, created


def get_for_user(session: Session, user: User, batch_id: str) -> Batch:
    batch = repo.get_for_user(session, batch_id, user.id)
    if batch is None:
        raise NotFound("No such batch. It may have been deleted after the retention period.")
    return batch


def cancel(session: Session, user: User, batch_id: str, now: datetime) -> Batch:
    """Stop a batch: items not yet started are cancelled and their holds released; items
    already running finish (and are charged only if they succeed). Cancelling twice is fine."""
    batch = get_for_user(session, user, batch_id)
    # The owner first, then the batch and its jobs: the order claims and the ledger lock in,
    # so cancelling never deadlocks with a worker claiming one of these items.
    jobs_repo.lock_owner(session, batch.user_id)
    repo.lock(session, batch.id)
    if batch.cancelled_at is None:
        batch.cancelled_at = now
    for job_id, owner in repo.queued_item_ids(session, batch.id):
        cancel_queued(session, job_id, owner, now)
    session.flush()
    return batch


def summary(session: Session, batch: Batch, now: datetime) -> BatchOut:
    counts = BatchCounts(**repo.status_counts(session, batch.id))
    finished = counts.succeeded + counts.failed + counts.cancelled
    active = counts.queued + counts.running
    if active:
        status = "cancelling" if batch.cancelled_at else "running"
    else:
        status = "cancelled" if batch.cancelled_at else "completed"
    base = f"/api/v1/batches/{batch.id}"
    return BatchOut(
        id=batch.id,
        name=batch.name,
        service=batch.service,
        options=batch.options,
        status=status,
        total=batch.total_items,
        finished=finished,
        progress=round(finished / batch.total_items, 4) if batch.total_items else 1.0,
        eta_seconds=_eta_seconds(session, batch, counts, now) if active else None,
        counts=counts,
        charged=repo.charged(session, batch.id),
        total_bytes=batch.total_bytes,
        total_pixels=batch.total_pixels,
        rejected=[RejectedFile(**r) for r in batch.rejected],
        created_at=batch.created_at,
        cancelled_at=batch.cancelled_at,
        finished_at=None if active else repo.last_finished(session, batch.id),
        items_url=f"{base}/items",
        events_url=f"{base}/events",
        results_url=f"{base}/results",
    )


def _eta_seconds(session: Session, batch: Batch, counts: BatchCounts, now: datetime) -> int | None:
    """Seconds until the items left are done at the pace the batch has had since its first
    item started (other users' jobs in between included); None until one item is done."""
    processed = counts.succeeded + counts.failed
    started = repo.first_started(session, batch.id)
    if not processed or started is None:
        return None
    elapsed = (now - _aware(started, now)).total_seconds()
    return max(0, round(elapsed / processed * (counts.queued + counts.running)))


def _aware(value: datetime, now: datetime) -> datetime:
    """SQLite hands back naive UTC datetimes."""
    return value if value.tzinfo is not None else value.replace(tzinfo=now.tzinfo)


@dataclass
class ItemWatch:
    """What an events stream has told its client: each item's status, and the counts they were
    read at. Items are read again only when the counts moved, two columns of each, and whole
    rows only for the items whose status changed: a stream on a 5,000-item batch read all
    5,000 rows twice a second. (Two items swapping statuses between two reads, one re-queued
    as another starts, leave the counts alike: each is sent at its next change.)"""

    since: datetime | None  # the first read sends the items started or finished since then
    statuses: dict[str, str] = field(default_factory=dict)
    counts: BatchCounts | None = None

    def changes(self, session: Session, batch: Batch, counts: BatchCounts) -> list[Job]:
        """The items whose status changed since the last call; `counts` are the batch's,
        read just before."""
        if self.counts is None:
            self.statuses = dict(repo.item_statuses(session, batch.id))
            changed = list(
                repo.items_changed_since(session, batch.id, self.since or batch.created_at)
            )
        elif counts == self.counts:
            return []
        else:
            moved = [
                job_id
                for job_id, status in repo.item_statuses(session, batch.id)
                if self.statuses.get(job_id) != status
            ]
            changed = repo.items_by_ids(session, moved)
        self.counts = counts
        for job in changed:
            self.statuses[job.id] = job.status
        return changed


def item_out(job: Job) -> BatchItemOut:
    done = job.status == "succeeded"
    return BatchItemOut(
        job_id=job.id,
        relative_path=job.relative_path or job.input_name,
        status=job.status,
        cost=job.cost,
        charged=job.cost if done else 0,
        error_code=job.error_code,
        error_message=job.error_message,
        result_url=f"/api/v1/jobs/{job.id}/result" if done else None,
        result_path=result_path(job.relative_path or job.input_name, job.result_media_type)
        if done
        else None,
        finished_at=job.finished_at,
    )


def result_path(relative_path: str, media_type: str | None) -> str:
    """The original's path with the output format's extension: a/b/cat.jpg → a/b/cat.png."""
    ext = EXTENSIONS.get(media_type or "", "png")
    path = PurePosixPath(relative_path)
    return str(path.with_name(f"{path.stem or 'image'}.{ext}"))


def result_entries(items: Iterable[Job]) -> list[tuple[str, str]]:
    """(path in the ZIP, storage key) for every succeeded item; clashing names (cat.jpg and
    cat.png both become cat.png) get a numbered suffix."""
    out: list[tuple[str, str]] = []
    used: set[str] = set()
    for job in items:
        if job.status != "succeeded" or job.result_key is None:
            continue
        # Names stored before jobs.upload_name existed may hold a path: only their last part.
        name = job.relative_path or jobs.upload_name(job.input_name)
        path = result_path(name, job.result_media_type)
        candidate, n = path, 2
        while candidate in used:
            p = PurePosixPath(path)
            candidate = str(p.with_name(f"{p.stem} ({n}){p.suffix}"))
            n += 1
        used.add(candidate)
        out.append((candidate, job.result_key))
    return out
