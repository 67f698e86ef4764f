"""New terms published while someone has the workspace open: their next upload is refused
(403 terms_not_accepted) and the page, loaded before, shows no banner about it; the refusal
itself offers the way to accept them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from removeany.context import build_context
from removeany.legal import service as legal
from removeany.moderation.audit import Actor
from tests.conftest import eval_image
from tests.helpers import make_user
from tests.web.conftest import PASSWORD, both_languages
from tests.web.test_browser import LiveServer
from tests.web.test_browser import page as page  # the Chromium fixture
from tests.web.test_browser import server as server  # the live-server fixture

pytestmark = pytest.mark.browser

EMAIL = "terms@example.com"
TEXT = "The operator's new text, long enough to publish."


def new_terms_while_open(server: LiveServer, page: Any, tr: Callable[..., str], path: str) -> None:
    """Sign in as someone who accepted the version in force, open `path`, then publish
    version 3 while that page is open."""
    from playwright.sync_api import expect

    ctx = build_context(server.settings)
    try:
        make_user(ctx, EMAIL, credits=10)
        page.goto(server.url + "/login")
        page.get_by_label(tr("Email address")).fill(EMAIL)
        page.get_by_label(tr("Password")).fill(PASSWORD)
        page.get_by_role("button", name=tr("Sign in")).click()
        expect(page).to_have_url(server.url + "/app")
        if path != "/app":
            page.goto(server.url + path)
        with ctx.db.transaction() as session:
            legal.publish(
                session,
                Actor(None, "cli:test"),
                summary="New wording.",
                terms_en=TEXT,
                terms_zh=TEXT,
                privacy_en=TEXT,
                privacy_zh=TEXT,
                now=ctx.now(),
            )
    finally:
        ctx.close()


@both_languages
def test_an_upload_refused_for_new_terms_leads_to_accepting_them(
    server: LiveServer, page: Any, lang: str, tr: Callable[..., str]
) -> None:
    from playwright.sync_api import expect

    new_terms_while_open(server, page, tr, "/app")
    page.get_by_label(tr("Crop to the subject")).uncheck()
    page.locator("#file-input").set_input_files(str(eval_image("object", "alphamatting_GT03")))
    error = page.locator("#upload-error")
    expect(error).to_contain_text(tr("Terms of Service and Privacy Policy"))
    accept = page.locator("#upload-terms").get_by_role("link", name=tr("Review and accept"))
    expect(accept).to_be_visible()
    expect(page.locator("#upload-buy")).to_be_hidden()
    accept.click()
    page.get_by_role("button", name=tr("I accept version {v}", v=3)).click()
    expect(page).to_have_url(server.url + "/app")
    page.locator("#file-input").set_input_files(str(eval_image("object", "alphamatting_GT03")))
    expect(page.locator("#progress-text")).to_be_visible()
    expect(error).to_be_hidden()
    expect(page.locator("#upload-terms")).to_be_hidden()
    # The refused upload's 403 is the only one Chromium logs.
    assert [p for p in page.problems if "status of 403" not in p] == []


def test_a_batch_refused_for_new_terms_leads_to_accepting_them(
    server: LiveServer, page: Any, tr: Callable[..., str]
) -> None:
    """The batch form is sent by script, which showed only the refusal's sentence of the page
    the server answered with: the way to accept the new terms comes with it."""
    from playwright.sync_api import expect

    new_terms_while_open(server, page, tr, "/batches")
    page.get_by_label(tr("Images or a ZIP")).set_input_files(
        [str(eval_image("object", "alphamatting_GT03"))]
    )
    page.get_by_role("button", name=tr("Start batch")).click()
    expect(page.locator("#batch-error")).to_contain_text(tr("Terms of Service and Privacy Policy"))
    accept = page.locator("#batch-error-action").get_by_role("link", name=tr("Review and accept"))
    expect(accept).to_be_visible()
    accept.click()
    expect(page).to_have_url(server.url + "/legal/accept")
    expect(page.get_by_role("button", name=tr("I accept version {v}", v=3))).to_be_visible()
    # The refused upload's 403 is the only one Chromium logs.
    assert [p for p in page.problems if "status of 403" not in p] == []
