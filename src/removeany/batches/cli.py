"""`removeany batch SOURCE --email USER`: an operator points the platform at a folder (or a
ZIP) and processes it as a batch for a user, with credits, progress and a results ZIP."""

from __future__ import annotations

import json
import time
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

import typer
from sqlalchemy.orm import Session

from removeany.accounts import repository as accounts_repo
from removeany.accounts.models import User
from removeany.batches import service
from removeany.batches.schemas import RejectedFile
from removeany.cli_context import count, platform_context
from removeany.context import Context
from removeany.engine.errors import ImageError, OptionError
from removeany.errors import DomainError, NotFound
from removeany.infra.settings import Settings


def entries_from_folder(root: Path) -> Iterator[service.Entry | RejectedFile]:
    """Every file under `root`, sorted, keeping its relative path; hidden files and links
    (which could point outside the folder) are left out."""
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if any(part.startswith(".") for part in rel.split("/")):
            continue
        if path.is_symlink():
            yield RejectedFile(path=rel, code="unsupported_entry", message="Links are skipped.")
            continue
        if not path.is_file():
            continue
        size = path.stat().st_size
        yield service.Entry(rel, size, _reader(path, size))


def _reader(path: Path, size: int) -> Callable[[int], bytes]:
    def read(limit: int) -> bytes:
        with path.open("rb") as fh:
            return fh.read(min(limit, size + 1))  # not a buffer of `limit` bytes per file

    return read


def parse_option_pairs(pairs: list[str]) -> dict[str, object]:
    """key=value pairs; values are JSON where they parse (true, 3, "x"), else plain strings."""
    options: dict[str, object] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"{pair!r}: write options as key=value")
        try:
            options[key] = json.loads(value)
        except ValueError:
            options[key] = value
    return options


def batch_command(
    source: Path,
    email: str,
    service_name: str,
    option: list[str],
    out: Path | None,
    wait: bool,
    name: str | None,
) -> int:
    from removeany.batches.submit import submit_batch

    settings = Settings()
    ctx = platform_context(settings)
    archive: IO[bytes] | None = None

    def user_of(session: Session) -> User:
        user = accounts_repo.user_by_email(session, email.strip().lower())
        if user is None:
            raise NotFound(f"There is no user {email}. Create one with `removeany users`.")
        return user

    try:
        # A mistyped --email stops the command before a large folder is read.
        with ctx.db.transaction() as session:
            user_of(session)
        if source.is_dir():
            entries = list(entries_from_folder(source))
        elif zipfile.is_zipfile(source):
            archive = source.open("rb")
            entries = list(service.entries_from_zip(archive, settings))
        else:
            typer.echo(f"error: {source} is neither a folder nor a ZIP file", err=True)
            return 2
        options = service.parse_options(service_name, parse_option_pairs(option))
        if out is not None and not _can_write(out):
            return 2
        planned = service.plan(entries, settings, service=service_name, options=options)
        for rejected in planned.rejected:
            typer.echo(f"skipped {rejected['path']}: {rejected['message']}", err=True)
        ctx.start_queue()

        batch = submit_batch(
            ctx,
            user_of,
            service_name=service_name,
            options=options,
            name=name or source.name,
            planned=planned,
        )
        typer.echo(f"batch {batch.id}: {count(batch.total_items, 'item')}")
        if not wait:
            return 0
        # A photo skipped at upload (unreadable, too large, a link) is a failed input, as the
        # offline commands count it: exit 1. Files that are no image by name are only left out.
        skipped_photos = any(
            Path(rejected["path"]).suffix.lower() in service.IMAGE_SUFFIXES
            for rejected in planned.rejected
        )
        return max(_follow(ctx, batch.id, out), 1 if skipped_photos else 0)
    except DomainError as exc:
        typer.echo(f"error: {exc.addressed(ctx.settings.base_url)}", err=True)
        return 2
    except (ImageError, OptionError) as exc:
        typer.echo(f"error: {exc.message}", err=True)
        return 2
    finally:
        if archive is not None:
            archive.close()
        ctx.close()


def _can_write(out: Path) -> bool:
    """Checked before the batch is submitted, so a wrong --out costs nothing: its folder is
    made now and it must not be a folder itself."""
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        typer.echo(f"error: --out {out}: {exc.strerror or exc}", err=True)
        return False
    if out.is_dir():
        typer.echo(
            f"error: --out {out} is a folder; give a file name such as results.zip", err=True
        )
        return False
    return True


def _follow(ctx: Context, batch_id: str, out: Path | None) -> int:
    from removeany.batches import repository as repo
    from removeany.batches import results
    from removeany.batches.models import Batch
    from removeany.jobs import results_zip

    last = ""
    while True:
        with ctx.db.transaction() as session:
            batch = session.get(Batch, batch_id)
            assert batch is not None
            summary = service.summary(session, batch, ctx.now())
        c = summary.counts
        line = (
            f"{summary.finished}/{summary.total} done: {c.succeeded} succeeded, "
            f"{c.failed} failed, {c.running} running"
        )
        if line != last:
            typer.echo(line, err=True)
            last = line
        if summary.status in ("completed", "cancelled"):
            break
        time.sleep(0.5)
    with ctx.db.transaction() as session:
        items = list(repo.items(session, batch_id))
    for job in items:
        if job.status == "failed":
            typer.echo(f"failed {job.relative_path}: {job.error_message}", err=True)
    if out is not None:
        with ctx.db.transaction() as session:
            batch = session.get(Batch, batch_id)
            assert batch is not None
            zip_plan = results.plan(batch, items)
        with out.open("wb") as fh:
            for chunk in results_zip.stream(ctx.storage, zip_plan):
                fh.write(chunk)
        typer.echo(f"results: {out} ({count(len(zip_plan.entries), 'file')})")
    typer.echo(f"charged {count(summary.charged, 'credit')}")
    return 0 if c.failed == 0 else 1
