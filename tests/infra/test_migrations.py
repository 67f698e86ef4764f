"""Migrations, on SQLite and PostgreSQL: the schema they build is the one the models describe,
and every one of them goes down and up again."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import (
    CheckConstraint,
    Column,
    Connection,
    ForeignKeyConstraint,
    MetaData,
    create_engine,
    inspect,
    text,
)
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

import removeany.models_registry  # noqa: F401  (every table)
from removeany.infra.db import Base, alembic_config, upgrade
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


@pytest.mark.parametrize("backend", BACKENDS)
def test_every_migration_goes_down_and_up_again(
    backend: str, empty_database: Callable[[str], str]
) -> None:
    """base -> heads -> base -> heads, then each revision alone: down to the revision below it
    (which takes whatever depends on it down too) and up to the heads again, as an operator
    does with `alembic downgrade REV` and then `removeany migrate`."""
    url = empty_database(backend)
    script = ScriptDirectory.from_config(alembic_config(url))
    heads = set(script.get_heads())

    upgrade(url)
    command.downgrade(alembic_config(url), "base")
    assert tables(url) == {"alembic_version"} and versions(url) == set()
    upgrade(url)
    assert versions(url) == heads

    for revision in script.walk_revisions():
        below = revision.down_revision
        assert below is None or isinstance(below, str), "a merge revision: extend this test"
        command.downgrade(alembic_config(url), below or "base")
        assert revision.revision not in versions(url)
        upgrade(url)
        assert versions(url) == heads, revision.revision
    assert schema_drift(url) == []


def _price_id(conn: Connection, service: str, tier: str) -> int:
    return int(
        conn.execute(
            text("SELECT id FROM prices WHERE service = :s AND tier = :t AND version = 1"),
            {"s": service, "t": tier},
        ).scalar_one()
    )


def _foreign_key_problems(conn: Connection) -> list[Any]:
    if conn.dialect.name == "sqlite":
        return [tuple(row) for row in conn.execute(text("PRAGMA foreign_key_check"))]
    return []  # PostgreSQL enforces them during the migration itself


@pytest.mark.parametrize("backend", BACKENDS)
def test_downgrading_the_service_prices_leaves_no_job_naming_a_deleted_price(
    backend: str, empty_database: Callable[[str], str]
) -> None:
    """0005's downgrade deletes the portrait, ID photo and watermark prices; jobs priced by
    them keep their cost and lose the price (as ON DELETE SET NULL says). Migrations run on
    SQLite without foreign-key enforcement, so the SET NULL has to be done by the migration
    (before: the job kept price_id 5, a price that no longer existed, and PRAGMA
    foreign_key_check reported it)."""
    url = empty_database(backend)
    upgrade(url)
    now = datetime(2026, 1, 1, tzinfo=UTC)
    for conn in _connect(url):
        meta = MetaData()
        meta.reflect(conn, only=["users", "jobs"])
        conn.execute(
            meta.tables["users"].insert(),
            {"id": 1, "email": "ann@example.com", "password_hash": "x", "is_admin": False}
            | {"created_at": now, "status": "active"},
        )
        for job_id, service, tier in (
            ("portrait1", "portrait", "full"),
            ("bg1", "remove_background", "full"),
        ):
            conn.execute(
                meta.tables["jobs"].insert(),
                _job(job_id, 1, now, service=service, price_id=_price_id(conn, service, tier)),
            )
        conn.commit()
        bg_price = _price_id(conn, "remove_background", "full")

    command.downgrade(alembic_config(url), "0003")

    for conn in _connect(url):
        rows = dict(conn.execute(text("SELECT id, price_id FROM jobs")).all())
        assert rows == {"portrait1": None, "bg1": bg_price}
        assert conn.execute(text("SELECT cost FROM jobs WHERE id = 'portrait1'")).scalar() == 1
        assert _foreign_key_problems(conn) == []
    upgrade(url)
    assert versions(url) == set(ScriptDirectory.from_config(alembic_config(url)).get_heads())


def _job(job_id: str, user_id: int, at: datetime, **extra: Any) -> dict[str, Any]:
    return {
        "id": job_id,
        "user_id": user_id,
        "service": "remove_background",
        "status": "succeeded",
        "options": {"format": "png"},
        "cost": 1,
        "input_key": f"originals/{job_id}",
        "input_name": f"{job_id}.jpg",
        "input_width": 640,
        "input_height": 480,
        "result_key": f"results/{job_id}.1",
        "result_media_type": "image/png",
        "result_width": 640,
        "result_height": 480,
        "created_at": at,
        "started_at": at,
        "finished_at": at + timedelta(seconds=3),
    } | extra
