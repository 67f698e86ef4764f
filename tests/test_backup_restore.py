"""docs/deployment.md, "Backup and restore", as an operator follows it: a backup taken with the
documented commands while `removeany serve` runs and takes jobs restores into a working
install, and files stored encrypted are readable there only with the secret key kept."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from removeany.app import create_app
from removeany.context import Context, build_context
from removeany.infra.installation import SecretKeyMismatch
from removeany.infra.settings import Settings
from tests.conftest import PG_ADMIN_URL
from tests.helpers import removeany, serving

GRANTED = 100


def _photo() -> bytes:
    image = Image.new("RGB", (96, 64), (30, 120, 200))
    image.paste((240, 200, 40), (30, 16, 66, 48))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def _cli(env: dict[str, str], *args: str) -> str:
    done = removeany(*args, env=env)
    assert done.returncode == 0, done.stderr
    return done.stdout


@contextmanager
def _submitting(base: str, key: str) -> Iterator[list[str]]:
    """Jobs submitted one after another (and run by serve's workers) until the block ends:
    the app writes its ledger and jobs all through the backup."""
    submitted: list[str] = []
    stop = threading.Event()
    photo = _photo()

    def submit() -> None:
        with httpx.Client(base_url=base, headers={"X-Api-Key": key}, timeout=60) as http:
            while not stop.is_set() and len(submitted) < GRANTED - 1:
                answer = http.post("/api/v1/jobs", files={"file": ("p.png", photo)})
                assert answer.status_code == 202, answer.text
                submitted.append(answer.json()["id"])

    with httpx.Client(base_url=base, headers={"X-Api-Key": key}, timeout=180) as http:
        first = http.post("/api/v1/jobs", data={"wait": "true"}, files={"file": ("p.png", photo)})
        assert first.json()["status"] == "succeeded", first.text  # a result file to restore
        submitted.append(first.json()["id"])
    thread = threading.Thread(target=submit)
    thread.start()
    try:
        while len(submitted) < 6:  # well under way before the backup starts
            thread.join(0.05)
            assert thread.is_alive() or len(submitted) >= 6
        yield submitted
    finally:
        stop.set()
        thread.join(120)


def _install(tmp_path: Path, model_dir: Path, database_url: str | None) -> dict[str, str]:
    env = {
        **os.environ,
        "REMOVEANY_DATA_DIR": str(tmp_path / "live"),
        "REMOVEANY_MODEL_DIR": str(model_dir),
        "REMOVEANY_ENCRYPT_FILES": "true",
        "REMOVEANY_INLINE_WORKERS": "2",
    }
    for name in ("REMOVEANY_SECRET_KEY", "REMOVEANY_DATABASE_URL", "REMOVEANY_BASE_URL"):
        env.pop(name, None)
    if database_url:
        env["REMOVEANY_DATABASE_URL"] = database_url
    return env


def _api_key(env: dict[str, str]) -> str:
    created = _cli(
        env,
        "users",
        "create",
        "ann@example.com",
        "--password",
        "a long enough pw",
        "--credits",
        str(GRANTED),
        "--api-key",
    )
    return created.strip().splitlines()[-1]


def _restored(data_dir: Path, model_dir: Path, database_url: str | None) -> Context:
    settings = Settings(
        data_dir=data_dir,
        database_url=database_url,
        model_dir=model_dir,
        encrypt_files=True,
        base_url="http://testserver",
    )
    return build_context(settings, migrate=True)


def _check_restored(ctx: Context, key: str) -> None:
    """The restored install serves the account, a consistent ledger, and every result file
    its database names, decrypted."""
    headers = {"X-Api-Key": key}
    with TestClient(create_app(ctx, run_workers=False)) as client:
        assert client.get("/api/v1/me", headers=headers).json()["email"] == "ann@example.com"
        jobs = client.get("/api/v1/jobs", params={"limit": 200}, headers=headers).json()
        credits = client.get("/api/v1/credits", headers=headers).json()
        # One snapshot: what was not charged is available or held, job by job.
        charged = sum(j["charged"] for j in jobs)
        assert credits["available"] + credits["held"] + charged == GRANTED
        done = [j for j in jobs if j["status"] == "succeeded"]
        assert done, "no finished job in the backup"
        for job in done:
            result = client.get(job["result_url"], headers=headers)
            assert result.status_code == 200, result.text
            assert Image.open(io.BytesIO(result.content)).size == (96, 64)


def _copy_files_and_key(live: Path, restored: Path) -> None:
    """As documented: the files folder after the database, and the secret key."""
    shutil.copytree(live / "files", restored / "files")
    shutil.copy2(live / "secret_key", restored / "secret_key")


def _without_key_nothing_decrypts(restored: Path, other: Path, database_url: str | None) -> None:
    other.mkdir()
    if database_url is None:
        shutil.copy2(restored / "removeany.db", other / "removeany.db")
    shutil.copytree(restored / "files", other / "files")
    settings = Settings(data_dir=other, database_url=database_url, encrypt_files=True)
    # A new secret key is generated in `other`: the platform refuses to start under it ...
    with pytest.raises(SecretKeyMismatch):
        build_context(settings, migrate=True)
    # ... because under it nothing the backup holds decrypts.
    stranger = build_context(settings)
    try:
        with stranger.db.transaction() as s:
            keys = [k for (k,) in s.execute(text("SELECT result_key FROM jobs")) if k]
        with pytest.raises(ValueError, match="written under another secret key"):
            stranger.storage.get(keys[0])
    finally:
        stranger.close()


def test_a_sqlite_backup_taken_while_serving_restores_into_a_working_install(
    tmp_path: Path, model_dir: Path
) -> None:
    if shutil.which("sqlite3") is None:
        pytest.skip("the sqlite3 command-line shell is not installed")
    env = _install(tmp_path, model_dir, None)
    live = tmp_path / "live"
    restored = tmp_path / "restored"
    restored.mkdir()
    key = _api_key(env)
    with serving(env) as base, _submitting(base, key):
        backup = subprocess.run(
            ["sqlite3", str(live / "removeany.db"), f".backup '{restored / 'removeany.db'}'"],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert backup.returncode == 0, backup.stderr
        _copy_files_and_key(live, restored)
    check = subprocess.run(
        ["sqlite3", str(restored / "removeany.db"), "PRAGMA integrity_check"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert check.stdout.strip() == "ok"

    ctx = _restored(restored, model_dir, None)
    try:
        _check_restored(ctx, key)
    finally:
        ctx.close()
    _without_key_nothing_decrypts(restored, tmp_path / "no-key", None)


def test_a_pg_dump_taken_while_serving_restores_into_a_working_install(
    request: pytest.FixtureRequest, tmp_path: Path, model_dir: Path
) -> None:
    for tool in ("pg_dump", "pg_restore"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed")
    admin, _template = request.getfixturevalue("postgres_template")
    names = [f"removeany_{part}_{uuid.uuid4().hex[:8]}" for part in ("live", "restored")]
    with admin.connect() as conn:
        for name in names:
            conn.execute(text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as conn:
            for name in names:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))

    request.addfinalizer(drop)
    live_url, restored_url = (
        make_url(PG_ADMIN_URL).set(database=n).render_as_string(hide_password=False) for n in names
    )

    def libpq(url: str) -> str:  # what pg_dump and pg_restore take: no "+psycopg"
        return url.replace("postgresql+psycopg://", "postgresql://", 1)

    env = _install(tmp_path, model_dir, live_url)
    live = tmp_path / "live"
    restored = tmp_path / "restored"
    restored.mkdir()
    key = _api_key(env)
    dump = tmp_path / "removeany.dump"
    with serving(env) as base, _submitting(base, key):
        subprocess.run(
            ["pg_dump", "--format=custom", f"--file={dump}", libpq(live_url)],
            check=True,
            timeout=120,
        )
        _copy_files_and_key(live, restored)
    subprocess.run(
        ["pg_restore", "--no-owner", f"--dbname={libpq(restored_url)}", str(dump)],
        check=True,
        timeout=120,
    )

    ctx = _restored(restored, model_dir, restored_url)
    try:
        _check_restored(ctx, key)
    finally:
        ctx.close()
    # The audit log is append-only in the restored database too (its trigger came along).
    engine = create_engine(restored_url, poolclass=NullPool)
    with engine.connect() as conn:
        triggers = conn.execute(
            text("SELECT tgname FROM pg_trigger WHERE tgrelid = 'admin_audit_log'::regclass")
        ).all()
    engine.dispose()
    assert [t for (t,) in triggers] == ["admin_audit_log_append_only"]
    _without_key_nothing_decrypts(restored, tmp_path / "no-key", restored_url)
