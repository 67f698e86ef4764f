"""Database engine, sessions and migrations; one transaction per request or task."""

from __future__ import annotations

import functools
import logging
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import DateTime, MetaData, create_engine, event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.pool import NullPool
from sqlalchemy.types import TypeDecorator

MIGRATIONS_DIR = Path(__file__).parent / "migrations"

log = logging.getLogger(__name__)

# session.info key: the transaction erased personal data; once it commits, `Database.purge`.
PURGE = "purge_after_commit"

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on both SQLite (which drops tzinfo) and PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        _serialise_sqlite_writes(engine)
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)


def _serialise_sqlite_writes(engine: Engine) -> None:
    """SQLite has no row locks: every transaction takes the write lock up front (BEGIN IMMEDIATE),
    so two ledger updates for one user can never interleave."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None
        use_wal(dbapi_conn, wait_seconds=30)
        cur = dbapi_conn.cursor()
        # Deleted and overwritten rows are zeroed, not left readable in free space.
        cur.execute("PRAGMA secure_delete=ON")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def use_wal(dbapi_conn: sqlite3.Connection, *, wait_seconds: float) -> None:
    """Put the SQLite database in write-ahead-log mode, where it then stays. The switch needs
    the database to itself for a moment, and SQLite does not wait for that as it waits for a
    lock (busy_timeout): while another process has a transaction open (its migrations, when
    several start together on a new database), this retries until `wait_seconds` have passed."""
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            dbapi_conn.execute("PRAGMA journal_mode=WAL").close()
            return
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode != sqlite3.SQLITE_BUSY or time.monotonic() > deadline:
                raise
        time.sleep(0.05)


class Database:
    """Owns the engine and hands out sessions whose scope is one transaction."""

    def __init__(self, url: str, *, session_info: dict[str, Any] | None = None):
        """`session_info` is put on every session (e.g. the Redis throttle counters)."""
        self.url = url
        self.engine = make_engine(url)
        self.sessionmaker = sessionmaker(
            self.engine, expire_on_commit=False, info=dict(session_info or {})
        )
        self._after_commit: list[Callable[[dict[str, Any]], None]] = []

    def after_commit(self, listener: Callable[[dict[str, Any]], None]) -> None:
        """Call `listener` with the session's `info` after each transaction commits (never
        after one that rolls back): work that must follow a commit, such as sending the
        emails the transaction wrote."""
        self._after_commit.append(listener)

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """Commit on success, roll back on any error: the request/task boundary."""
        session = self.sessionmaker()
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()
        if session.info.pop(PURGE, False):
            self.purge()
        for listener in self._after_commit:
            try:
                listener(session.info)
            except Exception:  # the transaction is committed: its caller must hear success
                log.exception("after-commit work failed")

    def purge(self) -> None:
        """Leave nothing deleted readable in the database's own files, where the database lets
        us: SQLite's write-ahead log still holds the pages as they were before, so it is copied
        into the database file (where secure_delete zeroed what was deleted) and truncated.
        PostgreSQL's dead rows are autovacuum's, its WAL and backups the operator's."""
        if self.engine.dialect.name != "sqlite":
            return
        raw = self.engine.raw_connection()
        try:
            # Waits (busy_timeout) for readers of older snapshots; a busy one leaves the rest
            # to the next purge.
            raw.cursor().execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        finally:
            raw.close()

    def migrate(self) -> None:
        upgrade(self.url)

    def dispose(self) -> None:
        """Close the engine's connections and whatever the sessions carried (Redis clients)."""
        self.engine.dispose()
        for value in self.sessionmaker.kw.get("info", {}).values():
            close = getattr(value, "close", None)
            if callable(close):
                close()


class SchemaProbe:
    """For readiness probes: whether the database answers, and whether its schema is at this
    release's migration heads. It has an engine of its own, of at most one connection, so a
    probe never waits behind requests for the app's pool, and on SQLite it reads without the
    write lock every app transaction takes (BEGIN IMMEDIATE); SQLite is opened read-only and
    afresh each time, so a probe never creates a missing database file, nor keeps reading a
    file moved away. `timeout` bounds each connection attempt."""

    def __init__(self, url: str, *, timeout: float):
        parsed = make_url(url)
        if parsed.get_backend_name() == "sqlite":
            read_only = parsed.set(
                database=f"file:{quote(parsed.database or '')}",
                query={"mode": "ro", "uri": "true"},
            )
            self.engine = create_engine(
                read_only, poolclass=NullPool, connect_args={"timeout": timeout}
            )
        else:
            self.engine = create_engine(
                url,
                pool_size=1,
                max_overflow=0,
                pool_timeout=timeout,
                pool_pre_ping=True,
                # libpq's connect_timeout, in whole seconds, at least 2.
                connect_args={"connect_timeout": max(2, round(timeout))},
            )

    def schema(self) -> str:
        """ "ok" at the heads, "pending" when migrations are to run, "newer" when the database
        holds revisions this release does not know (a newer release migrated it). Raises
        SQLAlchemyError when the database cannot be reached."""
        with self.engine.connect() as connection:
            applied = set(MigrationContext.configure(connection).get_current_heads())
        heads, known = _script_revisions()
        if applied == heads:
            return "ok"
        return "pending" if applied <= known else "newer"

    def dispose(self) -> None:
        self.engine.dispose()


@functools.cache
def _script_revisions() -> tuple[frozenset[str], frozenset[str]]:
    """(heads, every revision) of the migrations this release ships."""
    script = ScriptDirectory(str(MIGRATIONS_DIR))
    known = frozenset(rev.revision for rev in script.walk_revisions())
    return frozenset(script.get_heads()), known


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(url: str, revision: str = "heads") -> None:
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    command.upgrade(alembic_config(url), revision)
