"""Batch throughput on the scaled stack: PostgreSQL, Redis, real `removeany worker` processes.

    .venv/bin/python benchmarks/batch_throughput.py [--items 200] [--side 320] [--workers 1 2]

Reports the engine alone (decode + background removal + encode, in this process, one image at
a time) and then, for each worker count, a batch submitted through the batch service and run by
that many Celery worker processes (concurrency 1 each): images per second, and the overhead per
item versus the engine alone (queueing, claiming, leases, storage, settlement, ledger), both in
wall time and in CPU time of the worker processes (the CPU figure is the robust one on a
machine shared with other work; wall time moves with the load). Each worker count runs its
engine-alone baseline with the same number of processes right before its batch. Model
loading is excluded everywhere (a warm-up batch runs first). Needs PostgreSQL at
REMOVEANY_TEST_POSTGRES_URL (default postgresql+psycopg://postgres@127.0.0.1:5432/postgres)
and Redis at 127.0.0.1:6379; evaluation photos under ../shared/eval (REMOVEANY_EVAL_DIR).
"""

from __future__ import annotations

import argparse
import io
import multiprocessing
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from PIL import Image
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from removeany.accounts import service as accounts
from removeany.batches import service as batches
from removeany.batches.models import Batch
from removeany.batches.submit import submit_batch
from removeany.context import Context, build_context
from removeany.credits import service as ledger
from removeany.engine.io import decode_image
from removeany.engine.models import default_model_dir
from removeany.infra.db import upgrade
from removeany.infra.settings import Settings
from removeany.jobs import processors
from removeany.legal import service as legal

REPO = Path(__file__).resolve().parents[1]
EVAL_DIR = Path(os.environ.get("REMOVEANY_EVAL_DIR", REPO.parent / "shared" / "eval"))
PG_ADMIN = os.environ.get(
    "REMOVEANY_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
OPTIONS = {"format": "png"}


def photos(count: int, side: int) -> list[tuple[str, bytes]]:
    paths = sorted(
        p
        for group in ("object", "portrait")
        for p in (EVAL_DIR / group).glob("*")
        if p.suffix in (".jpg", ".png")
        and not p.name.endswith(".alpha.png")
        and p.stem != "davis16_drift-chicane_00026"  # no subject once small: the item fails
    )
    if not paths:
        sys.exit(f"no evaluation photos under {EVAL_DIR}")
    out = []
    for i in range(count):
        with Image.open(paths[i % len(paths)]) as im:
            im = im.convert("RGB")
            im.thumbnail((side, side))
            buf = io.BytesIO()
            im.save(buf, "JPEG", quality=90)
        out.append((f"set{i % 4}/{i:04d}.jpg", buf.getvalue()))
    return out


def _engine_child(images: list[bytes], model_dir: Path, barrier: Any, results: Any) -> None:
    settings = Settings()

    def one(data: bytes) -> None:
        image = decode_image(
            data, max_bytes=settings.max_upload_bytes, max_pixels=settings.max_upload_pixels
        )
        processors.run("remove_background", image, dict(OPTIONS), model_dir)

    one(images[0])  # model load, as a warm worker has done
    barrier.wait()
    start, cpu = time.time(), time.process_time()
    for data in images:
        one(data)
    results.put((start, time.time(), time.process_time() - cpu))


def engine_alone(
    images: list[tuple[str, bytes]], model_dir: Path, processes: int
) -> tuple[float, float]:
    """Images per second, and CPU seconds per image, for what workers do with the pixels and
    nothing else: `processes` processes each decode, remove the background and encode their
    share, one at a time."""
    mp = multiprocessing.get_context("spawn")
    barrier = mp.Barrier(processes)
    results = mp.Queue()
    shares = [[data for _, data in images[i::processes]] for i in range(processes)]
    children = [
        mp.Process(target=_engine_child, args=(share, model_dir, barrier, results))
        for share in shares
    ]
    for child in children:
        child.start()
    spans = [results.get() for _ in children]
    for child in children:
        child.join()
    wall = max(end for _, end, _ in spans) - min(start for start, _, _ in spans)
    return len(images) / wall, sum(cpu for _, _, cpu in spans) / len(images)


def make_user(ctx: Context, email: str, credits: int) -> None:
    with ctx.db.transaction() as session:
        user = accounts.create_user(
            session, email, "benchmark password", now=ctx.now(), verified=True
        )
        legal.accept(session, user, legal.current(session).version, now=ctx.now())
        ledger.grant(
            session, user.id, credits, source="admin", now=ctx.now(), expires_at=None,
            reference="benchmark",
        )  # fmt: skip


def run_batch(ctx: Context, email: str, images: list[tuple[str, bytes]]) -> float:
    from removeany.accounts import repository as accounts_repo

    entries = [
        batches.Entry(path, len(data), (lambda d: lambda limit: d[:limit])(data))
        for path, data in images
    ]
    planned = batches.plan(entries, ctx.settings)

    def user_of(session):  # type: ignore[no-untyped-def]
        return accounts_repo.user_by_email(session, email)

    start = time.perf_counter()
    batch = submit_batch(
        ctx, user_of, service_name="remove_background", options=dict(OPTIONS), name="bench",
        planned=planned,
    )  # fmt: skip
    while True:
        with ctx.db.transaction() as session:
            row = session.get(Batch, batch.id)
            assert row is not None
            summary = batches.summary(session, row, ctx.now())
        if summary.status == "completed":
            elapsed = time.perf_counter() - start
            break
        time.sleep(0.05)
    if summary.counts.succeeded != len(images):
        sys.exit(f"batch finished with {summary.counts}")
    return elapsed


def start_workers(n: int, env: dict[str, str], logs: Path) -> list[subprocess.Popen[bytes]]:
    procs = []
    for i in range(n):
        log = (logs / f"worker{i}.log").open("wb")
        procs.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "removeany",
                    "worker",
                    "--concurrency=1",
                    "--loglevel=warning",
                ],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        )
    return procs


def group_cpu_seconds(procs: list[subprocess.Popen[bytes]]) -> float:
    """CPU time (user + system) of every process in the workers' process groups."""
    groups = {proc.pid for proc in procs}
    ticks = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) in groups:  # pgrp
            ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


def stop_workers(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        os.killpg(proc.pid, signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=200)
    parser.add_argument("--side", type=int, default=320, help="longest side of each photo")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()

    model_dir = Path(os.environ.get("REMOVEANY_MODEL_DIR", default_model_dir()))
    images = photos(args.items, args.side)
    print(
        f"{args.items} photos, longest side {args.side}px, {os.cpu_count()} CPU cores, "
        f"load average {os.getloadavg()[0]:.1f}"
    )

    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    db_name = f"removeany_bench_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{db_name}"'))
    db_url = make_url(PG_ADMIN).set(database=db_name).render_as_string(hide_password=False)
    broker = f"redis://127.0.0.1:6379/{random.randint(1, 15)}"
    queue = f"removeany-bench-{uuid.uuid4().hex[:8]}"
    try:
        upgrade(db_url)
        with tempfile.TemporaryDirectory() as tmp:
            values = {
                "data_dir": Path(tmp) / "data",
                "database_url": db_url,
                "model_dir": model_dir,
                "secret_key": "benchmark",
                "queue_backend": "celery",
                "broker_url": broker,
                "queue_name": queue,
            }
            settings = Settings(**values)  # type: ignore[arg-type]
            env = {k: v for k, v in os.environ.items() if not k.startswith("REMOVEANY_")}
            env.update({f"REMOVEANY_{k.upper()}": str(v) for k, v in values.items()})
            ctx = build_context(settings)
            ctx.start_queue()
            try:
                for n in args.workers:
                    email = f"bench{n}@example.com"
                    make_user(ctx, email, credits=args.items + 100)
                    # Baseline and batch back to back, so both see the same machine load.
                    engine_rate, engine_cpu = engine_alone(images, model_dir, n)
                    procs = start_workers(n, env, Path(tmp))
                    try:
                        run_batch(ctx, email, images[: 4 * n])  # warm-up: load the model
                        cpu = group_cpu_seconds(procs)
                        elapsed = run_batch(ctx, email, images)
                        worker_cpu = (group_cpu_seconds(procs) - cpu) / args.items
                    finally:
                        stop_workers(procs)
                    rate = args.items / elapsed
                    plural = "es" if n > 1 else ""
                    print(
                        f"{n} process{plural}: engine alone {engine_rate:5.2f} images/s, "
                        f"batch {rate:5.2f} images/s ({elapsed:.1f} s), wall overhead "
                        f"{(engine_rate / rate - 1) * 100:+.1f}% | CPU per image: engine "
                        f"{engine_cpu * 1000:.0f} ms, worker {worker_cpu * 1000:.0f} ms, "
                        f"overhead {(worker_cpu / engine_cpu - 1) * 100:+.1f}% | load "
                        f"{os.getloadavg()[0]:.1f}"
                    )
            finally:
                ctx.close()
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)'))
        admin.dispose()
        import redis

        redis.Redis.from_url(broker).delete(queue)
    return 0


if __name__ == "__main__":
    sys.exit(main())
