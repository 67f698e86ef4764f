"""How a command gets the platform: ``build_context``, except that a model problem (a wrong
hash, an unknown model name in the settings) ends the command with its reason, exit code 2,
instead of a traceback."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import typer

from removeany.engine.errors import ModelError
from removeany.infra.settings import Settings
from removeany.operator_models import register_operator_models

if TYPE_CHECKING:
    from removeany.context import Context


@contextmanager
def _model_problems_end_the_command() -> Iterator[None]:
    try:
        yield
    except ModelError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(2) from None


def check_operator_models(settings: Settings) -> None:
    """Register and check the operator's models now, or end the command saying what is wrong."""
    with _model_problems_end_the_command():
        register_operator_models(settings)


def platform_context(settings: Settings) -> Context:
    """The migrated platform for a command (database, storage, mail, models checked)."""
    from removeany.context import build_context

    with _model_problems_end_the_command():
        return build_context(settings, migrate=True)
