"""Sending a batch from /batches over a slow line: the page shows how much is uploaded, lets
the upload be cancelled, warns before a batch the balance cannot pay, and shows the server's
refusal in the page, in the visitor's language; without JavaScript the plain form says the
same."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from removeany.context import build_context
from tests.batches._images import photo_paths
from tests.helpers import make_user
from tests.web.conftest import PASSWORD, both_languages, pattern
from tests.web.test_browser import LiveServer
from tests.web.test_browser import page as page  # the Chromium fixture
from tests.web.test_browser import server as server  # the live-server fixture

pytestmark = pytest.mark.browser

EMAIL = "upload@example.com"
SHORT = (
    "This needs {needed} credit{s} and your balance is {available}. Buy more credits on the "
    "Credits page (/credits) or wait for your free allowance."
)
# Bytes per second the browser may send: a few seconds for the test's three photos.
SLOW_LINE = 600_000


def _sign_in(page: Any, server: LiveServer, tr: Callable[..., str]) -> None:
    page.goto(server.url + "/login?next=/batches")
    page.get_by_label(tr("Email address")).fill(EMAIL)
    page.get_by_label(tr("Password")).fill(PASSWORD)
    page.get_by_role("button", name=tr("Sign in")).click()
    page.wait_for_url(server.url + "/batches")


def _slow_line(page: Any) -> None:
    session = page.context.new_cdp_session(page)
    session.send("Network.enable")
    session.send(
        "Network.emulateNetworkConditions",
        {
            "offline": False,
            "latency": 20,
            "downloadThroughput": -1,
            "uploadThroughput": SLOW_LINE,
        },
    )


@both_languages
def test_upload_progress_cancel_and_the_batch_page(
    server: LiveServer, page: Any, tmp_path: Path, lang: str, tr: Callable[..., str]
) -> None:
    from playwright.sync_api import expect

    ctx = build_context(server.settings)
    try:
        make_user(ctx, EMAIL, credits=10)
    finally:
        ctx.close()
    _sign_in(page, server, tr)
    _slow_line(page)
    files = page.get_by_label(tr("Images or a ZIP"))
    start = page.get_by_role("button", name=tr("Start batch"))
    progress = page.get_by_role("progressbar", name=tr("Upload progress"))
    expect(progress).to_be_hidden()

    # Cancelled half-way: nothing is created, the form can be sent again.
    photos = photo_paths(3)
    files.set_input_files([str(path) for path in photos])
    start.click()
    expect(progress).to_be_visible()
    page.wait_for_function(
        "() => { const p = document.getElementById('batch-upload-progress');"
        " return p.value > 0 && p.value < 60; }"
    )
    status = page.locator("#batch-uploading")
    expect(status).to_have_attribute("role", "status")
    sent = tr("{pct}% uploaded ({sent} of {total} MB)", pct="{pct}", sent="{sent}", total="{total}")
    mb = r"\d+\.\d"
    expect(status).to_have_text(pattern(sent, named=False, pct=r"\d+", sent=mb, total=mb))
    expect(start).to_be_disabled()
    page.get_by_role("button", name=tr("Cancel upload")).click()
    expect(status).to_have_text(tr("The upload was cancelled; no batch was started."))
    expect(progress).to_be_hidden()
    expect(start).to_be_enabled()
    assert page.url == server.url + "/batches"
    expect(page.get_by_text(tr("No batches yet. Your batches will appear here."))).to_be_visible()

    # Sent to the end: the batch's page opens.
    start.click()
    page.wait_for_url(re.compile(re.escape(server.url) + r"/batches/[0-9a-f]{32}$"))
    expect(page.get_by_role("progressbar", name=tr("Progress"))).to_have_attribute("max", "3")
    assert page.problems == []


@both_languages
def test_the_balance_is_checked_before_and_while_uploading(
    server: LiveServer, page: Any, tmp_path: Path, lang: str, tr: Callable[..., str]
) -> None:
    """Three photos for a balance of two: the page warns as they are chosen (without
    blocking), the server refuses while they arrive, and the page shows its sentence in the
    visitor's language, the same one the plain form shows without JavaScript."""
    from playwright.sync_api import expect

    ctx = build_context(server.settings)
    try:
        make_user(ctx, EMAIL, credits=2)
    finally:
        ctx.close()
    _sign_in(page, server, tr)
    photos = [str(path) for path in photo_paths(3)]
    page.get_by_label(tr("Images or a ZIP")).set_input_files(photos)
    warning = page.locator("#batch-short")
    expect(warning).to_have_text(
        tr(
            "These images need about {credits} credits and your balance is {balance}. Buy "
            "credits on the Credits page (/credits) or choose fewer images.",
            credits=3,
            balance=2,
        )
    )
    _slow_line(page)  # the server answers while the third photo is still being sent
    page.get_by_role("button", name=tr("Start batch")).click()
    refused = tr(SHORT, needed=3, s="s", available=2)
    expect(page.get_by_role("alert")).to_have_text(refused)
    expect(page.get_by_role("button", name=tr("Start batch"))).to_be_enabled()
    assert page.url == server.url + "/batches"
    # Chromium logs every request answered 4xx; the refusal is the expected answer here.
    assert [p for p in page.problems if "status of 402" not in p] == []

    # Scripting off: the plain form is posted and the same sentence comes back as a page.
    context = page.context.browser.new_context(
        java_script_enabled=False, locale="en-US" if lang == "en" else lang
    )
    context.add_cookies([{"name": "lang", "value": lang, "domain": "127.0.0.1", "path": "/"}])
    try:
        plain = context.new_page()
        _sign_in(plain, server, tr)
        expect(plain.locator("#batch-upload")).to_be_hidden()
        plain.locator("#batch-files").set_input_files(photos)
        with plain.expect_navigation():
            plain.locator("#batch-submit").click()
        expect(plain.get_by_role("alert")).to_have_text(refused)
    finally:
        context.close()
