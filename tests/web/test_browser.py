"""The whole vertical slice in headless Chromium: sign up, confirm by email, sign in, upload a
real photo, wait for the cut-out, compare, download a transparent PNG, see the balance drop."""

from __future__ import annotations

import base64
import os
import re
import socket
import threading
import time
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from PIL import Image

from removeany.app import create_app
from removeany.context import build_context
from removeany.infra.settings import Settings
from tests.conftest import REPO, eval_image
from tests.web.conftest import PASSWORD, both_languages, verification_link

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = REPO / "test-artifacts"
REQUIRE_BROWSER = os.environ.get("REMOVEANY_REQUIRE_BROWSER") == "1"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
JOB_TIMEOUT_MS = 180_000
# The machine running the tests may be busy (CI, two cores): more patience than Playwright's
# default 5 s for expectations.
EXPECT_TIMEOUT_MS = 10_000


@dataclass
class LiveServer:
    url: str
    settings: Settings


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _unavailable(reason: str) -> None:
    if REQUIRE_BROWSER:
        pytest.fail(f"{reason} (REMOVEANY_REQUIRE_BROWSER=1 makes this a failure)")
    pytest.skip(f"{reason}; install Debian's chromium and playwright to run browser tests")


@pytest.fixture
def server(tmp_path: Path, model_dir: Path) -> Iterator[LiveServer]:
    """The real app under uvicorn on 127.0.0.1, with a fresh data dir (SQLite, outbox, files)."""
    port = _free_port()
    settings = Settings(
        data_dir=tmp_path / "data",
        model_dir=model_dir,
        secret_key="browser-test-secret",
        base_url=f"http://127.0.0.1:{port}",
        mail_backend="outbox",
        database_url=None,
    )
    ctx = build_context(settings, migrate=True)
    config = uvicorn.Config(
        create_app(ctx), host="127.0.0.1", port=port, log_level="warning", lifespan="on"
    )
    uv = uvicorn.Server(config)
    thread = threading.Thread(target=uv.run, name="uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not uv.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.05)
    try:
        yield LiveServer(settings.base_url, settings)
    finally:
        uv.should_exit = True
        thread.join(timeout=30)
        ctx.close()


@pytest.fixture
def page(request: pytest.FixtureRequest, lang: str) -> Iterator[Any]:
    """A Chromium tab whose browser asks the site for `lang` (the `lang` cookie the language
    switch sets, and the matching Accept-Language). `tab.problems` collects page errors,
    console errors, every HTML page whose `<html lang>` is not `lang` and, on Chinese pages,
    text still in English when the page was loaded (add what the test typed itself, such as
    a name or a reason, to `tab.allow_english`)."""
    if not CHROMIUM.exists():
        _unavailable(f"Chromium is not installed at {CHROMIUM}")
    try:
        from playwright.sync_api import expect, sync_playwright
    except ImportError:
        _unavailable("the playwright package is not installed")
    expect.set_options(timeout=EXPECT_TIMEOUT_MS)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        context = browser.new_context(
            viewport={"width": 1280, "height": 900},
            accept_downloads=True,
            locale="en-US" if lang == "en" else lang,
        )
        context.add_cookies([{"name": "lang", "value": lang, "domain": "127.0.0.1", "path": "/"}])
        problems: list[str] = []
        allow_english: set[str] = set()

        def loaded(source: dict[str, Any], found: dict[str, Any]) -> None:
            url = str(source["frame"].url)
            if not url.startswith("http"):
                return
            if found["lang"] != lang:
                problems.append(f"{url} is <html lang={found['lang']!r}>, not {lang!r}")
            if lang != "en":
                problems.extend(
                    f"{url} shows English on a {lang} page: {text!r}"
                    for text in found["english"]
                    if looks_english(text, allow_english)
                )

        context.expose_binding("__removeanyLoaded", loaded)
        context.add_init_script(script=_ON_LOAD)
        tab: Any = context.new_page()  # with the attributes below
        tab.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
        tab.on(
            "console",
            lambda msg: (
                problems.append(f"console {msg.type}: {msg.text}") if msg.type == "error" else None
            ),
        )
        tab.problems = problems
        # What the test itself typed (names, reasons), and the browser's own name (the list
        # of sessions shows it).
        allow_english.add(tab.evaluate("() => navigator.userAgent"))
        tab.allow_english = allow_english
        try:
            yield tab
        finally:
            report = getattr(request.node, "rep_call", None)
            if report is None or report.failed:
                ARTIFACTS.mkdir(exist_ok=True)
                shot = ARTIFACTS / f"{request.node.name}-failure.png"
                try:
                    tab.screenshot(path=str(shot), full_page=True)
                    print(f"screenshot of the failure: {shot}")
                except Exception as exc:
                    print(f"could not take a failure screenshot: {exc}")
            context.close()
            browser.close()


# Runs in every document the tab opens: once it is parsed, report its <html lang> and the
# texts (and labels) with Latin words but no Chinese at all: untranslated, on a Chinese page.
_ON_LOAD = """
document.addEventListener("DOMContentLoaded", () => {
  const english = (text) =>
    /[A-Za-z]{3,}/.test(text) && !/[\\u3000-\\u9fff\\uff00-\\uffef]/.test(text);
  const found = new Set();
  const skip = "script, style, noscript, textarea, code, pre, [lang=en], [translate=no]";
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const text = node.textContent.trim();
    if (english(text) && !node.parentElement.closest(skip)) found.add(text);
  }
  for (const el of document.querySelectorAll("[aria-label], [placeholder], [title], [alt]")) {
    if (el.closest(skip)) continue;
    for (const name of ["aria-label", "placeholder", "title", "alt"]) {
      const value = (el.getAttribute(name) || "").trim();
      if (english(value)) found.add(value);
    }
  }
  window.__removeanyLoaded({ lang: document.documentElement.lang, english: [...found] });
});
"""
# Latin text a Chinese page may show: names of formats and standards, the product, addresses,
# file names, ids, dates and numbers.
_NOT_ENGLISH = re.compile(
    r"\S+@\S+|[\w.-]+\.(?:png|jpe?g|webp|gif|zip|eml|json)\b|\S*\d\S*"
    r"|\b(?:RemoveAny|PNG|JPE?G|WebP|GIF|BMP|TIFF|ZIP|API|UTC|USD|EXIF|GPS|Ctrl|px|dpi)\b",
    re.IGNORECASE,
)


def looks_english(text: str, allowed: Collection[str] = ()) -> bool:
    """Whether `text` (which has no Chinese in it) still has words once what a Chinese page
    may show in Latin letters is taken out."""
    for known in allowed:
        text = text.replace(known, " ")
    return re.search(r"[A-Za-z]{3,}", _NOT_ENGLISH.sub(" ", text)) is not None


def artifact(name: str, lang: str) -> Path:
    """Where a test keeps a screenshot or download: `name` for English, `name-zh-CN` for Chinese
    (so the two runs of a flow keep both)."""
    ARTIFACTS.mkdir(exist_ok=True)
    stem, dot, suffix = name.rpartition(".")
    return ARTIFACTS / (name if lang == "en" else f"{stem}-{lang}{dot}{suffix}")


def drop_file(page: Any, selector: str, path: Path) -> None:
    """Drag a file from "the desktop" onto an element: the drop events a person's drag makes."""
    media_type = "image/jpeg" if path.suffix == ".jpg" else "image/png"
    page.evaluate(
        """([selector, b64, name, type]) => {
            const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
            const data = new DataTransfer();
            data.items.add(new File([bytes], name, { type }));
            const target = document.querySelector(selector);
            for (const kind of ["dragenter", "dragover", "drop"]) {
                target.dispatchEvent(
                    new DragEvent(kind, { dataTransfer: data, bubbles: true, cancelable: true })
                );
            }
        }""",
        [selector, base64.b64encode(path.read_bytes()).decode(), path.name, media_type],
    )


@both_languages
def test_sign_up_upload_and_download(
    server: LiveServer, page: Any, lang: str, tr: Callable[..., str]
) -> None:
    from playwright.sync_api import expect

    photo = eval_image("object", "alphamatting_GT03")
    email = "browser@example.com"
    outbox = server.settings.outbox_dir

    page.goto(server.url + "/")
    expect(page.locator("html")).to_have_attribute("lang", lang)
    page.get_by_role("link", name=tr("Sign up free")).click()
    page.get_by_label(tr("Email address")).fill(email)
    page.get_by_label(tr("Password")).fill(PASSWORD)
    page.get_by_role("button", name=tr("Create account")).click()
    expect(page.get_by_role("heading", name=tr("Check your email"))).to_be_visible()

    page.goto(verification_link(outbox, email))
    expect(page.get_by_role("heading", name=tr("Your email is confirmed"))).to_be_visible()
    expect(page.get_by_role("status")).to_contain_text(
        tr("Your balance is {credits} credits.", credits=10)
    )
    page.get_by_role("link", name=tr("Sign in to start")).click()

    page.get_by_label(tr("Email address")).fill(email)
    page.get_by_label(tr("Password")).fill(PASSWORD)
    page.get_by_role("button", name=tr("Sign in")).click()
    expect(page).to_have_url(server.url + "/app")
    balance = page.locator(".credit-pill [data-balance]")
    expect(balance).to_have_text("10")

    page.get_by_label(tr("Crop to the subject")).uncheck()
    page.locator("#file-input").set_input_files(str(photo))
    expect(page.locator("#progress-text")).to_be_visible()
    page.wait_for_selector(
        "#result:not([hidden]), #upload-error:not([hidden])", timeout=JOB_TIMEOUT_MS
    )
    error = page.locator("#upload-error")
    assert error.is_hidden(), f"the upload failed: {error.inner_text()}"
    expect(page.get_by_role("heading", name=tr("Done: background removed"))).to_be_visible()
    result_image = page.locator(".compare-after")
    expect(result_image).to_be_visible()
    page.wait_for_function(
        "() => [...document.querySelectorAll('.compare img')]"
        ".every(img => img.complete && img.naturalWidth > 0)"
    )
    expect(balance).to_have_text("9")
    expect(page.locator("#job-list .job-item")).to_have_count(1)
    expect(page.locator("#job-list")).to_contain_text(photo.name)

    # The comparison slider answers the keyboard.
    page.locator(".compare-range").focus()
    page.keyboard.press("Home")
    assert page.locator(".compare-range").input_value() == "0"
    page.keyboard.press("End")
    page.locator(".compare-range").evaluate(
        "r => { r.value = 40; r.dispatchEvent(new Event('input')) }"
    )

    page.screenshot(path=str(artifact("workspace-result.png", lang)), full_page=True)

    with page.expect_download() as info:
        page.get_by_role("link", name=tr("Download {format}", format="PNG")).click()
    download = info.value
    assert download.suggested_filename.endswith("-removeany.png")
    saved = artifact("downloaded-result.png", lang)
    download.save_as(str(saved))
    with Image.open(saved) as result, Image.open(photo) as original:
        assert result.format == "PNG"
        assert result.mode == "RGBA"
        assert result.size == original.size
        low, high = result.getchannel("A").getextrema()
        assert low == 0 and high == 255, "the background is transparent, the subject opaque"

    # A second photo, dropped on the drop zone this time.
    page.get_by_role("button", name=tr("Process another photo")).click()
    expect(page.get_by_text(tr("Drop a photo here"))).to_be_visible()
    portrait = eval_image("portrait", "davis16_breakdance_00008")
    drop_file(page, "#dropzone", portrait)
    page.wait_for_selector(
        "#result:not([hidden]), #upload-error:not([hidden])", timeout=JOB_TIMEOUT_MS
    )
    assert error.is_hidden(), f"the upload failed: {error.inner_text()}"
    expect(balance).to_have_text("8")
    expect(page.locator("#job-list .job-item")).to_have_count(2)
    expect(page.locator("#job-list .job-item").first).to_contain_text(portrait.name)

    # The job page shows the same result, and a reload keeps the lower balance.
    page.get_by_role("link", name=tr("Open result page")).click()
    expect(page.get_by_role("heading", name=portrait.name)).to_be_visible()
    expect(page.get_by_role("link", name=tr("Download {format}", format="PNG"))).to_be_visible()
    expect(balance).to_have_text("8")
    page.wait_for_function(
        "() => [...document.querySelectorAll('.compare img')]"
        ".every(img => img.complete && img.naturalWidth > 0)"
    )
    page.screenshot(path=str(artifact("job-page.png", lang)), full_page=True)

    # Phone width still works.
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(server.url + "/app")
    expect(page.get_by_text(tr("Choose a photo"))).to_be_visible()
    page.screenshot(path=str(artifact("workspace-phone.png", lang)), full_page=True)

    page.get_by_role("button", name=tr("Sign out")).click()
    expect(page).to_have_url(server.url + "/")
    nav = page.get_by_role("navigation", name=tr("Main"))
    expect(nav.get_by_role("link", name=tr("Sign in"), exact=True)).to_be_visible()
    expect(page.locator("html")).to_have_attribute("lang", lang)

    assert page.problems == []
