"""`removeany admin ...`: moderation from the command line. Every action needs --reason and is
written to the audit log as `cli:<operating-system user>`."""

from __future__ import annotations

import getpass
from pathlib import Path
from typing import Annotated, Any

import typer

from removeany.cli_context import (
    count,
    in_transaction,
    operator_context,
    setup_problems_end_the_command,
)

admin_app = typer.Typer(
    help="Moderate users, credits, services, terms; read the audit log.", no_args_is_help=True
)

Reason = Annotated[str, typer.Option("--reason", "-r", help="Why (required, audit-logged).")]
UserRef = Annotated[str, typer.Argument(help="The user's email address or id.")]


def _actor() -> Any:
    from removeany.moderation.audit import Actor

    try:
        who = getpass.getuser()
    except Exception:
        who = "unknown"
    return Actor(None, f"cli:{who}")


def _describe(user: Any) -> str:
    flags = [user.status]
    if user.is_admin:
        flags.append("admin")
    if user.locked_at is not None:
        flags.append("locked")
    return f"{user.id}\t{user.email}\t{','.join(flags)}"


@admin_app.command("users")
def users(
    query: Annotated[str, typer.Argument(help="Part of an email address, or an id.")] = "",
    status: Annotated[
        str, typer.Option(help="Only this status: active, restricted, banned or deleted.")
    ] = "",
) -> None:
    """Search users: id, email, status."""
    from removeany.moderation import service as moderation

    def work(_ctx: Any, session: Any) -> None:
        for user in moderation.search_users(session, query, status=status, limit=500):
            typer.echo(_describe(user))

    in_transaction(work)


def _user_action(name: str, user_ref: str, reason: str) -> None:
    from removeany.moderation import service as moderation
    from removeany.privacy import service as privacy

    with operator_context() as ctx:
        with ctx.db.transaction() as session:
            user = moderation.find_user(session, user_ref)
            action = getattr(moderation, {"delete": "delete_user"}.get(name, name))
            keys = action(session, _actor(), user, reason, now=ctx.now())
            line = _describe(user)
            if name == "delete":
                privacy.delete_files(ctx.storage, keys)
        typer.echo(line)


@admin_app.command("restrict")
def restrict(user: UserRef, reason: Reason) -> None:
    """No processing (jobs refused with account_restricted)."""
    _user_action("restrict", user, reason)


@admin_app.command("ban")
def ban(user: UserRef, reason: Reason) -> None:
    """No sign-in; sessions and API keys revoked."""
    _user_action("ban", user, reason)


@admin_app.command("reinstate")
def reinstate(user: UserRef, reason: Reason) -> None:
    """Lift a restriction or ban."""
    _user_action("reinstate", user, reason)


@admin_app.command("delete")
def delete(
    user: UserRef,
    reason: Reason,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
) -> None:
    """Erase the account's images and personal data (the ledger stays, anonymised)."""
    if not yes:
        typer.confirm(f"Delete {user} and erase their data?", abort=True)
    _user_action("delete", user, reason)


@admin_app.command("credits")
def credits(
    user: UserRef,
    amount: Annotated[
        int,
        typer.Argument(help="Positive grants, negative revokes (put options first, then -- -5)."),
    ],
    reason: Reason,
    days: Annotated[
        int | None,
        typer.Option(help="Days granted credits last (default: REMOVEANY_ADMIN_CREDIT_DAYS)."),
    ] = None,
) -> None:
    """Grant or revoke credits."""
    from removeany.credits import service as ledger
    from removeany.moderation import service as moderation

    def work(ctx: Any, session: Any) -> list[str]:
        target = moderation.find_user(session, user)
        lines = []
        if amount >= 0:
            lot = moderation.grant_credits(
                session,
                _actor(),
                target,
                amount,
                reason,
                now=ctx.now(),
                days=days or ctx.settings.admin_credit_days,
            )
            lines.append(
                f"granted {count(amount, 'credit')}, expiring {lot.expires_at:%Y-%m-%d %H:%M} UTC"
            )
        else:
            moderation.revoke_credits(session, _actor(), target, -amount, reason, now=ctx.now())
        balance = ledger.balance(session, target.id, ctx.now())
        return [*lines, f"{target.email}: {count(balance.available, 'credit')} available"]

    for line in in_transaction(work):
        typer.echo(line)


@admin_app.command("service")
def service(
    name: Annotated[str, typer.Argument(help="e.g. remove_background")],
    status: Annotated[str, typer.Argument(help="active, suspended or disabled")],
    reason: Reason,
    message: Annotated[str, typer.Option(help="Shown to users and in API errors.")] = "",
) -> None:
    """Suspend, disable or re-activate a service."""
    from removeany.moderation import service as moderation

    def work(ctx: Any, session: Any) -> str:
        row = moderation.set_service_status(
            session, _actor(), name, status, message, reason, now=ctx.now()
        )
        return f"{row.service}: {row.status} {row.message}".rstrip()

    typer.echo(in_transaction(work))


@admin_app.command("announce")
def announce(
    message: Annotated[str, typer.Argument(help="The text shown at the top of every page.")],
    level: Annotated[str, typer.Option(help="info or warning")] = "info",
) -> None:
    """Show an announcement on every page."""
    from removeany.moderation import service as moderation

    def work(ctx: Any, session: Any) -> str:
        row = moderation.announce(session, _actor(), message, now=ctx.now(), level=level)
        return f"announcement {row.id} published"

    typer.echo(in_transaction(work))


@admin_app.command("publish-terms")
def publish_terms(
    folder: Annotated[
        Path,
        typer.Argument(help="Holds terms_en.md, terms_zh.md, privacy_en.md and privacy_zh.md."),
    ],
    summary: Annotated[str, typer.Option(help="What changed (emailed to every user).")],
) -> None:
    """Publish a new version of the terms; every user is emailed and must accept it."""
    from removeany.legal import service as legal

    texts: dict[str, str] = {}
    for name in ("terms_en", "terms_zh", "privacy_en", "privacy_zh"):
        path = folder / f"{name}.md"
        try:
            texts[name] = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            why = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
            typer.echo(
                f"error: {path}: {why}; the folder must hold terms_en.md, terms_zh.md, "
                "privacy_en.md and privacy_zh.md in UTF-8.",
                err=True,
            )
            raise typer.Exit(2) from None
    with operator_context() as ctx:
        with ctx.db.transaction() as session:
            terms = legal.publish(session, _actor(), summary=summary, now=ctx.now(), **texts)
            notified = legal.notify_users(
                session, terms, base_url=ctx.settings.base_url, now=ctx.now()
            )
        typer.echo(f"published version {terms.version}; notified {count(notified, 'user')}")


@admin_app.command("builtin-terms")
def builtin_terms(
    folder: Annotated[
        Path, typer.Argument(help="Where to write the four texts (made if missing).")
    ],
) -> None:
    """Write the newest built-in terms (terms_en.md, terms_zh.md, privacy_en.md,
    privacy_zh.md, placeholders as they are) into FOLDER: to compare with your own, or to
    edit and publish with `publish-terms`."""
    from removeany.legal import service as legal

    terms = legal.BUILTIN
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for name in ("terms_en", "terms_zh", "privacy_en", "privacy_zh"):
            (folder / f"{name}.md").write_text(getattr(terms, name), encoding="utf-8")
    except OSError as exc:
        typer.echo(f"error: {folder}: {exc.strerror}; name a folder you can write to.", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"built-in version {terms.version} written to {folder}: {terms.summary}")


@admin_app.command("adopt-secret-key")
def adopt_secret_key(reason: Reason) -> None:
    """Make this process's secret key the installation's, when the key its data was made
    under is lost for good (every process refuses to start with another key). What the lost
    key made stays unreadable: two-factor codes (users sign in with a recovery code and set
    two-factor up again), links already emailed, and encrypted files."""
    from removeany.context import build_context
    from removeany.errors import DomainError
    from removeany.infra.installation import adopt_secret_key as adopt
    from removeany.infra.settings import Settings
    from removeany.moderation import audit

    # Not `operator_context`: it checks the key this command is here to replace.
    with setup_problems_end_the_command():
        ctx = build_context(Settings())
        try:
            ctx.db.migrate()
            with ctx.db.transaction() as session:
                replaced = adopt(session, ctx.secret_key, now=ctx.now())
                audit.record(
                    session,
                    _actor(),
                    "secret_key.adopt",
                    reason=reason,
                    now=ctx.now(),
                    target="installation",
                    details={"replaced": replaced},
                )
        except DomainError as exc:
            typer.echo(f"error: {exc.message}", err=True)
            raise typer.Exit(2) from None
        finally:
            ctx.close()
    if replaced:
        typer.echo("this process's secret key is now the installation's; the old one is forgotten")
    else:
        typer.echo("this process's secret key was already the installation's")


@admin_app.command("audit")
def audit_log(
    query: Annotated[str, typer.Argument(help="Filter by target, action or actor.")] = "",
    limit: Annotated[int, typer.Option(help="How many entries.", min=1)] = 100,
) -> None:
    """The audit log, newest first."""
    from removeany.moderation import audit

    def work(_ctx: Any, session: Any) -> None:
        for e in audit.entries(session, query=query, limit=limit):
            typer.echo(
                f"{e.created_at:%Y-%m-%d %H:%M:%S}\t{e.actor}\t{e.action}\t{e.target}\t{e.reason}"
            )

    in_transaction(work)


@admin_app.command("retention")
def retention() -> None:
    """Delete originals and results older than the retention period now."""
    from removeany.privacy.service import run_retention

    with operator_context() as ctx:
        typer.echo(f"deleted the files of {count(run_retention(ctx), 'job')}")
