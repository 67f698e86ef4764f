"""The workspace's queue in headless Chromium: several photos dropped or pasted at once become
one job each with their own progress, a result is enlarged with the zoom dialog, the finished
results download as one ZIP, recent jobs say when their files go and can be deleted now; the
pages fit a phone's screen. A cancelled job's page stops waiting; the price line follows the
chosen service and the balance's word its number."""

from __future__ import annotations

import base64
import io
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from removeany.catalog import prices
from removeany.context import build_context
from tests.conftest import eval_image
from tests.helpers import make_user
from tests.web.conftest import PASSWORD, both_languages, pattern
from tests.web.test_browser import JOB_TIMEOUT_MS, LiveServer, artifact
from tests.web.test_browser import page as page  # the Chromium fixture
from tests.web.test_browser import server as server  # the live-server fixture
from tests.web.test_pages import BATCH_CANCELLED, cancel_job, queued_job

pytestmark = pytest.mark.browser

PHONE = {"width": 375, "height": 740}
MIN_TARGET = 40
WHEN = r"\d{4}-\d\d-\d\d \d\d:\d\d UTC"  # how pages write a time (the `when` filter)
# Controls a finger must hit. Links inside running text are exempt (WCAG 2.5.8), and so are
# inputs drawn by their label (radio buttons, check boxes, hidden file inputs, the slider).
_SMALL_TARGETS = """(min) => {
  const small = [];
  const selector =
    'a[href], button, select, input:not([type=hidden]), label.choice, label.button';
  for (const node of document.querySelectorAll(selector)) {
    const box = node.getBoundingClientRect();
    const style = getComputedStyle(node);
    if (!box.width || !box.height || style.visibility === 'hidden') continue;
    if (box.bottom < 0 || node.closest('dialog:not([open])')) continue;
    if (node.matches('input[type=radio], input[type=checkbox], .file-input, .compare-range'))
      continue;
    if (node.tagName === 'A' && style.display === 'inline' && node.closest('p')) continue;
    if (box.height < min || box.width < min) {
      const text = node.innerText || node.value || node.getAttribute('aria-label') || '';
      const size = Math.round(box.width) + 'x' + Math.round(box.height);
      small.push(node.tagName.toLowerCase() + ' "' + text.trim().slice(0, 40) + '" ' + size);
    }
  }
  return small;
}"""


# Text against the solid background behind it: WCAG AA (4.5:1, or 3:1 for large text). Text
# over pictures (the comparison, the hero art) has its own dark label backgrounds.
_LOW_CONTRAST = """() => {
  const rgb = (value) => (value.match(/[\\d.]+/g) || []).map(Number);
  const lum = ([r, g, b]) => {
    const f = (c) => { c /= 255; return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  };
  const low = [];
  for (const node of document.querySelectorAll('body *')) {
    const own = [...node.childNodes].some(c => c.nodeType === 3 && c.textContent.trim());
    if (!own || node.closest('.visually-hidden, .compare, .hero-art, dialog:not([open])')) continue;
    const box = node.getBoundingClientRect();
    const style = getComputedStyle(node);
    if (!box.width || !box.height || style.visibility === 'hidden') continue;
    let back = null;
    for (let at = node; at && !back; at = at.parentElement) {
      const s = getComputedStyle(at);
      if (s.backgroundImage !== 'none' && !at.matches('.checker')) { back = 'image'; break; }
      const c = rgb(s.backgroundColor);
      if (c.length === 3 || (c.length === 4 && c[3] === 1)) back = c.slice(0, 3);
    }
    if (back === 'image') continue;
    back = back || [255, 255, 255];
    const fore = rgb(style.color).slice(0, 3);
    const [hi, lo] = [lum(fore), lum(back)].sort((a, b) => b - a);
    const ratio = (hi + 0.05) / (lo + 0.05);
    const size = parseFloat(style.fontSize);
    const large = size >= 24 || (size >= 18.66 && Number(style.fontWeight) >= 700);
    const text = node.textContent.trim().slice(0, 30);
    if (ratio < (large ? 3 : 4.5)) low.push(node.tagName + ' "' + text + '" ' + ratio.toFixed(2));
  }
  return low;
}"""


def check_contrast(page: Any) -> None:
    low = page.evaluate(_LOW_CONTRAST)
    assert low == [], f"{page.url}: text below WCAG AA contrast: {low}"


def check_phone_layout(page: Any) -> None:
    """No sideways scrolling, every control big enough to tap, text contrast AA."""
    check_contrast(page)
    wide = page.evaluate(
        """() => [...document.querySelectorAll('body *')]
            .filter(n => n.getBoundingClientRect().right > window.innerWidth + 1
                      && getComputedStyle(n).position !== 'fixed'
                      && !n.closest('.visually-hidden, .skip-link, dialog:not([open])'))
            .map(n => n.tagName + '.' + n.className).slice(0, 5)"""
    )
    assert wide == [], f"{page.url}: wider than the screen: {wide}"
    overflow = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
    assert overflow[0] <= overflow[1], f"{page.url} scrolls sideways: {overflow}"
    small = page.evaluate(_SMALL_TARGETS, MIN_TARGET)
    assert small == [], f"{page.url}: tap targets under {MIN_TARGET}px: {small}"


def _payload(paths: list[Path]) -> list[list[str]]:
    return [
        [base64.b64encode(p.read_bytes()).decode(), p.name, f"image/{_TYPES[p.suffix]}"]
        for p in paths
    ]


_TYPES = {".jpg": "jpeg", ".png": "png"}
# JavaScript: `files` ([base64, name, type] each) as a DataTransfer, as a desktop drag makes.
_TRANSFER = """
  const data = new DataTransfer();
  for (const [b64, name, type] of files) {
    const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    data.items.add(new File([bytes], name, { type }));
  }
"""


def drop_files(page: Any, selector: str, paths: list[Path]) -> None:
    """Drag files from "the desktop" onto an element."""
    page.evaluate(
        "([selector, files]) => {"
        + _TRANSFER
        + """
          const target = document.querySelector(selector);
          for (const kind of ["dragenter", "dragover", "drop"]) {
            target.dispatchEvent(
              new DragEvent(kind, { dataTransfer: data, bubbles: true, cancelable: true })
            );
          }
        }""",
        [selector, _payload(paths)],
    )


def paste_files(page: Any, paths: list[Path]) -> None:
    """Ctrl+V of copied images: a paste event whose clipboard holds the files."""
    page.evaluate(
        "(files) => {"
        + _TRANSFER
        + """
          document.dispatchEvent(
            new ClipboardEvent("paste", { clipboardData: data, bubbles: true, cancelable: true })
          );
        }""",
        _payload(paths),
    )


def _wait_queue(page: Any, count: int) -> None:
    from playwright.sync_api import expect

    items = page.locator("#queue-list .queue-item")
    expect(items).to_have_count(count)
    page.wait_for_function(
        """(count) => {
            const items = [...document.querySelectorAll('#queue-list .queue-item')];
            return items.length === count
                && items.every(li => ['succeeded', 'failed'].includes(li.dataset.state));
        }""",
        arg=count,
        timeout=JOB_TIMEOUT_MS,
    )
    states = items.evaluate_all("items => items.map(li => li.dataset.state + ': ' + li.innerText)")
    assert all(s.startswith("succeeded") for s in states), states


@both_languages
def test_queue_zoom_zip_and_phone_layout(
    server: LiveServer, page: Any, lang: str, tr: Callable[..., str]
) -> None:
    from playwright.sync_api import expect

    ctx = build_context(server.settings)
    try:
        make_user(ctx, "queue@example.com", credits=10)
    finally:
        ctx.close()
    first = eval_image("object", "davis16_dog_00030")
    second = eval_image("object", "davis16_camel_00045")
    third = eval_image("portrait", "davis16_breakdance_00008")
    backdrop = eval_image("clean", "cbsd68_101085")

    page.goto(server.url + "/login?next=/app")
    expect(page.locator("html")).to_have_attribute("lang", lang)
    page.get_by_label(tr("Email address")).fill("queue@example.com")
    page.get_by_label(tr("Password")).fill(PASSWORD)
    page.get_by_role("button", name=tr("Sign in")).click()
    expect(page).to_have_url(server.url + "/app")
    balance = page.locator(".credit-pill [data-balance]")
    expect(balance).to_have_text("10")

    # A red background for every photo of this drop.
    page.locator("#bg-color").fill("#ff0000")
    expect(page.get_by_label(tr("Solid colour"))).to_be_checked()

    # Two photos dropped at once: a card each, each with its own progress.
    drop_files(page, "#dropzone", [first, second])
    expect(page.locator("#queue-list .queue-item")).to_have_count(2)
    expect(page.locator("#queue-list .queue-item").first).to_contain_text(first.name)
    expect(page.locator("#queue-list [role=progressbar]").first).to_be_attached()
    _wait_queue(page, 2)
    expect(page.locator("#queue-summary")).to_have_text(
        tr("{done} of {total} photos finished", done=2, total=2)
    )
    expect(balance).to_have_text("8")
    # The stage shows the first photo's result.
    expect(page.get_by_role("heading", name=tr("Done: background removed"))).to_be_visible()
    expect(page.locator("#compare-slot .compare-after")).to_be_visible()
    page.screenshot(path=str(artifact("workspace-queue.png", lang)), full_page=True)

    # Zoom: open the second result, zoom with the buttons and the keyboard, close.
    enlarge = page.get_by_role("button", name=tr("Enlarge the result of {name}", name=second.name))
    enlarge.click()
    dialog = page.get_by_role("dialog", name=second.name)
    expect(dialog).to_be_visible()
    page.wait_for_function("() => document.querySelector('#zoom-image').complete")
    level = page.locator("#zoom-level")
    fit = int(level.inner_text().rstrip("%"))
    dialog.get_by_role("button", name=tr("Zoom in"), exact=True).click()
    zoomed = int(level.inner_text().rstrip("%"))
    assert zoomed > fit
    shown = page.locator("#zoom-image").evaluate("img => img.getBoundingClientRect().width")
    assert abs(shown - 854 * zoomed / 100) < 3, "the picture is drawn at the zoom level"
    page.keyboard.press("+")
    assert int(level.inner_text().rstrip("%")) > zoomed
    page.keyboard.press("-")
    page.keyboard.press("-")
    assert int(level.inner_text().rstrip("%")) < zoomed
    page.keyboard.press("0")
    assert int(level.inner_text().rstrip("%")) == fit
    page.screenshot(path=str(artifact("workspace-zoom.png", lang)))
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    expect(enlarge).to_be_focused()

    # Both results as one ZIP.
    with page.expect_download() as info:
        page.get_by_role("link", name=tr("Download all as ZIP")).click()
    download = info.value
    assert download.suggested_filename.startswith("removeany-results-")
    saved = artifact("workspace-results.zip", lang)
    download.save_as(str(saved))
    with zipfile.ZipFile(saved) as archive:
        names = archive.namelist()
        assert sorted(names) == sorted([f"{first.stem}.png", f"{second.stem}.png"])
        for name in names:
            with Image.open(io.BytesIO(archive.read(name))) as result:
                assert result.format == "PNG" and result.mode == "RGB"
                red, green, blue = result.getpixel((0, 0))  # type: ignore[misc]
                assert red > 200 and green < 60 and blue < 60, "the red background"

    # Ctrl+V of a copied photo adds a third card, this time on a background photo of one's own.
    page.get_by_label(tr("Background photo")).set_input_files(str(backdrop))
    expect(page.get_by_label(tr("A photo of your own"))).to_be_checked()
    paste_files(page, [third])
    _wait_queue(page, 3)
    expect(page.locator("#queue-summary")).to_have_text(
        tr("{done} of {total} photos finished", done=3, total=3)
    )
    expect(balance).to_have_text("7")
    third_item = page.locator("#queue-list .queue-item").nth(2)
    href = third_item.get_by_role("link", name=tr("Download"))
    composed = page.request.get(server.url + str(href.get_attribute("href")))
    with Image.open(io.BytesIO(composed.body())) as result:
        assert result.mode == "RGB", "the background photo fills the transparent parts"
        assert result.getpixel((0, 0)) != (255, 255, 255)

    # The queue fits a phone's screen too.
    page.set_viewport_size(PHONE)
    check_phone_layout(page)
    page.screenshot(path=str(artifact("phone-queue.png", lang)), full_page=True)
    page.set_viewport_size({"width": 1280, "height": 900})

    # Recent jobs: when each job's files go, and "Delete now".
    recent = page.locator("#job-list .job-item")
    expect(recent).to_have_count(3)
    expect(recent.first).to_contain_text(third.name)
    expect(recent.first).to_contain_text(
        pattern(tr("Files deleted automatically after {when}"), named=False, when=WHEN)
    )
    job_id = recent.first.get_attribute("data-job-id")
    page.once("dialog", lambda d: d.accept())
    recent.first.get_by_role("button", name=tr("Delete now")).click()
    expect(page.get_by_text(tr("The job's photo and result were deleted."))).to_be_visible()
    expect(page.locator(f'#job-list [data-job-id="{job_id}"]')).to_contain_text(
        pattern(tr("Files deleted {when}"), named=False, when=WHEN)
    )

    # A phone's screen: nothing sideways, every control big enough to tap.
    page.set_viewport_size(PHONE)
    for path in ("/app", f"/jobs/{recent.nth(1).get_attribute('data-job-id')}", "/"):
        page.goto(server.url + path)
        page.wait_for_load_state("load")
        check_phone_layout(page)
        name = "phone-" + (path.strip("/").split("/")[0] or "home")
        page.screenshot(path=str(artifact(f"{name}.png", lang)), full_page=True)

    assert page.problems == []


def _sign_in(server: LiveServer, page: Any, tr: Callable[..., str], email: str, to: str) -> None:
    from playwright.sync_api import expect

    page.goto(server.url + "/login?next=" + to)
    page.get_by_label(tr("Email address")).fill(email)
    page.get_by_label(tr("Password")).fill(PASSWORD)
    page.get_by_role("button", name=tr("Sign in")).click()
    expect(page).to_have_url(server.url + to)


@both_languages
def test_a_cancelled_job_page_stops_waiting(
    server: LiveServer, page: Any, lang: str, tr: Callable[..., str]
) -> None:
    """The job page follows a waiting job; once it is cancelled (its batch was), the page says
    why, its badge reads as a word, and it asks the server nothing more."""
    from playwright.sync_api import expect

    ctx = build_context(server.settings)
    try:
        job_id = queued_job(ctx, make_user(ctx, "wait@example.com").id)
        _sign_in(server, page, tr, "wait@example.com", f"/jobs/{job_id}")
        busy = page.locator("[data-job-poll]")
        expect(busy).to_contain_text(tr("Removing the background… This page updates by itself."))
        polls: list[str] = []
        page.on("request", lambda r: polls.append(r.url) if job_id in r.url else None)
        with page.expect_request(f"**/api/v1/jobs/{job_id}"):
            pass  # it polls while the job waits
        cancel_job(ctx, job_id)
    finally:
        ctx.close()
    expect(page.locator(".job-page .badge")).to_have_text(tr("Cancelled"))
    expect(page.locator(".job-page [role=status]")).to_have_text(tr(BATCH_CANCELLED))
    expect(busy).to_have_count(0)
    asked = len(polls)
    page.wait_for_timeout(4000)  # the poll's longest delay is 2 s
    assert len(polls) == asked, polls
    assert page.problems == []


@both_languages
def test_prices_and_credit_words_follow_the_page(
    server: LiveServer, page: Any, lang: str, tr: Callable[..., str]
) -> None:
    """The workspace's price line shows the chosen service's price from the catalogue, and the
    balance's word changes with the number ("1 credit", "2 credits") when app.js updates it."""
    from playwright.sync_api import expect

    ctx = build_context(server.settings)
    try:
        make_user(ctx, "count@example.com", credits=1)
        with ctx.db.transaction() as session:
            prices.set_price(session, "portrait", "full", 2, now=ctx.now(), admin_id=None)
    finally:
        ctx.close()
    _sign_in(server, page, tr, "count@example.com", "/app")
    pill = page.locator(".credit-pill")
    line = page.locator(".balance-line")
    expect(pill).to_have_text(f"1 {tr('credit')}")
    # The seed catalogue: 2 credits a result over 25 MP (the workspace keeps full resolution).
    prices_of = tr(", ").join(
        [
            tr("1 credit up to {limit}", limit="25 MP"),
            tr("{n} credits over {limit}", n=2, limit="25 MP"),
        ]
    )
    expect(line.locator("[data-services='remove_background']")).to_have_text(
        "· " + tr("per photo: {prices}", prices=prices_of)
    )
    expect(line.locator("[data-services='portrait']")).to_be_hidden()

    page.get_by_label(tr("Service"), exact=True).select_option("portrait")
    prices_of = tr(", ").join(
        [
            tr("1 credit up to {limit}", limit="0.25 MP"),
            tr("{n} credits over {limit}", n=2, limit="0.25 MP"),
        ]
    )
    expect(line.locator("[data-services='portrait']")).to_have_text(
        "· " + tr("per photo: {prices}", prices=prices_of)
    )
    expect(line.locator("[data-services='remove_background']")).to_be_hidden()

    page.evaluate("() => window.RemoveAny.showBalance(2)")
    expect(pill).to_have_text(f"2 {tr('credits')}")
    expect(line.locator("strong")).to_have_text(f"2 {tr('credits')}")
    page.evaluate("() => window.RemoveAny.showBalance(1)")
    expect(line.locator("strong")).to_have_text(f"1 {tr('credit')}")
    assert page.problems == []
