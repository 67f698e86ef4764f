"""The "this wasn't me" path in headless Chromium: a sign-in from a new device sends an email;
its link locks the account, signs everyone out and mails a reset link that unlocks it."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from removeany.context import build_context
from tests.helpers import make_user
from tests.trust.conftest import PASSWORD, link_in
from tests.web.test_browser import LiveServer, page, server  # noqa: F401  (fixtures)

pytestmark = pytest.mark.browser


def test_this_wasnt_me_locks_and_reset_unlocks(server: LiveServer, page: Any) -> None:  # noqa: F811
    from playwright.sync_api import expect

    ctx = build_context(server.settings)
    try:
        make_user(ctx, "owner@example.com")
        # The owner's usual device signs in first (no alert for a first device).
        usual = httpx.Client(base_url=server.url, headers={"User-Agent": "OwnerLaptop/1.0"})
        assert (
            usual.post(
                "/api/v1/auth/login", json={"email": "owner@example.com", "password": PASSWORD}
            ).status_code
            == 200
        )

        # Someone else signs in from a browser never seen before.
        page.goto(server.url + "/login")
        page.get_by_label("Email address").fill("owner@example.com")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        expect(page).to_have_url(server.url + "/app")
        not_me = link_in(ctx, "owner@example.com", "/account/not-me")

        # The owner opens the link from the alert and locks the account.
        page.goto(not_me)
        expect(page.get_by_role("heading", name="This wasn't me")).to_be_visible()
        page.get_by_role("button", name="Lock my account").click()
        expect(page.locator("#not-me-done")).to_contain_text("Your account is locked")
        assert usual.get("/api/v1/me").status_code == 401  # every session is gone
        page.goto(server.url + "/app")
        expect(page).to_have_url(server.url + "/login?next=/app")

        # The old password no longer gets anyone in.
        page.get_by_label("Email address").fill("owner@example.com")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("alert")).to_contain_text("locked")

        # The reset link from the email unlocks it with a new password.
        page.goto(link_in(ctx, "owner@example.com", "/reset-password"))
        page.get_by_label("New password").fill("a fresh and private phrase")
        page.get_by_role("button", name="Save new password").click()
        expect(page).to_have_url(server.url + "/login?reset=1")
        page.get_by_label("Email address").fill("owner@example.com")
        page.get_by_label("Password").fill("a fresh and private phrase")
        page.get_by_role("button", name="Sign in").click()
        expect(page).to_have_url(server.url + "/app")
        page.goto(server.url + "/account/security")
        expect(page.get_by_role("heading", name="Where you are signed in")).to_be_visible()
        # The refused sign-in answered 403 (the browser logs that); nothing else went wrong.
        assert [p for p in page.problems if "status of 403" not in p] == []
        usual.close()
    finally:
        ctx.close()
