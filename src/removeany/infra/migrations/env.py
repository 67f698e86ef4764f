"""Alembic environment: migrations run against the URL the caller configured, all of a run in
one transaction, and one process at a time: processes that start together (web replicas, an
operator command, `removeany migrate`) would otherwise each run the same migrations, and all
but one fail."""

from __future__ import annotations

import logging
from typing import Any

from alembic import context
from sqlalchemy import Connection, create_engine, event, pool, text
from sqlalchemy.engine import Engine

import removeany.models_registry  # noqa: F401  (imports every table)
from removeany.infra.db import Base, use_wal

config = context.config
log = logging.getLogger("removeany.infra.migrations")

# The PostgreSQL advisory lock a migrating process holds until its run commits or rolls back:
# a number no other advisory lock on the database uses ("RemoveAn" in ASCII).
MIGRATION_LOCK = 0x52656D6F7665416E
# How long a process on SQLite waits for another process's run to end, in seconds.
SQLITE_WAIT_SECONDS = 600


def _sqlite_write_lock_first(engine: Engine) -> None:
    """SQLite: the run's transaction takes the database's write lock as it begins (BEGIN
    IMMEDIATE), before it reads which revisions are applied; a second process waits for it,
    then finds them applied. The driver begins nothing itself. The database is put in the
    write-ahead-log mode the app uses before that: the app's switch, made while another
    process's run is open, would fail."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None
        use_wal(dbapi_conn, wait_seconds=SQLITE_WAIT_SECONDS)

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def _wait_for_other_runs(connection: Connection) -> None:
    """PostgreSQL: take the migration lock for this transaction, before it reads which
    revisions are applied; while another process holds it, say so and wait."""
    key = {"key": MIGRATION_LOCK}
    if connection.execute(text("SELECT pg_try_advisory_xact_lock(:key)"), key).scalar():
        return
    log.warning("another process is upgrading the database; waiting for it to finish")
    connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), key)


def run() -> None:
    url = config.get_main_option("sqlalchemy.url")
    assert url is not None
    sqlite = url.startswith("sqlite")
    engine = create_engine(
        url,
        poolclass=pool.NullPool,
        connect_args={"timeout": SQLITE_WAIT_SECONDS} if sqlite else {},
    )
    if sqlite:
        _sqlite_write_lock_first(engine)
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=Base.metadata,
            render_as_batch=sqlite,
            # SQLite's DDL is transactional too: a failing run leaves nothing of itself.
            transactional_ddl=True,
        )
        with context.begin_transaction():
            if not sqlite:
                _wait_for_other_runs(connection)
            context.run_migrations()
    engine.dispose()


run()
