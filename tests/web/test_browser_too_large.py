"""An upload over its route's bound, posted by the browser itself (the home page's try-out
form without its script), shows a page in the visitor's language with a way back, rather
than the JSON API's error or a dropped connection."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.web.conftest import both_languages
from tests.web.test_browser import CHROMIUM, CHROMIUM_ARGS, LiveServer, _unavailable
from tests.web.test_browser import server as server  # the live-server fixture

pytestmark = pytest.mark.browser

MAX_UPLOAD = 256 * 1024  # the try-out's bound is then 3 x this + 1 MB


@pytest.fixture(autouse=True)
def small_uploads(monkeypatch: pytest.MonkeyPatch) -> None:
    """The live server reads its settings from the environment too."""
    monkeypatch.setenv("REMOVEANY_MAX_UPLOAD_BYTES", str(MAX_UPLOAD))


@both_languages
def test_an_oversized_form_post_shows_a_page_with_a_way_back(
    server: LiveServer, tmp_path: Path, lang: str, tr: Callable[..., str]
) -> None:
    if not CHROMIUM.exists():
        _unavailable(f"Chromium is not installed at {CHROMIUM}")
    try:
        from playwright.sync_api import expect, sync_playwright
    except ImportError:
        _unavailable("the playwright package is not installed")
    big = tmp_path / "big.png"
    big.write_bytes(b"\x89PNG\r\n\x1a\n" + b"x" * (4 * 1024 * 1024))
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        context = browser.new_context(
            java_script_enabled=False, locale="en-US" if lang == "en" else lang
        )
        context.add_cookies([{"name": "lang", "value": lang, "domain": "127.0.0.1", "path": "/"}])
        page = context.new_page()
        page.goto(server.url + "/")
        page.set_input_files("#trial-file", str(big))
        with page.expect_navigation():
            page.locator("#trial-form [type=submit]").first.click()
        expect(page.locator("html")).to_have_attribute("lang", lang)
        expect(page.get_by_role("alert")).to_have_text(
            tr(
                "The upload is larger than this page accepts ({mb} MB). Choose a smaller "
                "file, or fewer files at once, and try again.",
                mb=1,
            )
        )
        page.get_by_role("link", name=tr("Back to the form")).click()
        expect(page.locator("#trial-file")).to_be_visible()
        assert page.url == server.url + "/"
        browser.close()
