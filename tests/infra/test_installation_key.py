"""Every process of an installation holds the same secret key: one started with another
(a worker or a restored data folder without `REMOVEANY_SECRET_KEY`) stops with a sentence,
on SQLite and PostgreSQL, and an operator whose key is lost for good can adopt a new one."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from tests.helpers import removeany

MISMATCH = "error: this process's secret key is not the one this installation's database"


def _cli(
    data: Path, url: str, model_dir: Path, *args: str, key: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "REMOVEANY_DATA_DIR": str(data),
        "REMOVEANY_DATABASE_URL": url,
        "REMOVEANY_MODEL_DIR": str(model_dir),
    }
    env.pop("REMOVEANY_SECRET_KEY", None)
    if key is not None:
        env["REMOVEANY_SECRET_KEY"] = key
    return removeany(*args, env=env)


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_process_with_another_secret_key_does_not_start(
    backend: str, empty_database: Callable[[str], str], tmp_path: Path, model_dir: Path
) -> None:
    url = empty_database(backend)
    first, second = tmp_path / "first", tmp_path / "second"
    made = _cli(
        first,
        url,
        model_dir,
        "users",
        "create",
        "ann@example.com",
        "--password",
        "a long enough pw",
    )
    assert made.returncode == 0, made.stderr

    # A second machine's data folder generates a key of its own: every command refuses it.
    for args in (["prices", "list"], ["sweep"], ["worker", "--pool", "solo"]):
        refused = _cli(second, url, model_dir, *args)
        assert refused.returncode == 2, (args, refused.stdout, refused.stderr)
        assert refused.stderr.startswith(MISMATCH), refused.stderr
        assert "REMOVEANY_SECRET_KEY" in refused.stderr and "Traceback" not in refused.stderr

    # The first key, given in the environment, is the installation's.
    shared = (first / "secret_key").read_text().strip()
    assert _cli(second, url, model_dir, "prices", "list", key=shared).returncode == 0

    # The first key lost for good: the operator adopts the second, with a reason.
    adopted = _cli(
        second, url, model_dir, "admin", "adopt-secret-key", "-r", "disk of the first server died"
    )
    assert adopted.returncode == 0, adopted.stderr
    assert "now the installation's" in adopted.stdout
    assert _cli(second, url, model_dir, "prices", "list").returncode == 0
    assert _cli(first, url, model_dir, "prices", "list").stderr.startswith(MISMATCH)

    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            audit = conn.execute(text("SELECT action, target, reason FROM admin_audit_log")).all()
    finally:
        engine.dispose()
    assert ("secret_key.adopt", "installation", "disk of the first server died") in [
        tuple(r) for r in audit
    ]
