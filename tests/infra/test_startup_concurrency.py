"""Processes starting together on one database, as a scaled deployment starts them (web
replicas, an operator command, `removeany migrate`), on SQLite and PostgreSQL: each upgrades the
schema and writes what the software brings, and every one of them must start."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from removeany.infra.db import alembic_config, upgrade
from removeany.legal.service import BUILTIN_V1
from tests.infra.test_migrations import BACKENDS, FIRST_RELEASE, schema_drift, versions

PROCESSES = 3
# What a process on PostgreSQL says while another one migrates.
WAITING = "another process is upgrading the database; waiting for it to finish\n"

# Runs one `removeany` command: says it is ready (the file named second) once it has imported
# what it needs, then waits for the file named first, so that the processes reach the
# database at the same moment.
AT_THE_SIGNAL = """
import sys, time
from pathlib import Path
from removeany.cli import app
go, ready = Path(sys.argv[1]), Path(sys.argv[2])
ready.touch()
while not go.exists():
    time.sleep(0.002)
app(sys.argv[3:], prog_name="removeany")
"""


def _start_together(url: str, data_dir: Path, *args: str) -> list[subprocess.CompletedProcess[str]]:
    go = data_dir.parent / "go"
    ready = [data_dir.parent / f"ready{n}" for n in range(PROCESSES)]
    env = os.environ | {
        "REMOVEANY_DATABASE_URL": url,
        "REMOVEANY_DATA_DIR": str(data_dir),
        "REMOVEANY_SECRET_KEY": "test-secret-key",
        "REMOVEANY_BASE_URL": "http://testserver",
    }
    started = [
        subprocess.Popen(
            [sys.executable, "-c", AT_THE_SIGNAL, str(go), str(path), *args],
            env=env,
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for path in ready
    ]
    deadline = time.monotonic() + 120
    while not all(path.exists() for path in ready) and time.monotonic() < deadline:
        time.sleep(0.01)
    go.touch()
    done = []
    for process in started:
        stdout, stderr = process.communicate(timeout=240)
        done.append(subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr))
    return done


def _heads(url: str) -> set[str]:
    return set(ScriptDirectory.from_config(alembic_config(url)).get_heads())


@pytest.mark.parametrize("backend", BACKENDS)
def test_migrate_run_several_times_at_once_on_a_new_database(
    backend: str, empty_database: Callable[[str], str], tmp_path: Path
) -> None:
    """Three `removeany migrate` at once on an empty database: all succeed, and the schema is
    the models'. (Before: every one of them created the tables, and all but the first failed,
    exit code 2, "duplicate key value violates unique constraint pg_type_typname_nsp_index" on
    PostgreSQL, "table users already exists" on SQLite.)"""
    url = empty_database(backend)
    done = _start_together(url, tmp_path / "data", "migrate")
    assert [(p.returncode, p.stdout) for p in done] == [(0, "database is up to date\n")] * PROCESSES
    assert {p.stderr for p in done} <= {"", WAITING}
    assert versions(url) == _heads(url)
    assert schema_drift(url) == []


@pytest.mark.parametrize("backend", BACKENDS)
def test_operator_commands_at_once_upgrade_a_first_release_and_email_the_terms_once(
    backend: str, empty_database: Callable[[str], str], tmp_path: Path
) -> None:
    """A first-release installation (built-in terms version 1 in force, one confirmed user)
    upgraded by three processes of the new release starting at once (here `prices list`,
    which builds the platform as `serve` does): every one starts, the schema reaches the
    heads, version 2 of the terms is published once and its notice is emailed once."""
    url = empty_database(backend)
    for head in FIRST_RELEASE:
        upgrade(url, head)
    engine = create_engine(url, poolclass=NullPool)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO users (id, email, password_hash, is_admin, email_verified_at, "
                "created_at, status) VALUES (1, 'ann@example.com', 'x', false, :at, :at, 'active')"
            ),
            {"at": BUILTIN_V1.published_at},
        )
        conn.execute(
            text(
                "INSERT INTO legal_versions (version, summary, terms_en, terms_zh, privacy_en, "
                "privacy_zh, published_at, published_by) VALUES (1, :summary, :terms_en, "
                ":terms_zh, :privacy_en, :privacy_zh, :at, 'built in')"
            ),
            {
                "summary": BUILTIN_V1.summary,
                "terms_en": BUILTIN_V1.terms_en,
                "terms_zh": BUILTIN_V1.terms_zh,
                "privacy_en": BUILTIN_V1.privacy_en,
                "privacy_zh": BUILTIN_V1.privacy_zh,
                "at": BUILTIN_V1.published_at,
            },
        )

    data_dir = tmp_path / "data"
    done = _start_together(url, data_dir, "prices", "list")
    assert [p.returncode for p in done] == [0] * PROCESSES, [p.stderr for p in done]
    assert sorted(p.stderr.replace(WAITING, "") for p in done) == [""] * (PROCESSES - 1) + [
        "published the built-in terms version 2; users were emailed and must accept it "
        "before their next job\n"
    ]
    assert all("remove_background" in p.stdout for p in done)
    assert versions(url) == _heads(url)
    with engine.connect() as conn:
        published = conn.execute(text("SELECT version FROM legal_versions ORDER BY version"))
        assert published.scalars().all() == [1, 2]
        notices = conn.execute(text("SELECT to_address FROM outgoing_mail"))
        assert notices.scalars().all() == ["ann@example.com"]
    engine.dispose()
    assert len(list((data_dir / "outbox").iterdir())) == 1
