"""How a command gets the platform: ``build_context``, except that a setup problem (a wrong
model hash, an unknown model name in the settings, a database that cannot be opened, a data
folder that cannot be made, a bucket that refuses this server, a secret key that is not the
installation's) ends the command with its
reason, exit code 2, instead of a traceback."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar
from urllib.parse import urlsplit

import typer
from sqlalchemy.exc import SQLAlchemyError

from removeany.engine.errors import ModelError
from removeany.infra.installation import SecretKeyMismatch
from removeany.infra.settings import Settings
from removeany.infra.storage import StorageMisconfigured, check_storage
from removeany.operator_models import ServiceModels, register_operator_models

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from removeany.context import Context

T = TypeVar("T")


def count(n: int, singular: str, plural: str | None = None) -> str:
    """``n`` and the noun in the form that fits it ("1 credit", "3 credits"), for the CLI's
    lines, which are English (the web pages use ``i18n.tn``)."""
    return f"{n} {singular if n == 1 else plural or singular + 's'}"


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(2)


@contextmanager
def setup_problems_end_the_command() -> Iterator[None]:
    """What an operator's setting got wrong, said in a line (exit 2), not a traceback."""
    try:
        yield
    except ModelError as exc:
        raise _fail(exc.message) from None
    except StorageMisconfigured as exc:
        raise _fail(f"file storage: {exc.reason}") from None
    except SecretKeyMismatch as exc:
        raise _fail(str(exc)) from None
    except SQLAlchemyError as exc:
        # The driver's own first line (never the URL, which may hold a password).
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        raise _fail(
            f"cannot open the database: {reason} (check REMOVEANY_DATABASE_URL, or "
            "REMOVEANY_DATA_DIR for the embedded SQLite file)"
        ) from None
    except OSError as exc:
        raise _fail(f"{exc.filename or exc}: {exc.strerror} (check REMOVEANY_DATA_DIR)") from None


def check_operator_models(settings: Settings) -> None:
    """Register and check the operator's models now, or end the command saying what is wrong."""
    with setup_problems_end_the_command():
        register_operator_models(settings)


def check_service_models(settings: Settings, *, runs_jobs: bool) -> None:
    """The weights this process will run are in place and intact, or the command ends naming
    what to fix: without them `worker` (and `serve` with its workers) would start, claim
    jobs and fail every one (`service_unavailable`), and a web process the home page's
    try-out (`engine_unavailable`). A web process without workers runs only the try-out's
    cutout model, and none when the try-out is off. Call after the operator's models are
    registered (`check_operator_models`, `platform_context`)."""
    from removeany.engine.models import default_model_dir, get_model, model_path, verify_model

    model_dir = settings.model_dir or default_model_dir()
    for setting, name in ServiceModels.run_by(settings, runs_jobs=runs_jobs):
        try:
            spec = get_model(name)
            verify_model(spec, model_path(spec, model_dir))
        except ModelError as exc:
            why = (
                "this process runs the jobs"
                if runs_jobs
                else "the home page's try-out runs it in this process; "
                "REMOVEANY_TRIAL_PER_IP_PER_HOUR=0 turns the try-out off"
            )
            raise _fail(
                f"{setting} ({name}): {exc.message} Check REMOVEANY_MODEL_DIR ({model_dir}): {why}."
            ) from None


def check_worker_secret_key(settings: Settings) -> None:
    """For `worker`, which does not migrate: its secret key is the installation's, or the
    command ends saying so (`infra.installation`). A database the web side has not set up
    yet has nothing to compare with; the first `serve` or command records its key then."""
    from sqlalchemy import inspect

    from removeany.infra.db import Database, utcnow
    from removeany.infra.installation import InstallationKey, check_secret_key

    with setup_problems_end_the_command():
        db = Database(settings.sqlalchemy_url)
        try:
            if inspect(db.engine).has_table(InstallationKey.__tablename__):
                check_secret_key(db, settings.resolved_secret_key(), now=utcnow())
        finally:
            db.dispose()


def check_file_storage(settings: Settings) -> None:
    """For the processes that store files (`serve`, `worker`): the bucket takes a probe
    object now, or the command ends naming the setting to fix (see `check_storage`)."""
    with setup_problems_end_the_command():
        check_storage(settings)


def _is_loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _why_links_fail(settings: Settings, *, configured: bool) -> str | None:
    """Why nobody could open the links made from `settings.base_url`, or None."""
    url = settings.base_url
    if configured:
        parts = urlsplit(url)
        try:
            port_ok = parts.port is None or parts.port > 0
        except ValueError:
            port_ok = False
        if parts.scheme not in ("http", "https") or not parts.hostname or not port_ok:
            return (
                f"REMOVEANY_BASE_URL ({url}) is not a web address: write the address people "
                "open whole, e.g. https://removeany.example.com"
            )
        if parts.path.strip("/") or parts.query or parts.fragment:
            return (
                f"REMOVEANY_BASE_URL ({url}) has a path ({parts.path}): the pages link from "
                "the root of their host (/login, /app, /static/...), so RemoveAny cannot be "
                "served under a path; give it a host name of its own (e.g. "
                "https://removeany.example.com) and set REMOVEANY_BASE_URL to that"
            )
        return None
    host = urlsplit(url).hostname or ""
    if settings.mail_backend == "smtp" and _is_loopback(host):
        return (
            f"REMOVEANY_BASE_URL is not set, so emailed links would open {url}, which only "
            "this machine can reach, and REMOVEANY_MAIL_BACKEND=smtp sends them to other "
            "people's mailboxes: set REMOVEANY_BASE_URL to the address people open (e.g. "
            "https://removeany.example.com)"
        )
    return None


def _served_url_file(settings: Settings) -> Path:
    return settings.data_dir / "served_url"


def record_served_url(settings: Settings) -> None:
    """`serve`, about to listen: keep the address its emailed links use in the data folder,
    for the commands run beside it without REMOVEANY_BASE_URL (`platform_context`)."""
    path = _served_url_file(settings)
    with setup_problems_end_the_command():
        partial = path.with_suffix(".tmp")
        partial.write_text(settings.base_url + "\n", encoding="utf-8")
        partial.replace(path)


def _recorded_served_url(settings: Settings) -> str | None:
    try:
        recorded = _served_url_file(settings).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return recorded if recorded.startswith(("http://", "https://")) else None


def platform_context(settings: Settings, *, serving: str | None = None) -> Context:
    """The migrated platform for a command (database, storage, mail, models checked).

    Its emails (and the API's or a command's sentences that name a page) link to
    REMOVEANY_BASE_URL. Without it, `serve` links to `serving`, the address it listens on,
    and any other command to the address the last `serve` of the same data folder used
    (`record_served_url`), else to serve's default: an operator's publish-terms or sweep
    beside `serve --port 8080` links to port 8080. Links nobody could open end the command
    (exit 2) before anything is migrated, published or emailed."""
    from removeany.context import build_context

    configured = "base_url" in settings.model_fields_set
    if not configured:
        address = serving or _recorded_served_url(settings) or settings.base_url
        settings = settings.model_copy(update={"base_url": address})
    problem = _why_links_fail(settings, configured=configured)
    if problem is not None:
        raise _fail(problem)
    with setup_problems_end_the_command():
        return build_context(settings, migrate=True)


@contextmanager
def operator_context() -> Iterator[Context]:
    """The platform for an operator command; a refused change (a `DomainError`) ends the
    command with its sentence and exit code 2."""
    from removeany.errors import DomainError

    ctx = platform_context(Settings())
    try:
        yield ctx
    except DomainError as exc:
        raise _fail(exc.addressed(ctx.settings.base_url)) from None
    finally:
        ctx.close()


def in_transaction(work: Callable[[Context, Session], T]) -> T:
    """``work`` in one transaction of an operator command (see `operator_context`); what it
    returns is printed by the caller after the commit, so a closed pipe cannot undo it."""
    with operator_context() as ctx, ctx.db.transaction() as session:
        return work(ctx, session)
