"""Migrations, on SQLite and PostgreSQL: the schema they build is the one the models describe."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import (
    CheckConstraint,
    Column,
    Connection,
    ForeignKeyConstraint,
    create_engine,
    inspect,
    text,
)
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

import removeany.models_registry  # noqa: F401  (every table)
from removeany.infra.db import Base, upgrade
from tests.conftest import PG_ADMIN_URL

BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture
def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[str], str]:
    """`empty_database(backend)`: the URL of a new database with no tables at all."""

    def make(backend: str) -> str:
        if backend == "sqlite":
            return f"sqlite:///{tmp_path / f'{uuid.uuid4().hex[:8]}.db'}"
        # Skips, or fails where REMOVEANY_REQUIRE_POSTGRES=1, when PostgreSQL is unreachable.
        admin, _template = request.getfixturevalue("postgres_template")
        name = f"removeany_mig_{uuid.uuid4().hex[:10]}"
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))

        def drop() -> None:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))

        request.addfinalizer(drop)
        return make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)

    return make


def _connect(url: str) -> Iterator[Connection]:
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            yield conn
    finally:
        engine.dispose()


def _same_server_default(
    context: MigrationContext,
    inspected_column: Any,
    metadata_column: Column[Any],
    inspected_default: str | None,
    metadata_default: Any,
    rendered_metadata_default: str | None,
) -> bool | None:
    """Alembic's SQLite comparison unquotes a reflected default only when it holds at least one
    character, so the empty string (reflected as `('')`) always looked changed even where the
    model says `server_default=""`; everything else is left to Alembic (None)."""
    if context.dialect.name == "sqlite" and inspected_default in ("''", "('')"):
        return rendered_metadata_default != ""
    return None


def schema_drift(url: str) -> list[Any]:
    """What the database's schema lacks or has beyond the models' metadata: Alembic's
    comparison (tables, columns, types, nullability, server defaults, indexes, unique
    constraints, foreign keys), plus what it does not compare: CHECK constraints by name and
    each foreign key's ON DELETE."""
    for conn in _connect(url):
        context = MigrationContext.configure(
            conn, opts={"compare_type": True, "compare_server_default": _same_server_default}
        )
        drift: list[Any] = list(compare_metadata(context, Base.metadata))
        found = inspect(conn)
        for table in Base.metadata.sorted_tables:
            checks = {c.name for c in table.constraints if isinstance(c, CheckConstraint)}
            found_checks = {c["name"] for c in found.get_check_constraints(table.name)}
            if checks != found_checks:
                drift.append(("checks", table.name, sorted(checks), sorted(found_checks)))
            keys = {
                (c.name, c.ondelete)
                for c in table.constraints
                if isinstance(c, ForeignKeyConstraint)
            }
            found_keys = {
                (k["name"], (k.get("options") or {}).get("ondelete"))
                for k in found.get_foreign_keys(table.name)
            }
            if keys != found_keys:
                drift.append(("foreign keys", table.name, sorted(keys), sorted(found_keys)))
    return drift


def versions(url: str) -> set[str]:
    for conn in _connect(url):
        return {row[0] for row in conn.execute(text("SELECT version_num FROM alembic_version"))}
    raise AssertionError("unreachable")


def tables(url: str) -> set[str]:
    for conn in _connect(url):
        return set(inspect(conn).get_table_names())
    raise AssertionError("unreachable")


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_migrated_schema_matches_the_models(
    backend: str, empty_database: Callable[[str], str]
) -> None:
    url = empty_database(backend)
    upgrade(url)
    assert schema_drift(url) == []
