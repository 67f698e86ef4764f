"""Buying credits in headless Chromium: sign in, open the credits page, buy the Starter pack
through the sandbox's test checkout, see the credits arrive, then spend one in the workspace
on a real photo and see the balance drop by the job's price."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest

from removeany.context import build_context
from tests.conftest import eval_image
from tests.helpers import make_user
from tests.web.conftest import PASSWORD, both_languages, pattern
from tests.web.test_browser import JOB_TIMEOUT_MS, LiveServer, artifact, page, server

__all__ = ["page", "server"]

pytestmark = pytest.mark.browser

EMAIL = "buyer@example.com"
PACK = "Starter"  # a built-in pack: stored in English, shown in the reader's language


@both_languages
def test_buy_credits_in_the_sandbox_and_spend_one(
    server: LiveServer, page: Any, lang: str, tr: Callable[..., str]
) -> None:
    from playwright.sync_api import expect

    ctx = build_context(server.settings)
    try:
        make_user(ctx, EMAIL, credits=0)
    finally:
        ctx.close()
    photo = eval_image("object", "alphamatting_GT03")

    page.goto(server.url + "/login")
    expect(page.locator("html")).to_have_attribute("lang", lang)
    page.get_by_label(tr("Email address")).fill(EMAIL)
    page.get_by_label(tr("Password")).fill(PASSWORD)
    page.get_by_role("button", name=tr("Sign in")).click()
    expect(page).to_have_url(server.url + "/app")
    pill = page.locator(".credit-pill [data-balance]")
    expect(pill).to_have_text("0")

    nav = page.get_by_role("navigation", name=tr("Main"))
    nav.get_by_role("link", name=tr("Credits"), exact=True).click()
    expect(page).to_have_url(server.url + "/credits")
    expect(page.get_by_role("heading", name=tr("Credits"), exact=True)).to_be_visible()
    expect(page.locator("#credits-available")).to_have_text("0")
    expect(
        page.get_by_text(
            tr(
                "Test mode: this server uses a sandbox payment provider, so no real money is "
                "charged."
            )
        )
    ).to_be_visible()

    page.get_by_role("button", name=f"{tr('Buy')} {tr(PACK)}").click()
    expect(page).to_have_url(re.compile(re.escape(server.url) + r"/billing/sandbox/\w+$"))
    expect(page.get_by_text(tr("Test mode — no real money is charged"))).to_be_visible()
    expect(page.locator("#checkout-pack")).to_have_text(tr(PACK))
    expect(page.locator("#checkout-credits")).to_have_text("50")
    expect(page.locator("#checkout-price")).to_contain_text("4.99 USD")
    page.screenshot(path=str(artifact("sandbox-checkout.png", lang)), full_page=True)

    page.get_by_role("button", name=tr("Pay (test)")).click()
    expect(page).to_have_url(re.compile(re.escape(server.url) + r"/credits\?paid=\w+$"))
    expect(page.get_by_role("status")).to_have_text(
        tr("Payment received: {credits} credits were added to your balance.", credits=50)
    )
    expect(page.locator("#credits-available")).to_have_text("50")
    expect(pill).to_have_text("50")
    expect(page.locator("#orders")).to_contain_text(tr(PACK))
    expect(page.locator("#orders")).to_contain_text(tr("Paid"))
    expect(page.locator("#lots")).to_contain_text(tr("Paid"))
    page.screenshot(path=str(artifact("credits-paid.png", lang)), full_page=True)

    nav.get_by_role("link", name=tr("Workspace")).click()
    expect(page).to_have_url(server.url + "/app")
    expect(pill).to_have_text("50")
    page.locator("#file-input").set_input_files(str(photo))
    page.wait_for_selector(
        "#result:not([hidden]), #upload-error:not([hidden])", timeout=JOB_TIMEOUT_MS
    )
    error = page.locator("#upload-error")
    assert error.is_hidden(), f"the upload failed: {error.inner_text()}"
    expect(page.get_by_role("heading", name=tr("Done: background removed"))).to_be_visible()
    meta = page.locator("#result-meta")
    one = pattern(tr("{width} × {height} px · 1 credit charged"))  # noqa: RUF001
    many = pattern(tr("{width} × {height} px · {charged} credits charged"))  # noqa: RUF001
    expect(meta).not_to_be_empty()
    text = meta.inner_text()
    found = one.fullmatch(text) or many.fullmatch(text)
    assert found, text
    price = int(found.groupdict().get("charged", 1))
    assert price >= 1
    expect(pill).to_have_text(str(50 - price))

    page.locator(".credit-pill").click()
    expect(page).to_have_url(server.url + "/credits")
    expect(page.locator("#credits-available")).to_have_text(str(50 - price))
    history = page.locator("#history")
    expect(history).to_contain_text(tr("Held credits spent on a finished job"))
    expect(history.get_by_role("link", name=tr("Open job")).first).to_be_visible()

    # Phone width: the tables still read.
    page.set_viewport_size({"width": 390, "height": 844})
    page.reload()
    expect(page.locator("#credits-available")).to_have_text(str(50 - price))
    page.screenshot(path=str(artifact("credits-phone.png", lang)), full_page=True)

    assert page.problems == []
