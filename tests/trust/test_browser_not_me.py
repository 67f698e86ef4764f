"""The "this wasn't me" path in headless Chromium: a sign-in from a new device sends an email;
its link locks the account, signs everyone out and mails a reset link that unlocks it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from removeany.context import build_context
from tests.helpers import make_user
from tests.trust.conftest import PASSWORD, link_in
from tests.web.conftest import both_languages, lang, tr  # noqa: F401  (fixtures)
from tests.web.test_browser import LiveServer, page, server  # noqa: F401  (fixtures)

pytestmark = pytest.mark.browser

LOCKED = (
    "This account is locked because someone reported a sign-in they did not make. Use the "
    "password reset link we emailed you (or ask for a new one) to unlock it."
)


@both_languages
def test_this_wasnt_me_locks_and_reset_unlocks(
    server: LiveServer,  # noqa: F811
    page: Any,  # noqa: F811
    lang: str,  # noqa: F811
    tr: Callable[..., str],  # noqa: F811
) -> None:
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
        expect(page.locator("html")).to_have_attribute("lang", lang)
        page.get_by_label(tr("Email address")).fill("owner@example.com")
        page.get_by_label(tr("Password")).fill(PASSWORD)
        page.get_by_role("button", name=tr("Sign in")).click()
        expect(page).to_have_url(server.url + "/app")
        not_me = link_in(ctx, "owner@example.com", "/account/not-me")

        # The owner opens the link from the alert and locks the account.
        page.goto(not_me)
        expect(page.get_by_role("heading", name=tr("This wasn't me"))).to_be_visible()
        page.get_by_role("button", name=tr("Lock my account")).click()
        expect(page.locator("#not-me-done")).to_have_text(
            tr(
                "Your account is locked and everyone is signed out. Your API keys are revoked. "
                "We emailed you a link to choose a new password, which unlocks the account."
            )
        )
        assert usual.get("/api/v1/me").status_code == 401  # every session is gone
        page.goto(server.url + "/app")
        expect(page).to_have_url(server.url + "/login?next=/app")

        # The old password no longer gets anyone in.
        page.get_by_label(tr("Email address")).fill("owner@example.com")
        page.get_by_label(tr("Password")).fill(PASSWORD)
        page.get_by_role("button", name=tr("Sign in")).click()
        expect(page.get_by_role("alert")).to_have_text(tr(LOCKED))

        # The reset link from the email unlocks it with a new password.
        page.goto(link_in(ctx, "owner@example.com", "/reset-password"))
        page.get_by_label(tr("New password")).fill("a fresh and private phrase")
        page.get_by_role("button", name=tr("Save new password")).click()
        expect(page).to_have_url(server.url + "/login?reset=1")
        page.get_by_label(tr("Email address")).fill("owner@example.com")
        page.get_by_label(tr("Password")).fill("a fresh and private phrase")
        page.get_by_role("button", name=tr("Sign in")).click()
        expect(page).to_have_url(server.url + "/app")
        page.goto(server.url + "/account/security")
        expect(page.get_by_role("heading", name=tr("Where you are signed in"))).to_be_visible()
        # The refused sign-in answered 403 (the browser logs that); nothing else went wrong.
        assert [p for p in page.problems if "status of 403" not in p] == []
        usual.close()
    finally:
        ctx.close()


@both_languages
def test_the_old_address_moves_the_account_back_and_is_told_what_next(
    server: LiveServer,  # noqa: F811
    page: Any,  # noqa: F811
    lang: str,  # noqa: F811
    tr: Callable[..., str],  # noqa: F811
) -> None:
    """Someone with the password moved the account to their own address. The old address's
    link moves it back, locks it, and the reset goes to the owner, not to the intruder."""
    from playwright.sync_api import expect

    ctx = build_context(server.settings)
    try:
        make_user(ctx, "owner@example.com")
        intruder = httpx.Client(base_url=server.url, headers={"User-Agent": "Evil/6.6"})
        signed = intruder.post(
            "/api/v1/auth/login", json={"email": "owner@example.com", "password": PASSWORD}
        )
        h = {"X-CSRF-Token": signed.json()["csrf_token"]}
        body = {"current_password": PASSWORD, "new_email": "mallory@evil.example"}
        assert intruder.post("/api/v1/account/email", json=body, headers=h).status_code == 202
        change = link_in(ctx, "mallory@evil.example", "/account/email/confirm")
        token = change.split("token=", 1)[1]
        assert intruder.post("/api/v1/account/email/confirm", json={"token": token}).is_success

        page.goto(link_in(ctx, "owner@example.com", "/account/not-me"))
        expect(
            page.get_by_text(tr("move the account back to the address this link was sent to;"))
        ).to_be_visible()
        page.get_by_role("button", name=tr("Lock my account")).click()
        expect(page).to_have_url(server.url + "/account/not-me?done=restored")
        expect(page.locator("#not-me-done")).to_contain_text(
            tr("Your account uses the address this link was sent to again.")
        )
        expect(page.get_by_role("heading", name=tr("What to do next"))).to_be_visible()
        assert intruder.get("/api/v1/me").status_code == 401

        page.goto(link_in(ctx, "owner@example.com", "/reset-password"))
        expect(page.locator("#password-hint")).to_have_text(
            tr(
                "At least 8 characters, not a common password or your email address. Every "
                "session will be signed out and every API key revoked."
            )
        )
        page.get_by_label(tr("New password")).fill("a fresh and private phrase")
        page.get_by_role("button", name=tr("Save new password")).click()
        expect(page).to_have_url(server.url + "/login?reset=1")
        page.get_by_label(tr("Email address")).fill("owner@example.com")
        page.get_by_label(tr("Password")).fill("a fresh and private phrase")
        page.get_by_role("button", name=tr("Sign in")).click()
        expect(page).to_have_url(server.url + "/app")
        assert page.problems == []
        intruder.close()
    finally:
        ctx.close()
