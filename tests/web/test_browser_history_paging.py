"""The workspace's recent jobs in a browser: app.js puts each finished job at the top of the
list and keeps 12, so a new job pushes the oldest off the first page; the "Older jobs" link
must then appear and start right after the list's last job, or that job is out of reach. On
a page of older jobs a new job is not added at the top."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from removeany.context import build_context
from removeany.web.routes import RECENT_JOBS
from tests.api.test_api_paging import add_jobs
from tests.conftest import eval_image
from tests.helpers import make_user
from tests.web.conftest import both_languages
from tests.web.test_browser import JOB_TIMEOUT_MS, LiveServer
from tests.web.test_browser import page as page  # the Chromium fixture
from tests.web.test_browser import server as server  # the live-server fixture
from tests.web.test_browser_workspace import _sign_in, drop_files


def job_id(n: int) -> str:
    return f"{n:04d}".rjust(32, "a")


@both_languages
def test_a_new_job_that_pushes_one_off_the_first_page_shows_older_jobs(
    server: LiveServer, page: Any, lang: str, tr: Callable[..., str]
) -> None:
    from playwright.sync_api import expect

    ctx = build_context(server.settings)
    try:
        user = make_user(ctx, "pager@example.com", credits=10)
        add_jobs(ctx, user, RECENT_JOBS, status="failed")  # a full first page, no older ones
    finally:
        ctx.close()
    _sign_in(server, page, tr, "pager@example.com", "/app")
    recent = page.locator("#job-list .job-item")
    expect(recent).to_have_count(RECENT_JOBS)
    older = page.get_by_role("link", name=tr("Older jobs"))
    expect(older).to_have_count(0)

    drop_files(page, "#dropzone", [eval_image("object", "davis16_dog_00030")])
    expect(recent.first).not_to_have_attribute(
        "data-job-id", job_id(RECENT_JOBS - 1), timeout=JOB_TIMEOUT_MS
    )
    expect(recent).to_have_count(RECENT_JOBS)  # job 0000 was pushed off this page
    expect(older).to_be_visible()
    older.click()
    expect(page.locator("#job-list .job-item")).to_have_count(1)
    expect(page.locator("#job-list .job-item").first).to_have_attribute("data-job-id", job_id(0))
    expect(page.get_by_role("link", name=tr("Older jobs"))).to_have_count(0)
    expect(page.get_by_role("link", name=tr("Newest jobs"))).to_be_visible()

    # A job sent from a page of older jobs belongs on the first page, not at this one's top.
    drop_files(page, "#dropzone", [eval_image("object", "davis16_camel_00045")])
    done = page.locator('#queue-list .queue-item[data-state="succeeded"]')
    expect(done).to_have_count(1, timeout=JOB_TIMEOUT_MS)
    expect(page.locator("#job-list .job-item")).to_have_count(1)
    assert page.problems == []
