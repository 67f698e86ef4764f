"""The web's job and batch history: the workspace listed the 12 newest jobs and /batches the
20 newest batches, with no way to see older ones. Now each has "Older" links, server-rendered,
walking the same keyset pages as the API (real app, real rows, SQLite and PostgreSQL)."""

from __future__ import annotations

import html
import re

from fastapi.testclient import TestClient

from removeany.batches.pages import RECENT_BATCHES
from removeany.context import Context
from removeany.web.routes import RECENT_JOBS
from tests.api.test_api_paging import add_batches, add_jobs, batch_id
from tests.helpers import make_user
from tests.web.test_pages import login, text_of

ZH = {"Accept-Language": "zh-CN,zh;q=0.9"}


def job_id(n: int) -> str:
    return f"{n:04d}".rjust(32, "a")


def older_link(page: str, label: str) -> str | None:
    link = r'<a (?:id="older-jobs" )?href="([^"]+)" rel="next">' + re.escape(label) + "</a>"
    found = re.search(link, page)
    return html.unescape(found.group(1)) if found else None


def walk(client: TestClient, start: str, listed: str, label: str) -> list[list[str]]:
    """Every page from `start`, following the "Older" link: the ids each page lists."""
    pages: list[list[str]] = []
    url: str | None = start
    while url is not None:
        page = client.get(url)
        assert page.status_code == 200, page.text
        pages.append(re.findall(listed, page.text))
        url = older_link(page.text, label)
        assert len(pages) < 20
    return pages


def test_workspace_pages_through_older_jobs(client: TestClient, ctx: Context) -> None:
    user = make_user(ctx, "ada@example.com")
    add_jobs(ctx, user, RECENT_JOBS * 2 + 3)
    add_jobs(ctx, make_user(ctx, "eve@example.com"), 2, start=900)
    login(client, "ada@example.com")
    first = client.get("/app")
    assert "Older jobs" in text_of(first.text) and "Newest jobs" not in text_of(first.text)
    pages = walk(client, "/app", r'href="/jobs/([0-9a-f]{32})"', "Older jobs")
    shown = [list(dict.fromkeys(ids)) for ids in pages]  # a job may link more than once
    assert [len(ids) for ids in shown] == [RECENT_JOBS, RECENT_JOBS, 3]
    assert [i for ids in shown for i in ids] == [
        job_id(n) for n in reversed(range(RECENT_JOBS * 2 + 3))
    ]
    older = client.get(f"/app?before={job_id(RECENT_JOBS * 2 + 3 - RECENT_JOBS)}")
    assert 'href="/app#recent-title"' in older.text and "Newest jobs" in text_of(older.text)
    # Someone else's job, or no job at all, as the cursor: a page saying what to do.
    for before in (job_id(900), "nothing"):
        refused = client.get(f"/app?before={before}")
        assert refused.status_code == 422
        assert "is not one of yours" in text_of(refused.text)
    chinese = client.get("/app", headers=ZH)
    assert "更早的任务" in chinese.text
    assert "不属于您" in client.get(f"/app?before={job_id(900)}", headers=ZH).text


def test_batches_page_pages_through_older_batches(client: TestClient, ctx: Context) -> None:
    user = make_user(ctx, "ada@example.com")
    add_batches(ctx, user, RECENT_BATCHES + 4)
    add_batches(ctx, make_user(ctx, "eve@example.com"), 1, start=900)
    login(client, "ada@example.com")
    pages = walk(client, "/batches", r'href="/batches/([0-9a-f]{32})"', "Older batches")
    assert [len(ids) for ids in pages] == [RECENT_BATCHES, 4]
    assert [i for ids in pages for i in ids] == [
        batch_id(n) for n in reversed(range(RECENT_BATCHES + 4))
    ]
    last = client.get(f"/batches?before={batch_id(4)}")
    assert "Newest batches" in text_of(last.text) and "Older batches" not in last.text
    refused = client.get(f"/batches?before={batch_id(900)}")
    assert refused.status_code == 422 and "is not one of yours" in text_of(refused.text)
    chinese = client.get("/batches", headers=ZH)
    assert "更早的批次" in chinese.text
    assert "最新的批次" in client.get(f"/batches?before={batch_id(4)}", headers=ZH).text


def test_short_histories_show_no_paging(client: TestClient, ctx: Context) -> None:
    user = make_user(ctx, "ada@example.com")
    add_jobs(ctx, user, RECENT_JOBS)
    add_batches(ctx, user, RECENT_BATCHES)
    login(client, "ada@example.com")
    for url in ("/app", "/batches"):
        page = client.get(url)
        assert page.status_code == 200
        assert 'class="pager"' not in page.text or re.search(
            r'class="pager"[^>]*hidden>', page.text
        )
        assert (
            re.search(r'rel="next"[^>]*>', page.text) is None or 'rel="next" hidden>' in page.text
        )
