"""A visitor tries the service on the home page in headless Chromium: one photo, a preview with
its background removed, the sign-up call to action; the sixth try of the hour is refused."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.conftest import eval_image
from tests.web.conftest import both_languages, pattern
from tests.web.test_browser import LiveServer, artifact, drop_file
from tests.web.test_browser import page as page  # the Chromium fixture
from tests.web.test_browser import server as server  # the live-server fixture
from tests.web.test_browser_workspace import PHONE, check_phone_layout

pytestmark = pytest.mark.browser

LIMIT = 5
TIMEOUT_MS = 60_000
REFUSED = (
    "You have used the {limit} free tries of this hour. Sign up free to keep going, "
    "or try again in a minute.",
    "You have used the {limit} free tries of this hour. Sign up free to keep going, "
    "or try again in {minutes} minutes.",
)


@pytest.fixture(autouse=True)
def trial_limit(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The live server reads its settings from the environment too: five tries an hour."""
    monkeypatch.setenv("REMOVEANY_TRIAL_PER_IP_PER_HOUR", str(LIMIT))
    yield


def _wait(page: Any) -> None:
    page.wait_for_selector(
        "#trial-result:not([hidden]), #trial-error:not([hidden])", timeout=TIMEOUT_MS
    )


@both_languages
def test_visitor_tries_one_photo_then_is_asked_to_sign_up(
    server: LiveServer, page: Any, lang: str, tr: Callable[..., str]
) -> None:
    from playwright.sync_api import expect

    photo = eval_image("object", "davis16_dog_00030")
    other = eval_image("object", "davis16_camel_00045")

    page.goto(server.url + "/")
    expect(page.locator("html")).to_have_attribute("lang", lang)
    expect(page.get_by_role("heading", name=tr("Try it now, no account needed"))).to_be_visible()
    expect(page.locator("#trial-privacy")).to_have_text(
        tr(
            "Your photo and its preview are not stored: they are processed in memory and "
            "forgotten as soon as the answer is sent."
        )
    )

    # Try 1: choose a photo.
    page.get_by_label(tr("Choose a photo")).set_input_files(str(photo))
    _wait(page)
    error = page.locator("#trial-error")
    assert error.is_hidden(), f"the try-out failed: {error.inner_text()}"
    expect(page.get_by_role("heading", name=tr("Your preview"))).to_be_visible()
    page.wait_for_function(
        "() => [...document.querySelectorAll('#trial-compare img')]"
        ".every(img => img.complete && img.naturalWidth > 0)"
    )
    width, height = page.locator("#trial-compare .compare-after").evaluate(
        "img => [img.naturalWidth, img.naturalHeight]"
    )
    assert width * height <= 250_000, "a preview, not the full size"
    expect(page.get_by_role("link", name=tr("Sign up free to download full size"))).to_be_visible()
    expect(page.locator("#trial-left")).to_have_text(
        tr("{n} free tries left this hour.", n=LIMIT - 1)
    )
    # The comparison answers the keyboard.
    page.locator("#trial-compare .compare-range").focus()
    page.keyboard.press("Home")
    assert page.locator("#trial-compare .compare-range").input_value() == "0"
    page.screenshot(path=str(artifact("home-trial-result.png", lang)), full_page=True)

    # The page fits a phone, preview included.
    page.set_viewport_size(PHONE)
    check_phone_layout(page)
    page.screenshot(path=str(artifact("home-trial-phone.png", lang)), full_page=True)
    page.set_viewport_size({"width": 1280, "height": 900})

    # Tries 2 to 5: drop a photo.
    for n in range(2, LIMIT + 1):
        page.get_by_role("link", name=tr("Try another photo")).click()
        expect(page.locator("#trial-drop")).to_be_visible()
        drop_file(page, "#trial-drop", other)
        _wait(page)
        assert error.is_hidden(), f"try {n} failed: {error.inner_text()}"
    expect(page.locator("#trial-left")).to_have_text(
        tr("No free tries left this hour. Sign up free to keep going.")
    )

    # The sixth try of the hour is refused, with a sentence that says what to do.
    page.get_by_role("link", name=tr("Try another photo")).click()
    page.get_by_label(tr("Choose a photo")).set_input_files(str(photo))
    expect(error).to_be_visible(timeout=TIMEOUT_MS)
    refused = [pattern(tr(text, limit=LIMIT, minutes="{m}"), named=False) for text in REFUSED]
    expect(error).to_contain_text(re.compile("|".join(p.pattern for p in refused)))
    expect(page.locator("#trial-result")).to_be_hidden()

    # Nothing was stored on the server.
    files = server.settings.files_dir
    assert not files.exists() or not [p for p in files.rglob("*") if p.is_file()]

    nav = page.get_by_role("navigation", name=tr("Main"))
    nav.get_by_role("link", name=tr("Sign up free")).click()
    expect(page.get_by_role("button", name=tr("Create account"))).to_be_visible()
    # The refused try shows up as a failed request in the console; nothing else may.
    assert [p for p in page.problems if "429" not in p] == []
