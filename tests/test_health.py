"""/healthz and /readyz, the probes of load balancers and orchestrators, on the real app over
real dependencies: a database (SQLite and PostgreSQL) that goes away and comes back through a
TCP forwarder whose port closes, an unmigrated one, Redis down in celery mode, a bucket
without its bucket, and a silent peer that accepts connections and never answers."""

from __future__ import annotations

import shutil
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from pathlib import Path

import httpx
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from removeany.app import create_app
from removeany.context import Context, build_context
from removeany.health import READY_TIMEOUT
from removeany.infra.db import upgrade
from removeany.infra.settings import Settings
from removeany.infra.storage import S3Storage
from tests.batches._scale import redis_broker, settings_env
from tests.helpers import closed_port, wait_until_serving
from tests.jobs._bucket import FlakyEndpoint, moto_endpoint

ALL_OK = {"database": "ok", "migrations": "ok", "storage": "ok", "models": "ok"}


@contextmanager
def serving(settings: Settings, *, run_workers: bool = True) -> Iterator[TestClient]:
    ctx = build_context(settings)
    try:
        with TestClient(create_app(ctx, run_workers=run_workers)) as client:
            yield client
    finally:
        ctx.close()


def readiness(client: TestClient) -> tuple[int, dict[str, str]]:
    answer = client.get("/readyz")
    body = answer.json()
    assert body["status"] == ("ready" if answer.status_code == 200 else "not_ready"), body
    return answer.status_code, body["checks"]


def through(endpoint: FlakyEndpoint, url: str) -> str:
    """`url` (a database's or Redis') reached through the forwarder instead."""
    return make_url(url).set(host="127.0.0.1", port=endpoint.port).render_as_string(False)


def test_a_healthy_install_is_live_and_ready_to_anyone(ctx: Context) -> None:
    """No session, no cookie, no terms accepted: the probes answer JSON, never a redirect to
    sign in or accept the terms, are not cached on the way, answer HEAD as well, stay out of
    the API's OpenAPI document, and are not throttled however often they come."""
    with TestClient(create_app(ctx), follow_redirects=False) as client:
        live = client.get("/healthz")
        assert (live.status_code, live.json()) == (200, {"status": "ok"})
        ready = client.get("/readyz")
        assert ready.status_code == 200
        assert ready.json() == {"status": "ready", "checks": ALL_OK}
        for answer in (live, ready):
            assert answer.headers["cache-control"] == "no-store"
            assert "set-cookie" not in answer.headers
        assert client.head("/readyz").status_code == 200
        assert client.head("/healthz").status_code == 200
        paths = client.get("/api/openapi.json").json()["paths"]
        assert "/healthz" not in paths and "/readyz" not in paths
        assert {client.get("/readyz").status_code for _ in range(60)} == {200}


def make_settings(tmp_path: Path, model_dir: Path, database_url: str) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        database_url=database_url,
        model_dir=model_dir,
        secret_key="test-secret-key",
    )


def test_a_postgresql_that_goes_away_makes_the_replica_unready_not_dead(
    tmp_path: Path, model_dir: Path, postgres_url: str
) -> None:
    """The database's port closes (the server is down): /readyz answers 503 naming the
    database, and nothing of where it is; /healthz stays 200, so an orchestrator takes the
    replica out of rotation without restarting it. Once the port opens again it is ready."""
    pg = make_url(postgres_url)
    endpoint = FlakyEndpoint(f"{pg.host}:{pg.port or 5432}")
    try:
        forwarded = make_settings(tmp_path, model_dir, through(endpoint, postgres_url))
        with serving(forwarded, run_workers=False) as client:
            assert readiness(client) == (200, ALL_OK)
            endpoint.down()
            started = time.monotonic()
            answer = client.get("/readyz")
            assert time.monotonic() - started < READY_TIMEOUT + 1
            assert answer.status_code == 503
            assert answer.json()["checks"] == {
                **ALL_OK,
                "database": "unavailable",
                "migrations": "unknown",
            }
            assert str(endpoint.port) not in answer.text and "127.0.0.1" not in answer.text
            assert client.get("/healthz").status_code == 200
            endpoint.up()
            assert readiness(client) == (200, ALL_OK)
    finally:
        endpoint.close()


def test_an_sqlite_file_that_goes_away_makes_the_process_unready(
    tmp_path: Path, model_dir: Path
) -> None:
    """The embedded database moved away (a volume not mounted): 503 naming the database,
    and the probe does not create an empty file in its place."""
    path = tmp_path / "removeany.db"
    upgrade(f"sqlite:///{path}")
    with serving(make_settings(tmp_path, model_dir, f"sqlite:///{path}")) as client:
        assert readiness(client) == (200, ALL_OK)
        path.rename(path.with_suffix(".away"))
        status, checks = readiness(client)
        assert (status, checks["database"], checks["migrations"]) == (503, "unavailable", "unknown")
        assert not path.exists()
        assert client.get("/healthz").status_code == 200
        path.with_suffix(".away").rename(path)
        assert readiness(client) == (200, ALL_OK)


def test_a_database_at_a_closed_port_is_named(tmp_path: Path, model_dir: Path) -> None:
    down = f"postgresql+psycopg://removeany:secret-pw@127.0.0.1:{closed_port()}/removeany"
    with serving(make_settings(tmp_path, model_dir, down), run_workers=False) as client:
        answer = client.get("/readyz")
        assert answer.status_code == 503
        assert answer.json()["checks"]["database"] == "unavailable"
        assert "secret-pw" not in answer.text and "removeany:" not in answer.text
        assert client.get("/healthz").status_code == 200


def test_an_unmigrated_database_is_not_ready_until_migrated(
    settings: Settings, empty_database: Callable[[str], str]
) -> None:
    """A replica started against a database `removeany migrate` has not reached (a release
    rolled out before its migration): 503 naming the migrations, ready once they ran; a
    database a newer release migrated is not this release's either."""
    url = empty_database(make_url(settings.sqlalchemy_url).get_backend_name())
    with serving(settings.model_copy(update={"database_url": url}), run_workers=False) as client:
        assert readiness(client) == (503, {**ALL_OK, "migrations": "pending"})
        upgrade(url)
        assert readiness(client) == (200, ALL_OK)
        engine = create_engine(url)
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO alembic_version VALUES ('0099_from_the_future')"))
        engine.dispose()
        assert readiness(client) == (503, {**ALL_OK, "migrations": "newer"})


def test_redis_down_in_celery_mode_is_named_the_queue(settings: Settings) -> None:
    broker_url, queue = redis_broker()
    redis_at = make_url(broker_url)
    endpoint = FlakyEndpoint(f"{redis_at.host}:{redis_at.port}")
    celery = settings.model_copy(
        update={
            "queue_backend": "celery",
            "broker_url": f"redis://127.0.0.1:{endpoint.port}/{redis_at.database}",
            "queue_name": queue,
        }
    )
    try:
        with serving(celery) as client:
            assert readiness(client) == (200, {**ALL_OK, "queue": "ok"})
            endpoint.down()
            answer = client.get("/readyz")
            assert answer.status_code == 503
            assert answer.json()["checks"] == {**ALL_OK, "queue": "unavailable"}
            assert client.get("/healthz").status_code == 200
            endpoint.up()
            assert readiness(client) == (200, {**ALL_OK, "queue": "ok"})
    finally:
        endpoint.close()


@contextmanager
def silent_peer() -> Iterator[int]:
    """A port that accepts connections and never says a word (a peer hung, or a firewall
    that lets the handshake through)."""
    with closing(socket.socket()) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        yield listener.getsockname()[1]


def test_a_silent_broker_is_a_timeout_and_stuck_checks_do_not_pile_up(
    settings: Settings,
) -> None:
    with silent_peer() as port:
        celery = settings.model_copy(
            update={"queue_backend": "celery", "broker_url": f"redis://127.0.0.1:{port}/0"}
        )
        with serving(celery, run_workers=False) as client:
            most_threads = 0
            for _ in range(4):
                started = time.monotonic()
                status, checks = readiness(client)
                assert time.monotonic() - started < READY_TIMEOUT + 1
                assert status == 503 and checks["queue"] in ("timeout", "unavailable")
                assert {k: v for k, v in checks.items() if k != "queue"} == ALL_OK
                queue_checks = [t for t in threading.enumerate() if t.name == "readyz-queue"]
                most_threads = max(most_threads, len(queue_checks))
            assert most_threads <= 1


def test_a_bucket_that_refuses_or_cannot_be_reached(settings: Settings) -> None:
    bucket = f"removeany-ready-{uuid.uuid4().hex[:8]}"  # moto's buckets outlive its server
    with moto_endpoint() as moto:
        endpoint = FlakyEndpoint(moto)
        s3 = settings.model_copy(
            update={
                "storage_backend": "s3",
                "s3_bucket": bucket,
                "s3_endpoint_url": endpoint.url,
                "s3_access_key_id": "probe",
                "s3_secret_access_key": "probe-secret",
            }
        )
        try:
            with serving(s3, run_workers=False) as client:
                assert readiness(client) == (503, {**ALL_OK, "storage": "refused"})
                S3Storage(
                    bucket,
                    endpoint_url=moto,
                    access_key_id="probe",
                    secret_access_key="probe-secret",
                ).ensure_bucket()
                assert readiness(client) == (200, ALL_OK)
                endpoint.down()
                assert readiness(client) == (503, {**ALL_OK, "storage": "unavailable"})
        finally:
            endpoint.close()


def test_missing_weights_are_named_the_models(
    settings: Settings, model_dir: Path, tmp_path: Path
) -> None:
    """A web process that runs jobs has been started without the portrait model's file (by
    other means than `serve`, which refuses to start so)."""
    partial = tmp_path / "models"
    partial.mkdir()
    for name in ("u2netp-int8.onnx", "u2netp-int8.onnx.sha256"):
        shutil.copy(model_dir / name, partial / name)
    with serving(settings.model_copy(update={"model_dir": partial})) as client:
        assert readiness(client) == (503, {**ALL_OK, "models": "missing"})
    with serving(settings.model_copy(update={"model_dir": partial}), run_workers=False) as client:
        assert readiness(client) == (200, ALL_OK)  # the try-out's cutout model is there


def test_serve_leaves_probes_out_of_its_access_log_and_logs_changes_once(
    tmp_path: Path, model_dir: Path, postgres_url: str
) -> None:
    """A real `removeany serve` on PostgreSQL: probes are cheap and leave no access log line;
    the database going away and coming back is logged once each, with the reason, however
    many probes come meanwhile."""
    pg = make_url(postgres_url)
    endpoint = FlakyEndpoint(f"{pg.host}:{pg.port or 5432}")
    port = closed_port()
    env = settings_env(
        {
            "data_dir": tmp_path / "data",
            "model_dir": model_dir,
            "secret_key": "test-secret-key",
            "database_url": through(endpoint, postgres_url),
        }
    )
    with (tmp_path / "serve.log").open("wb") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "removeany", "serve", "--port", str(port), "--no-workers"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(base)
        with httpx.Client(base_url=base) as http:
            timings: dict[str, list[float]] = {"/healthz": [], "/readyz": []}
            for _ in range(50):
                for path, spent in timings.items():
                    started = time.perf_counter()
                    assert http.get(path).status_code == 200
                    spent.append(time.perf_counter() - started)
            for path, spent in timings.items():
                print(f"{path}: median {statistics.median(spent) * 1000:.1f} ms")
                assert statistics.median(spent) < 0.1
            endpoint.down()
            assert {http.get("/readyz").status_code for _ in range(5)} == {503}
            assert http.get("/healthz").status_code == 200
            endpoint.up()
            assert http.get("/readyz").status_code == 200
            assert http.get("/api/v1/prices").status_code == 200
    finally:
        server.terminate()
        server.wait(timeout=30)
        endpoint.close()
    written = (tmp_path / "serve.log").read_text()
    assert '"GET /api/v1/prices HTTP/1.1" 200' in written
    assert "/readyz" not in written and "/healthz" not in written
    assert written.count("readiness: database unavailable: connection failed") == 1
    assert written.count("readiness: database is ok again") == 1
