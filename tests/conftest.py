"""Shared fixtures: a real database (SQLite and PostgreSQL), real storage, real model weights."""

from __future__ import annotations

import hashlib
import os
import tempfile
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.pool import NullPool

from removeany.context import Context, build_context
from removeany.engine.models import (
    SKIMAGE_FOLDER,
    SKIMAGE_PHOTOS,
    SKIMAGE_WHEEL,
    _download_wheel,
    _extract_member,
    default_model_dir,
    fetch_model,
    get_model,
)
from removeany.engine.watermark import MARK_NET
from removeany.infra.db import upgrade
from removeany.infra.settings import Settings

REPO = Path(__file__).resolve().parents[1]
EVAL_DIR = Path(os.environ.get("REMOVEANY_EVAL_DIR", REPO.parent / "shared" / "eval"))
PG_ADMIN_URL = os.environ.get(
    "REMOVEANY_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
REQUIRE_POSTGRES = os.environ.get("REMOVEANY_REQUIRE_POSTGRES") == "1"


def eval_image(group: str, name: str) -> Path:
    for ext in (".jpg", ".png"):
        path = EVAL_DIR / group / f"{name}{ext}"
        if path.exists():
            return path
    pytest.skip(f"evaluation image {group}/{name} not found under {EVAL_DIR}")


def skimage_photo(name: str, folder: Path) -> Path:
    """A photo of scikit-image's sample data (the wheel the int8 models are calibrated with),
    extracted once into ``folder`` and checked against its SHA-256."""
    target = folder / name
    if (
        not target.exists()
        or hashlib.sha256(target.read_bytes()).hexdigest() != SKIMAGE_PHOTOS[name]
    ):
        with tempfile.TemporaryDirectory() as tmp:
            wheel = _download_wheel(SKIMAGE_WHEEL, Path(tmp))
            with open(target, "wb") as out:
                _extract_member(wheel, f"{SKIMAGE_FOLDER}/{name}", out)
    assert hashlib.sha256(target.read_bytes()).hexdigest() == SKIMAGE_PHOTOS[name]
    return target


@pytest.fixture(scope="session")
def astronaut(request: pytest.FixtureRequest) -> Path:
    """scikit-image's astronaut (Eileen Collins, NASA, public domain): head and shoulders,
    facing the camera, 512x512; the head is 165 pixels from the top of the hair to the chin."""
    return skimage_photo("astronaut.png", request.config.cache.mkdir("skimage-photos"))


@pytest.fixture(scope="session")
def model_dir() -> Path:
    """Weights as the install step leaves them (fetched and verified once if missing)."""
    target = Path(os.environ.get("REMOVEANY_MODEL_DIR", default_model_dir()))
    fetch_model(get_model("u2netp"), target)
    fetch_model(get_model("u2netp-int8"), target)  # the cutout default, quantised at install
    fetch_model(get_model("u2net"), target)
    fetch_model(get_model("u2net-int8"), target)  # the portrait path's model
    fetch_model(MARK_NET, target)  # locates watermark batches' shared marks
    return target


@pytest.fixture(scope="session")
def postgres_template() -> Iterator[tuple[Engine, str]]:
    """A migrated PostgreSQL database that each test clones (fast, and seed rows intact)."""
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    try:
        with admin.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:
        if REQUIRE_POSTGRES:
            pytest.fail(f"PostgreSQL is required here but unreachable at {PG_ADMIN_URL}: {exc}")
        pytest.skip(f"PostgreSQL not reachable at {PG_ADMIN_URL}: {exc}")
    name = f"removeany_tpl_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    upgrade(_pg_url(name))
    yield admin, name
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _pg_url(database: str) -> str:
    return make_url(PG_ADMIN_URL).set(database=database).render_as_string(hide_password=False)


@pytest.fixture
def postgres_url(postgres_template: tuple[Engine, str]) -> Iterator[str]:
    """A migrated PostgreSQL database of the test's own, cloned from the template."""
    admin, template = postgres_template
    name = f"removeany_test_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
    yield _pg_url(name)
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'test.db'}"
        upgrade(url)
        return url
    url: str = request.getfixturevalue("postgres_url")
    return url


class TestClock:
    """Time that tests can move: expiry and TTLs without sleeping."""

    __test__ = False

    def __init__(self) -> None:
        self.now = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> TestClock:
    return TestClock()


@pytest.fixture
def settings(tmp_path: Path, database_url: str, model_dir: Path) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        database_url=database_url,
        model_dir=model_dir,
        secret_key="test-secret-key",
        base_url="http://testserver",
    )


@pytest.fixture
def ctx(settings: Settings) -> Iterator[Context]:
    context = build_context(settings)
    yield context
    context.close()


@pytest.fixture
def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[str], str]:
    """`empty_database(backend)`: the URL of a new database ("sqlite" or "postgresql") with no
    tables at all, dropped after the test."""

    def make(backend: str) -> str:
        if backend == "sqlite":
            return f"sqlite:///{tmp_path / f'{uuid.uuid4().hex[:8]}.db'}"
        # Skips, or fails where REMOVEANY_REQUIRE_POSTGRES=1, when PostgreSQL is unreachable.
        admin, _template = request.getfixturevalue("postgres_template")
        name = f"removeany_empty_{uuid.uuid4().hex[:10]}"
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))

        def drop() -> None:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))

        request.addfinalizer(drop)
        return make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)

    return make
