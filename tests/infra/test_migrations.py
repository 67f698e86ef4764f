"""Migrations, on SQLite and PostgreSQL: the schema they build is the one the models describe,
every one of them goes down and up again, and a database of an older release, rows and all,
upgrades to the heads with its rows kept and working in the app."""

from __future__ import annotations

import ast
import functools
import hashlib
import re
import shutil
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st
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
from sqlalchemy.pool import NullPool

import removeany.models_registry  # noqa: F401  (every table)
from removeany.app import create_app
from removeany.context import build_context
from removeany.credits import free
from removeany.credits.free import erased_key, mailbox_key
from removeany.infra.db import MIGRATIONS_DIR, Base, alembic_config, upgrade
from removeany.infra.settings import Settings

BACKENDS = ["sqlite", "postgresql"]


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
    each foreign key's ON DELETE, and the audit log's append-only triggers."""
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
        if _audit_triggers(conn) != AUDIT_TRIGGERS[conn.dialect.name]:
            drift.append(("append-only triggers", _audit_triggers(conn)))
    return drift


# What keeps the audit log append-only (0004, 0012), which the models cannot describe.
AUDIT_TRIGGERS = {
    "sqlite": {"admin_audit_log_no_update", "admin_audit_log_no_delete"},
    "postgresql": {"admin_audit_log_append_only"},
}


def _audit_triggers(conn: Connection) -> set[str]:
    if conn.dialect.name == "sqlite":
        query = "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = :t"
    else:
        query = (
            "SELECT tgname FROM pg_trigger WHERE tgrelid = CAST(:t AS regclass) "
            "AND NOT tgisinternal"
        )
    return {name for (name,) in conn.execute(text(query), {"t": "admin_audit_log"})}


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


# A revision on top of a head that changes the schema, then fails.
FAILING_REVISION = """
import sqlalchemy as sa
from alembic import op

revision = "9999_fails"
down_revision = "{head}"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("users", sa.Column("doomed", sa.Integer(), nullable=True))
    raise RuntimeError("this migration fails")


def downgrade() -> None:
    op.drop_column("users", "doomed")
"""


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_failing_upgrade_leaves_nothing_of_itself(
    backend: str, empty_database: Callable[[str], str], tmp_path: Path
) -> None:
    """An upgrade is one transaction on SQLite as on PostgreSQL: a migration that fails after
    every one before it ran, and after a change of its own, leaves the database as it was
    (here empty: no table, no version), so the operator fixes the cause and starts again.
    (Before, SQLite kept every migration before the failing one and the failing one's
    column.)"""
    url = empty_database(backend)
    scripts = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS_DIR, scripts, ignore=shutil.ignore_patterns("__pycache__"))
    head = sorted(ScriptDirectory.from_config(alembic_config(url)).get_heads())[0]
    (scripts / "versions" / "9999_fails.py").write_text(FAILING_REVISION.format(head=head))
    config = alembic_config(url)
    config.set_main_option("script_location", str(scripts))

    with pytest.raises(RuntimeError, match="this migration fails"):
        command.upgrade(config, "heads")
    assert tables(url) == set()


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


# The first release: every branch as it was before 0005 (services), 0006 (locale) and the
# rest; each later revision that transforms rows then runs on these.
FIRST_RELEASE = ("0002", "0003", "0004")


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_first_release_database_with_rows_upgrades_keeping_them(
    backend: str,
    empty_database: Callable[[str], str],
    tmp_path: Path,
    model_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Accounts, credit lots and their ledger, a hold, single and batch jobs, a batch, a paid
    order, promo redemptions, browser sessions and known devices, written as the first release
    wrote them, come through the upgrade to the heads: every row kept, and the revisions that
    fill new columns from old rows fill them (0007 mailbox, 0008 expiry, 0011 session binding,
    0014 first sign-in). The signed-in user then reads their balance, jobs and batch through
    the app with the browser session they had before the upgrade."""
    monkeypatch.setenv("REMOVEANY_ADMIN_CREDIT_DAYS", "365")
    url = empty_database(backend)
    for head in FIRST_RELEASE:
        upgrade(url, head)
    assert versions(url) == set(FIRST_RELEASE)

    now = datetime.now(UTC).replace(microsecond=0)
    day = timedelta(days=1)
    token = "ann-browser-session-token"
    for conn in _connect(url):
        meta = MetaData()
        meta.reflect(conn)
        add = _inserter(conn, meta)
        bg_full = _price_id(conn, "remove_background", "full")
        starter = conn.execute(text("SELECT id FROM credit_packs WHERE slug = 'starter'")).scalar()
        user = {"is_admin": False, "email_verified_at": now - 90 * day, "status": "active"}
        add(
            "users",
            user
            | {"id": 1, "email": "ann@example.com", "password_hash": "hash-ann"}
            | {"created_at": now - 90 * day},
            user
            | {"id": 2, "email": "Ann+shop@example.com", "password_hash": "hash-shop"}
            | {"created_at": now - 60 * day},
            user
            | {"id": 3, "email": "bob@example.com", "password_hash": "hash-bob"}
            | {"created_at": now - 30 * day},
        )
        lot = {"created_at": now - 90 * day}
        add(
            "credit_lots",
            lot
            | {"id": 1, "user_id": 1, "source": "signup", "amount": 10, "remaining": 6}
            | {"expires_at": now + 275 * day},
            # granted by an admin without days: never expired before 0008
            lot
            | {"id": 2, "user_id": 1, "source": "admin", "amount": 5, "remaining": 5}
            | {"expires_at": None},
            lot
            | {"id": 3, "user_id": 1, "source": "promo", "amount": 5, "remaining": 5}
            | {"expires_at": now + 20 * day},
            lot
            | {"id": 4, "user_id": 2, "source": "promo", "amount": 5, "remaining": 5}
            | {"expires_at": now + 20 * day},
            lot
            | {"id": 5, "user_id": 3, "source": "purchase", "amount": 50, "remaining": 50}
            | {"expires_at": now + 365 * day},
        )
        entry = {"created_at": now - 80 * day, "note": ""}
        add(
            "credit_entries",
            entry
            | {"user_id": 1, "lot_id": 1, "kind": "grant", "amount": 10}
            | {"reference": "signup", "idempotency_key": "signup:1"},
            entry
            | {"user_id": 1, "lot_id": 2, "kind": "grant", "amount": 5}
            | {"reference": "admin", "idempotency_key": None, "note": "welcome"},
            entry
            | {"user_id": 1, "lot_id": 1, "kind": "reserve", "amount": -3}
            | {"reference": "job:single1", "idempotency_key": None},
            entry
            | {"user_id": 1, "lot_id": 1, "kind": "capture", "amount": 0}
            | {"reference": "job:single1", "idempotency_key": None},
            entry
            | {"user_id": 1, "lot_id": 1, "kind": "reserve", "amount": -1}
            | {"reference": "job:queued1", "idempotency_key": None},
            entry
            | {"user_id": 3, "lot_id": 5, "kind": "purchase", "amount": 50}
            | {"reference": "order:order1", "idempotency_key": "order:order1"},
        )
        add(
            "credit_holds",
            {"user_id": 1, "lot_id": 1, "reference": "job:queued1", "amount": 1}
            | {"status": "held", "created_at": now, "expires_at": now + day},
            {"user_id": 1, "lot_id": 1, "reference": "job:single1", "amount": 3}
            | {"status": "captured", "created_at": now - 80 * day}
            | {"expires_at": now - 79 * day, "settled_at": now - 80 * day},
        )
        add(
            "batches",
            {"id": "batch1", "user_id": 1, "name": "shop photos", "service": "remove_background"}
            | {"options": {}, "total_items": 2, "total_bytes": 2_000_000}
            | {"total_pixels": 614_400, "rejected": [], "created_at": now - 10 * day},
        )
        add(
            "jobs",
            _job("single1", 1, now - 80 * day, cost=3, price_id=bg_full),
            _job("item1", 1, now - 10 * day, batch_id="batch1", relative_path="a/one.jpg"),
            _job("item2", 1, now - 10 * day, batch_id="batch1", relative_path="a/two.jpg"),
            _job("queued1", 1, now, status="queued", result_key=None, finished_at=None)
            | {"started_at": None, "result_media_type": None},
        )
        add(
            "orders",
            {"id": "order1", "user_id": 3, "pack_id": starter, "credits": 50}
            | {"amount_cents": 499, "currency": "usd", "provider": "sandbox"}
            | {"provider_ref": "cs_1", "status": "paid", "lot_id": 5}
            | {"created_at": now - 30 * day, "paid_at": now - 30 * day},
        )
        add(
            "promo_codes",
            {"id": 1, "code": "SPRING", "credits": 5, "max_uses": 10, "used": 2}
            | {"credit_days": 30, "created_at": now - 50 * day},
        )
        add(
            "promo_redemptions",
            {"promo_id": 1, "user_id": 1, "lot_id": 3, "created_at": now - 10 * day},
            # the same mailbox through an alias, before redemptions were counted per mailbox
            {"promo_id": 1, "user_id": 2, "lot_id": 4, "created_at": now - 9 * day},
        )
        session = {"csrf_token": "c" * 43, "user_agent": "Firefox", "ip": "203.0.113.7"}
        add(
            "web_sessions",
            session
            | {"user_id": 1, "token_hash": hashlib.sha256(token.encode()).hexdigest()}
            | {"created_at": now - day, "expires_at": now + 29 * day, "last_seen_at": now},
            session
            | {"user_id": 3, "token_hash": "b" * 64, "revoked_at": now - day}
            | {"created_at": now - 2 * day, "expires_at": now + 28 * day}
            | {"last_seen_at": now - day},
        )
        add(
            "known_devices",
            {"user_id": 1, "fingerprint": "f" * 64, "user_agent": "Firefox"}
            | {"ip": "203.0.113.7", "first_seen_at": now - 85 * day, "last_seen_at": now},
        )
        conn.commit()
        counts_before = {
            name: _count(conn, name) for name in meta.tables if name != "alembic_version"
        }

    before = datetime.now(UTC)
    upgrade(url)
    after = datetime.now(UTC)
    assert versions(url) == set(ScriptDirectory.from_config(alembic_config(url)).get_heads())

    for conn in _connect(url):
        counts_after = {name: _count(conn, name) for name in counts_before}
        # 0005 adds the new services' launch prices; nothing else gains or loses a row.
        assert counts_after == counts_before | {"prices": counts_before["prices"] + 7}
        assert _foreign_key_problems(conn) == []

        expiry = dict(conn.execute(text("SELECT id, expires_at FROM credit_lots")).all())
        admin_expiry = _aware(expiry[2])
        assert before + 365 * day <= admin_expiry <= after + 365 * day  # 0008
        assert _aware(expiry[1]) == now + 275 * day
        mailboxes = dict(conn.execute(text("SELECT user_id, mailbox FROM promo_redemptions")).all())
        assert mailboxes == {1: erased_key(mailbox_key("ann@example.com")), 2: None}  # 0007
        signed_in = dict(conn.execute(text("SELECT id, first_signed_in_at FROM users")).all())
        assert {k: v and _aware(v) for k, v in signed_in.items()} == {
            1: now - 85 * day,
            2: None,
            3: None,
        }  # 0014
        fingerprints = dict(
            conn.execute(text("SELECT user_id, password_fingerprint FROM web_sessions")).all()
        )
        assert fingerprints == {
            1: hashlib.sha256(b"hash-ann").hexdigest()[:32],
            3: "",  # revoked: left unbound
        }  # 0011
        job = conn.execute(
            text("SELECT cost, price_id, attempts, batch_id FROM jobs WHERE id = 'single1'")
        ).one()
        assert tuple(job) == (3, _price_id(conn, "remove_background", "full"), 0, None)
        order = conn.execute(text("SELECT status, refunded_cents, lot_id FROM orders")).one()
        assert tuple(order) == ("paid", 0, 5)

    # The app over the upgraded database: Ann's browser session from before still works.
    settings = Settings(
        data_dir=tmp_path / "data",
        database_url=url,
        model_dir=model_dir,
        secret_key="test-secret-key",
        base_url="http://testserver",
    )
    ctx = build_context(settings, migrate=True)
    try:
        with TestClient(create_app(ctx, run_workers=False)) as client:
            client.cookies.set("removeany_session", token)
            me = client.get("/api/v1/me")
            assert me.status_code == 200, me.text
            assert me.json()["email"] == "ann@example.com"
            credits = client.get("/api/v1/credits").json()
            assert (credits["available"], credits["held"]) == (6 + 5 + 5, 1)
            assert {lot["source"] for lot in credits["lots"]} == {"signup", "admin", "promo"}
            jobs = client.get("/api/v1/jobs").json()
            assert [j["id"] for j in jobs] == ["queued1", "item2", "item1", "single1"]
            assert next(j for j in jobs if j["id"] == "single1")["cost"] == 3
            batches = client.get("/api/v1/batches").json()
            assert [(b["id"], b["name"]) for b in batches] == [("batch1", "shop photos")]
            assert client.get("/api/v1/batches/batch1/items").status_code == 200
    finally:
        ctx.close()


def _inserter(conn: Connection, meta: MetaData) -> Callable[..., None]:
    def add(table: str, *rows: dict[str, Any]) -> None:
        for row in rows:  # one by one: the rows name different columns
            conn.execute(meta.tables[table].insert(), row)

    return add


def _count(conn: Connection, table: str) -> int:
    return int(conn.execute(text(f"SELECT COUNT(*) FROM {table}")).scalar_one())


def _aware(value: datetime | str) -> datetime:
    """A reflected datetime: SQLite hands back text without a zone (UTC as stored)."""
    if isinstance(value, str):
        value = datetime.fromisoformat(re.sub(r"\.0+$", "", value))
    return value if value.tzinfo else value.replace(tzinfo=UTC)


# What a migration may take from the application: column types. A rule or a setting read
# from the app would change what an old migration does whenever the app changes; a
# migration keeps its own copy of what it needs.
MIGRATIONS_MAY_USE = {"removeany.infra.db.UTCDateTime"}


def _app_names(source: str) -> set[str]:
    """The dotted names a migration's source takes from the removeany package."""
    used = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("removeany"):
            used |= {f"{node.module}.{alias.name}" for alias in node.names}
        elif isinstance(node, ast.Import):
            used |= {alias.name for alias in node.names if alias.name.startswith("removeany")}
        elif isinstance(node, ast.Attribute) and ast.unparse(node).startswith("removeany."):
            used.add(ast.unparse(node))
    # `removeany.infra.db.UTCDateTime` also walks past `removeany.infra.db` and its import.
    return {name for name in used if not any(other.startswith(name + ".") for other in used)}


def test_migrations_take_nothing_but_column_types_from_the_app() -> None:
    """(0007 imported credits.free's mailbox rule, 0008 the Settings class.)"""
    taken = {
        path.name: sorted(_app_names(path.read_text()) - MIGRATIONS_MAY_USE)
        for path in sorted((MIGRATIONS_DIR / "versions").glob("*.py"))
    }
    assert {name: names for name, names in taken.items() if names} == {}


@functools.cache
def _revision(revision: str) -> Any:
    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_revision(revision).module


ADDRESSES = st.one_of(
    st.emails(),
    st.builds(
        "{}{}@{}".format,
        st.from_regex(r"[A-Za-z0-9._+-]{1,20}", fullmatch=True),
        st.sampled_from(["", "+shop", "+a+b"]),
        st.sampled_from(["gmail.com", "GoogleMail.com", "example.com", "mail.example.cn"]),
    ),
)


@given(ADDRESSES)
def test_0007s_mailbox_is_the_one_the_app_compares_with(address: str) -> None:
    """0007 wrote each redemption's mailbox with its own copy of the rule; a redemption is
    refused when the mailbox the app computes today matches it, so the two must agree."""
    frozen = _revision("0007_promo_mailbox")
    expected = free.erased_key(free.mailbox_key(address))
    assert frozen.erased_key(frozen.mailbox_key(address)) == expected


@pytest.mark.parametrize("days", [None, "30", "365", "1000", "0", "ten"])
def test_0008_reads_the_admin_grant_days_as_the_settings_do(
    days: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """0008 reads REMOVEANY_ADMIN_CREDIT_DAYS itself: the value the service runs with, or
    refused as the service refuses it; unset, the default when it was written (365)."""

    def read(days: Callable[[], int]) -> int | str:
        try:
            return days()
        except ValueError:  # pydantic's ValidationError is one
            return "refused"

    if days is None:
        monkeypatch.delenv("REMOVEANY_ADMIN_CREDIT_DAYS", raising=False)
    else:
        monkeypatch.setenv("REMOVEANY_ADMIN_CREDIT_DAYS", days)
    frozen = read(_revision("0008_every_lot_expires").admin_credit_days)
    assert frozen == (365 if days is None else read(lambda: Settings().admin_credit_days))
