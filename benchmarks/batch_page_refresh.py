"""Server time per refresh of a large batch's page: one read of the events stream, and one
round of the polling fallback, for a batch of --items items (half of them done).

The stream's read before paging (GET /api/v1/batches/{id}/events read the summary, then every
item's whole row, twice a second) is reproduced here as `every_row`, next to what it does now
(`service.ItemWatch`: the items' statuses only when the counts moved, whole rows only for the
items that changed). The polling fallback is measured through the API: the summary plus
/items?limit=5000 (batch.js before) or one page of 100 (now).

    PYTHONPATH=src python benchmarks/batch_page_refresh.py --items 2000
"""

from __future__ import annotations

import argparse
import io
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import update

from removeany.accounts import service as accounts
from removeany.app import create_app
from removeany.batches import repository as repo
from removeany.batches import service
from removeany.batches.models import Batch
from removeany.context import Context, build_context
from removeany.credits import service as ledger
from removeany.infra.db import upgrade
from removeany.infra.settings import Settings
from removeany.jobs.models import Job
from removeany.legal import service as legal

EMAIL = "shop@example.com"


def tiny_png(n: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (16, 16), (n % 256, 80, 160)).save(buf, "PNG")
    return buf.getvalue()


def make_batch(ctx: Context, items: int) -> tuple[str, str]:
    """A user, an API key and a batch of `items` items, half of them succeeded."""
    entries = [
        service.Entry(f"shop/{n:05d}.png", len(data), (lambda d: lambda limit: d[:limit])(data))
        for n, data in ((n, tiny_png(n)) for n in range(items))
    ]
    ctx.settings.batch_max_items = items
    planned = service.plan(entries, ctx.settings)
    with ctx.db.transaction() as session:
        user = accounts.create_user(
            session, EMAIL, "benchmark password", now=ctx.now(), verified=True
        )
        legal.accept(session, user, legal.current(session).version, now=ctx.now())
        ledger.grant(
            session,
            user.id,
            items,
            source="admin",
            now=ctx.now(),
            expires_at=ctx.now() + timedelta(days=1),
            reference="benchmark",
        )
        key = accounts.create_api_key(session, user, "benchmark", now=ctx.now())[0]
        batch, jobs = service.create(
            session, ctx.storage, user, service="remove_background", options={"size": "preview"},
            name="benchmark", planned=planned, now=ctx.now(), reserve_ttl=timedelta(hours=1),
            written=[],
        )  # fmt: skip
        done = [job.id for job in jobs[: items // 2]]
        session.execute(
            update(Job).where(Job.id.in_(done)).values(status="succeeded", finished_at=ctx.now())
        )
        return batch.id, key


def median_ms(run: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--items", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--database-url", default=None, help="default: SQLite in a temp folder")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        values: dict[str, object] = {"data_dir": Path(tmp), "secret_key": "benchmark"}
        if args.database_url:
            values["database_url"] = args.database_url
        settings = Settings(**values)  # type: ignore[arg-type]
        upgrade(settings.sqlalchemy_url)
        ctx = build_context(settings)
        try:
            batch_id, key = make_batch(ctx, args.items)
            measure(ctx, batch_id, key, args.repeat, args.items)
        finally:
            ctx.close()


def measure(ctx: Context, batch_id: str, key: str, repeat: int, items: int) -> None:
    def batch_of(session: object) -> Batch:
        found = session.get(Batch, batch_id)  # type: ignore[attr-defined]
        assert found is not None
        return found

    seen: dict[str, str] = {}

    def every_row() -> None:  # the stream's read before
        with ctx.db.transaction() as session:
            service.summary(session, batch_of(session), ctx.now())
            for job in repo.items(session, batch_id):
                if seen.get(job.id) != job.status:
                    seen[job.id] = job.status

    every_row()
    watch = service.ItemWatch(since=ctx.now())

    def watched() -> list[Job]:
        with ctx.db.transaction() as session:
            out = service.summary(session, batch_of(session), ctx.now())
            return watch.changes(session, batch_of(session), out.counts)

    watched()
    queued = [job_id for job_id, status in seen.items() if status == "queued"]

    def five_change() -> None:
        with ctx.db.transaction() as session:
            ids = [queued.pop() for _ in range(5)]
            session.execute(update(Job).where(Job.id.in_(ids)).values(status="running"))

    def watched_after_change() -> list[Job]:
        five_change()
        return watched()

    print(f"{items} items, half done; median of {repeat} reads, ms")
    print(f"events, every row (before)        {median_ms(every_row, repeat):8.1f}")
    print(f"events, nothing changed (now)     {median_ms(watched, repeat):8.1f}")
    change_ms = median_ms(five_change, repeat)
    both_ms = median_ms(watched_after_change, repeat)
    print(f"events, 5 items changed (now)     {both_ms - change_ms:8.1f}")

    headers = {"X-Api-Key": key}
    with TestClient(create_app(ctx)) as client:
        base = f"/api/v1/batches/{batch_id}"

        def poll(query: str) -> Callable[[], None]:
            def run() -> None:
                assert client.get(base, headers=headers).status_code == 200
                assert client.get(f"{base}/items?{query}", headers=headers).status_code == 200

            return run

        print(f"polling, every item (before)      {median_ms(poll('limit=5000'), repeat):8.1f}")
        page = poll("offset=0&limit=100")
        print(f"polling, one page of 100 (now)    {median_ms(page, repeat):8.1f}")


if __name__ == "__main__":
    main()
