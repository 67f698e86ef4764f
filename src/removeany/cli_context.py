"""How a command gets the platform: ``build_context``, except that a setup problem (a wrong
model hash, an unknown model name in the settings, a database that cannot be opened, a data
folder that cannot be made) ends the command with its reason, exit code 2, instead of a
traceback."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import typer
from sqlalchemy.exc import SQLAlchemyError

from removeany.engine.errors import ModelError
from removeany.infra.settings import Settings
from removeany.operator_models import register_operator_models

if TYPE_CHECKING:
    from removeany.context import Context


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


def platform_context(settings: Settings) -> Context:
    """The migrated platform for a command (database, storage, mail, models checked)."""
    from removeany.context import build_context

    with setup_problems_end_the_command():
        return build_context(settings, migrate=True)
