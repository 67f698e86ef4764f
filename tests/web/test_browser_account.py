"""The account's own pages in headless Chromium, in each language: create an API key, use it
and revoke it; sign in from a second browser and sign that session out from the first; turn on
two-factor authentication with a code computed from the secret the page shows, sign out and
back in with a code; download the data export; delete the account with the password, after
which it cannot sign in again."""

from __future__ import annotations

import json
import re
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pyotp
import pytest
from fastapi.testclient import TestClient

from removeany.context import Context, build_context
from tests.helpers import make_user
from tests.web.conftest import PASSWORD, both_languages
from tests.web.test_browser import LiveServer, artifact
from tests.web.test_browser import page as page  # the Chromium fixture
from tests.web.test_browser import server as server  # the live-server fixture
from tests.web.test_pages import form_token, login, text_of

EMAIL = "keeper@example.com"
KEY_NAME = "Shop pipeline"
OTHER_BROWSER = "OtherLaptop/2.0"  # the second browser's User-Agent, as the sessions list shows it
WHEN = r"\d{4}-\d\d-\d\d \d\d:\d\d UTC"  # how pages write a time (the `when` filter)
WRONG_PASSWORD = "Your current password is wrong. Enter it again to confirm."
WRONG_CODE = "That code is not right. Check your device's clock and enter the current code."


def _sign_in(tab: Any, server: LiveServer, tr: Callable[..., str], next: str) -> None:
    from playwright.sync_api import expect

    tab.goto(f"{server.url}/login?next={next}")
    tab.get_by_label(tr("Email address")).fill(EMAIL)
    tab.get_by_label(tr("Password")).fill(PASSWORD)
    tab.get_by_role("button", name=tr("Sign in")).click()
    expect(tab).to_have_url(server.url + next)


def _refused(problems: list[str]) -> list[str]:
    """The browser logs each refused form (401) as a console error: those are the point of the
    steps that send a wrong code or password. Anything else is a problem."""
    return [p for p in problems if "status of 401 " not in p]


@pytest.mark.browser
@both_languages
def test_keys_sessions_two_factor_export_and_deletion(
    server: LiveServer, page: Any, tmp_path: Path, lang: str, tr: Callable[..., str]
) -> None:
    from playwright.sync_api import expect

    ctx = build_context(server.settings)
    try:
        make_user(ctx, EMAIL, credits=5)
    finally:
        ctx.close()
    page.allow_english.add(KEY_NAME)
    api = httpx.Client(base_url=server.url)

    _sign_in(page, server, tr, "/account/security")
    expect(page.locator("html")).to_have_attribute("lang", lang)
    expect(page.get_by_role("heading", name=tr("Security and privacy"), level=1)).to_be_visible()
    nav = page.get_by_role("navigation", name=tr("Main"))
    expect(nav.get_by_role("link", name=tr("Security"), exact=True)).to_have_attribute(
        "aria-current", "page"
    )
    expect(page.get_by_text(tr("{n} active API keys.", n=0))).to_be_visible()

    # --- An API key: created, shown once, used from a script, revoked -----------------------
    page.get_by_role("link", name=tr("See their last use and revoke them")).click()
    expect(page).to_have_url(server.url + "/account/api-keys")
    expect(page.get_by_text(tr("You have no API keys yet."))).to_be_visible()
    page.get_by_label(tr("Name"), exact=True).fill(KEY_NAME)
    page.get_by_role("button", name=tr("Create key")).click()
    reveal = page.locator(".key-reveal")
    expect(reveal).to_contain_text(tr("Your new key “{name}”.", name=KEY_NAME))
    expect(reveal).to_contain_text(
        tr("Copy it now: it is shown only once and cannot be shown again.")
    )
    key = page.get_by_label(tr("New API key")).input_value()
    assert key.startswith("rak_")
    assert api.get("/api/v1/me", headers={"X-Api-Key": key}).status_code == 200
    page.screenshot(path=str(artifact("api-key-created.png", lang)), full_page=True)

    # The list says when the key was last used (just now, by the request above).
    page.goto(server.url + "/account/api-keys")
    row = page.locator("table.keys tbody tr", has_text=KEY_NAME)
    expect(row).to_have_count(1)
    prefix = row.locator("code").inner_text().rstrip("…")
    assert len(prefix) >= 8 and key.startswith(prefix)
    expect(row.locator(f"td[data-label='{tr('Last used')}']")).to_have_text(re.compile(WHEN))

    messages: list[str] = []

    def accept(dialog: Any) -> None:
        messages.append(dialog.message)
        dialog.accept()

    page.once("dialog", accept)
    row.get_by_role("button", name=tr("Revoke")).click()
    expect(page).to_have_url(server.url + "/account/api-keys?done=revoked")
    assert messages == [
        tr("Revoke the key “{name}”? Apps that use it will stop working.", name=KEY_NAME)
    ]
    expect(page.get_by_role("status")).to_have_text(
        tr("The key was revoked. Requests that use it are now refused.")
    )
    expect(row.locator(".badge")).to_have_text(tr("Revoked"))
    expect(row.get_by_role("button")).to_have_count(0)
    refused = api.get("/api/v1/me", headers={"X-Api-Key": key})
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "invalid_api_key"

    # --- Sessions: a second browser signs in; the first signs it out -------------------------
    other = page.context.browser.new_context(
        user_agent=OTHER_BROWSER, locale="en-US" if lang == "en" else lang
    )
    other.add_cookies([{"name": "lang", "value": lang, "domain": "127.0.0.1", "path": "/"}])
    other_tab = other.new_page()
    _sign_in(other_tab, server, tr, "/app")

    page.goto(server.url + "/account/security")
    sessions = page.locator("section[aria-labelledby='sessions-title'] tbody tr")
    expect(sessions).to_have_count(2)
    mine = sessions.filter(has_text=tr("This browser"))
    expect(mine).to_have_count(1)
    expect(mine).to_contain_text(page.evaluate("() => navigator.userAgent"))
    theirs = sessions.filter(has_text=OTHER_BROWSER)
    expect(theirs.locator(f"td[data-label='{tr('Last active')}']")).to_have_text(re.compile(WHEN))
    theirs.get_by_role("button", name=tr("Sign out")).click()
    expect(page).to_have_url(server.url + "/account/security?done=session")
    expect(page.get_by_role("status")).to_have_text(tr("That session is signed out."))
    expect(sessions).to_have_count(1)
    expect(sessions).to_contain_text(tr("This browser"))
    other_tab.goto(server.url + "/app")
    expect(other_tab).to_have_url(server.url + "/login?next=/app")
    other.close()

    # --- Two-factor authentication: set up, a wrong code, the right one ----------------------
    two_factor = page.locator("section[aria-labelledby='tfa-title']")
    expect(two_factor).to_contain_text(
        tr("Off. With it on, signing in also needs a code from an authenticator app.")
    )
    two_factor.get_by_label(tr("Current password")).fill(PASSWORD)
    two_factor.get_by_role("button", name=tr("Set up")).click()
    expect(two_factor).to_contain_text(
        tr("Add this key to your authenticator app, then enter the code it shows.")
    )
    secret = page.locator("#totp-secret").inner_text().strip()
    assert re.fullmatch(r"[A-Z2-7]{16,}", secret), secret
    totp = pyotp.TOTP(secret)
    link = two_factor.get_by_role("link", name=tr("Open in an authenticator app on this device"))
    assert str(link.get_attribute("href")).startswith("otpauth://totp/")

    # A mistyped code: refused, and the same key stays on the page to try again.
    valid = {totp.at(time.time() + drift) for drift in (-30, 0, 30)}
    wrong = next(code for code in ("000000", "111111", "222222") if code not in valid)
    two_factor.get_by_label(tr("Code"), exact=True).fill(wrong)
    two_factor.get_by_role("button", name=tr("Turn on")).click()
    expect(page.get_by_role("alert")).to_have_text(tr(WRONG_CODE))
    expect(page.locator("#totp-secret")).to_have_text(secret)

    two_factor.get_by_label(tr("Code"), exact=True).fill(totp.now())
    two_factor.get_by_role("button", name=tr("Turn on")).click()
    codes = page.locator("#recovery-codes")
    expect(codes).to_be_visible()
    recovery = codes.inner_text().split()
    assert len(recovery) == 10 and all(re.fullmatch(r"\w{4}-\w{4}-\w{4}", c) for c in recovery)
    expect(page.locator(".key-reveal")).to_contain_text(tr("Your recovery codes."))
    expect(two_factor).to_contain_text(tr("On. {n} unused recovery codes left.", n=10))
    page.screenshot(path=str(artifact("security-2fa-on.png", lang)), full_page=True)

    # Sign out, and back in: the password, then a code from the app.
    nav.get_by_role("button", name=tr("Sign out")).click()
    expect(page).to_have_url(server.url + "/")
    page.goto(server.url + "/login?next=/account/security")
    page.get_by_label(tr("Email address")).fill(EMAIL)
    page.get_by_label(tr("Password")).fill(PASSWORD)
    page.get_by_role("button", name=tr("Sign in")).click()
    expect(page).to_have_url(re.compile(re.escape(server.url) + r"/login/2fa\?"))
    expect(page.get_by_role("heading", name=tr("Two-step sign-in"))).to_be_visible()
    # Each code works once: the one that turned 2FA on is spent, so the app's next one
    # (accepted for clock drift) stands in for waiting half a minute.
    page.get_by_label(tr("Code"), exact=True).fill(totp.at(time.time() + 30))
    page.get_by_role("button", name=tr("Sign in")).click()
    expect(page).to_have_url(server.url + "/account/security")
    expect(two_factor).to_contain_text(tr("On. {n} unused recovery codes left.", n=10))

    # --- The data export: a ZIP whose account.json describes the account ---------------------
    data = page.locator("section[aria-labelledby='data-title']")
    with page.expect_download() as info:
        data.get_by_role("link", name=tr("Download all my data (ZIP)")).click()
    saved = tmp_path / "export.zip"
    info.value.save_as(str(saved))
    assert info.value.suggested_filename.endswith(".zip")
    with zipfile.ZipFile(saved) as archive:
        assert "account.json" in archive.namelist()
        record = json.loads(archive.read("account.json"))
    assert record["format"] == "removeany-export/1"
    assert record["account"]["email"] == EMAIL
    assert record["account"]["two_factor"] is True
    assert [k["name"] for k in record["api_keys"]] == [KEY_NAME]
    assert record["api_keys"][0]["revoked_at"] is not None
    (theirs_record,) = [s for s in record["sessions"] if s["user_agent"] == OTHER_BROWSER]
    assert theirs_record["revoked_at"] is not None

    # --- Deleting the account: the password is checked, then everything goes -----------------
    confirm = tr("Delete your account, images and personal data now? This cannot be undone.")
    messages.clear()
    data.get_by_label(tr("Current password")).fill("not my password at all")
    page.once("dialog", accept)
    data.get_by_role("button", name=tr("Delete my account")).click()
    expect(page.get_by_role("alert")).to_have_text(tr(WRONG_PASSWORD))
    assert messages == [confirm]

    data.get_by_label(tr("Current password")).fill(PASSWORD)
    page.once("dialog", accept)
    data.get_by_role("button", name=tr("Delete my account")).click()
    expect(page.get_by_role("heading", name=tr("Account deleted"))).to_be_visible()
    expect(page.get_by_role("status")).to_have_text(
        tr("Your account, images and personal data were deleted. Thank you for using RemoveAny.")
    )
    assert messages == [confirm, confirm]
    expect(nav.get_by_role("link", name=tr("Sign in"), exact=True)).to_be_visible()
    page.goto(server.url + "/account/security")
    expect(page).to_have_url(server.url + "/login?next=/account/security")

    # The address and password no longer open anything.
    page.get_by_label(tr("Email address")).fill(EMAIL)
    page.get_by_label(tr("Password")).fill(PASSWORD)
    page.get_by_role("button", name=tr("Sign in")).click()
    expect(page.get_by_role("alert")).to_have_text(tr("Email or password is wrong."))
    expect(page).to_have_url(re.compile(re.escape(server.url + "/login")))
    api.close()
    assert _refused(page.problems) == []


def test_a_mistyped_setup_code_shows_the_same_secret_again(
    client: TestClient, ctx: Context
) -> None:
    """Without a browser: the secret the authenticator app was given stays the one in force."""
    make_user(ctx, EMAIL)
    login(client, EMAIL)
    page = client.get("/account/security?lang=zh-CN").text
    token = form_token(page)
    setup = client.post(
        "/account/security/2fa/setup", data={"current_password": PASSWORD, "csrf_token": token}
    )
    found = re.search(r'id="totp-secret">([A-Z2-7]+)<', setup.text)
    assert found, setup.text
    totp = pyotp.TOTP(found.group(1))
    valid = {totp.at(time.time() + drift) for drift in (-30, 0, 30)}
    wrong = next(code for code in ("000000", "111111", "222222") if code not in valid)
    refused = client.post("/account/security/2fa/enable", data={"code": wrong, "csrf_token": token})
    assert refused.status_code == 401
    assert "验证码不正确。请检查设备时间，并输入当前的验证码。" in text_of(refused.text)  # noqa: RUF001
    assert f'id="totp-secret">{found.group(1)}<' in refused.text
    assert "otpauth://totp/" in refused.text
    done = client.post(
        "/account/security/2fa/enable", data={"code": totp.now(), "csrf_token": token}
    )
    assert done.status_code == 200 and 'id="recovery-codes"' in done.text
    # Once it is on, a refused code shows no secret: there is none pending.
    again = client.post("/account/security/2fa/enable", data={"code": wrong, "csrf_token": token})
    assert again.status_code == 409 and 'id="totp-secret"' not in again.text
