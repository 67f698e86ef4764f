"""The watermark editor (/app/watermark) in headless Chromium: choose a watermarked photo, see
the detected watermark drawn over it, paint an extra stroke, erase part of it, undo, then pay
for the removal and land on the job page; the job used the edited mask and cost its price."""

from __future__ import annotations

import base64
import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from numpy.typing import NDArray
from PIL import Image

from removeany.catalog.prices import price_for
from removeany.context import Context, build_context
from removeany.credits import service as ledger
from removeany.jobs import repository as jobs_repo
from removeany.jobs import service as jobs
from removeany.jobs.models import Job
from tests.api.test_watermark_detect import watermarked
from tests.helpers import make_user
from tests.web.conftest import PASSWORD, both_languages
from tests.web.test_browser import JOB_TIMEOUT_MS, LiveServer, artifact
from tests.web.test_browser import page as page  # the Chromium fixture
from tests.web.test_browser import server as server  # the live-server fixture

EMAIL = "editor@example.com"
# The mask canvas's pixels, as an RGBA PNG (a data: URL).
MASK_PIXELS = "() => document.getElementById('wm-mask').toDataURL('image/png')"


def _mask_on_page(page: Any) -> NDArray[np.bool_]:
    """Which canvas pixels are marked (alpha over half)."""
    url: str = page.evaluate(MASK_PIXELS)
    data = base64.b64decode(url.split(",", 1)[1])
    with Image.open(io.BytesIO(data)) as im:
        return np.asarray(im.getchannel("A")) > 127


def _drag(page: Any, box: dict[str, float], points: list[tuple[float, float]]) -> None:
    """Press the mouse at the first point (fractions of the canvas), move through the others,
    release."""

    def at(fx: float, fy: float) -> tuple[float, float]:
        return box["x"] + fx * box["width"], box["y"] + fy * box["height"]

    page.mouse.move(*at(*points[0]))
    page.mouse.down()
    for p in points[1:]:
        page.mouse.move(*at(*p), steps=8)
    page.mouse.up()


def _pixel(mask: NDArray[np.bool_], fx: float, fy: float) -> bool:
    h, w = mask.shape
    return bool(mask[int(fy * h), int(fx * w)])


def _latest_job(ctx: Context, user_id: int) -> Job:
    with ctx.db.transaction() as session:
        (job,) = jobs_repo.recent_for_user(session, user_id, limit=1)
        session.expunge(job)
        return job


@pytest.mark.browser
@both_languages
def test_correct_the_mask_and_remove_the_watermark(
    server: LiveServer, page: Any, tmp_path: Path, lang: str, tr: Callable[..., str]
) -> None:
    from playwright.sync_api import expect

    ctx = build_context(server.settings)
    try:
        user = make_user(ctx, EMAIL, credits=10)
        photo, mark = watermarked()
        with Image.open(io.BytesIO(photo)) as image:
            pixels = image.width * image.height
        with ctx.db.transaction() as session:
            price = price_for(session, "remove_watermark", "full", pixels).credits
    finally:
        ctx.close()
    marked = tmp_path / "marked.png"
    marked.write_bytes(photo)

    page.goto(server.url + "/login?next=/app")
    expect(page.locator("html")).to_have_attribute("lang", lang)
    page.get_by_label(tr("Email address")).fill(EMAIL)
    page.get_by_label(tr("Password")).fill(PASSWORD)
    page.get_by_role("button", name=tr("Sign in")).click()
    expect(page).to_have_url(server.url + "/app")
    balance = page.locator(".credit-pill [data-balance]")
    expect(balance).to_have_text("10")

    # The workspace's watermark option leads to the editor.
    page.get_by_label(tr("Service")).select_option("remove_watermark")
    page.get_by_role("link", name=tr("See and correct the watermark in the editor")).click()
    expect(page).to_have_url(server.url + "/app/watermark")
    expect(page.get_by_role("heading", name=tr("Watermark editor"))).to_be_visible()
    label = (
        tr("Remove watermark (1 credit)")
        if price == 1
        else tr("Remove watermark ({credits} credits)", credits=price)
    )
    # The price depends on the photo's size (the seed catalogue's 50MP price is 2 credits):
    # the button names it once the photo is chosen.
    expect(page.locator("#wm-submit")).to_have_text(tr("Remove watermark"))
    expect(page.locator("#wm-submit")).to_be_disabled()

    # Choose the photo: it is drawn, and the detected watermark appears over it in red.
    page.locator("#wm-file").set_input_files(str(marked))
    submit = page.get_by_role("button", name=label, exact=True)
    expect(submit).to_be_visible()
    expect(page.locator("#wm-status")).to_have_text(
        tr(
            "The watermark is marked in red. Paint over anything that was missed and erase "
            "anything that is not part of it."
        )
    )
    detected = _mask_on_page(page)
    assert detected.shape == mark.shape
    assert float((detected & mark).sum() / mark.sum()) >= 0.8
    red = page.evaluate(
        """() => {
            const c = document.getElementById('wm-mask');
            const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
            for (let i = 0; i < d.length; i += 4) {
                if (d[i + 3] > 127) return [d[i], d[i + 1], d[i + 2]];
            }
            return null;
        }"""
    )
    assert red == [255, 0, 0]
    photo_drawn = page.evaluate(
        """() => {
            const c = document.getElementById('wm-photo');
            const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
            let sum = 0;
            for (let i = 0; i < d.length; i += 4) sum += d[i] + d[i + 1] + d[i + 2];
            return sum;
        }"""
    )
    assert photo_drawn > 0
    assert not _pixel(detected, 0.15, 0.12) and not _pixel(detected, 0.3, 0.12)

    # Paint an extra stroke with the mouse, top left, away from the watermark.
    box = page.locator("#wm-mask").bounding_box()
    assert box is not None
    _drag(page, box, [(0.1, 0.12), (0.2, 0.12), (0.3, 0.12)])
    painted = _mask_on_page(page)
    assert _pixel(painted, 0.1, 0.12) and _pixel(painted, 0.2, 0.12) and _pixel(painted, 0.3, 0.12)
    assert painted.sum() > detected.sum()

    # Erase its middle with the eraser; undo brings it back (Ctrl+Z); erase it again.
    page.get_by_label(tr("Eraser: unmark")).check()
    page.get_by_label(tr("Brush size")).fill("40")
    _drag(page, box, [(0.2, 0.05), (0.2, 0.19)])
    erased = _mask_on_page(page)
    assert not _pixel(erased, 0.2, 0.12)
    assert _pixel(erased, 0.1, 0.12) and _pixel(erased, 0.3, 0.12)
    page.keyboard.press("Control+z")
    assert _pixel(_mask_on_page(page), 0.2, 0.12)
    page.get_by_role("button", name=tr("Undo"), exact=True).click()
    assert not _pixel(_mask_on_page(page), 0.3, 0.12)  # the brush stroke is undone too
    page.keyboard.press("b")  # the brush again, from the keyboard
    assert page.get_by_label(tr("Brush: mark the watermark")).is_checked()
    page.get_by_label(tr("Brush size")).fill("28")
    _drag(page, box, [(0.1, 0.12), (0.2, 0.12), (0.3, 0.12)])
    page.get_by_label(tr("Eraser: unmark")).check()
    page.get_by_label(tr("Brush size")).fill("40")
    _drag(page, box, [(0.2, 0.05), (0.2, 0.19)])
    edited = _mask_on_page(page)
    assert _pixel(edited, 0.1, 0.12) and not _pixel(edited, 0.2, 0.12)
    page.screenshot(path=str(artifact("watermark-editor.png", lang)), full_page=True)

    # Pay for the removal: the job page follows it and shows the result.
    expect(submit).to_be_enabled()
    submit.click()
    page.wait_for_url(server.url + "/jobs/*")
    download = page.get_by_role("link", name=tr("Download {format}", format="PNG"))
    expect(download).to_be_visible(timeout=JOB_TIMEOUT_MS)
    expect(page.locator("[data-service]")).to_have_text(tr("Watermark removal"))
    expect(balance).to_have_text(str(10 - price))
    result = page.request.get(server.url + str(download.get_attribute("href")))
    with Image.open(io.BytesIO(result.body())) as restored:
        assert restored.format == "PNG" and restored.size == (mark.shape[1], mark.shape[0])

    # The job used the edited mask, and cost the catalogue price.
    ctx = build_context(server.settings)
    try:
        job = _latest_job(ctx, user.id)
        assert job.service == "remove_watermark" and job.status == "succeeded"
        assert job.options["mask_png"] and not job.options.get("boxes")
        with Image.open(io.BytesIO(base64.b64decode(job.options["mask_png"]))) as im:
            used = np.asarray(im.convert("L")) > 127
        assert used.shape == mark.shape
        assert float((used & mark).sum() / mark.sum()) >= 0.8
        assert _pixel(used, 0.1, 0.12) and not _pixel(used, 0.2, 0.12)
        with ctx.db.transaction() as session:
            assert ledger.balance(session, user.id, ctx.now()).available == 10 - price
            assert ledger.charged_for(session, jobs.job_reference(job.id)) == price
    finally:
        ctx.close()
    assert page.problems == []


def test_the_editor_page_needs_a_session_and_shows_the_price(
    client: TestClient, ctx: Context
) -> None:
    away = client.get("/app/watermark", follow_redirects=False)
    assert away.status_code == 303
    assert away.headers["location"] == "/login?next=/app/watermark"
    make_user(ctx, EMAIL, credits=3)
    signed_in = client.post("/api/v1/auth/login", json={"email": EMAIL, "password": PASSWORD})
    assert signed_in.status_code == 200
    page = client.get("/app/watermark")
    assert page.status_code == 200
    html = page.text
    assert "Watermark editor" in html
    # The seed catalogue: the result keeps the photo's size, 2 credits over 25 MP.
    assert "a removal costs 1 credit up to 25 MP, 2 credits over 25 MP" in html
    assert "a removal costs 1 credit ·" not in html
    assert "Remove watermark (1 credit)" in html and "Remove watermark (2 credits)" in html
    assert 'id="editor-strings"' in html
    assert "/static/watermark_editor.js" in html
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert client.get("/static/watermark_editor.js").status_code == 200
    assert client.get("/static/watermark_editor.css").status_code == 200
    assert 'href="/app/watermark"' in client.get("/app").text


@pytest.mark.browser
@both_languages
def test_the_mask_can_be_corrected_with_the_keyboard_alone(
    server: LiveServer, page: Any, tmp_path: Path, lang: str, tr: Callable[..., str]
) -> None:
    """The brush needs a pointer: boxes typed in the photo's pixels mark and unmark instead,
    Enter in a box field applies it (it must not pay for the removal), a wrong box is
    announced, and the removal is sent with exactly the typed mask."""
    from playwright.sync_api import expect

    ctx = build_context(server.settings)
    try:
        user = make_user(ctx, EMAIL, credits=10)
    finally:
        ctx.close()
    photo, mark = watermarked()
    marked = tmp_path / "marked.png"
    marked.write_bytes(photo)
    rows, cols = np.nonzero(mark)
    top, left = int(rows.min()), int(cols.min())
    height, width = int(rows.max()) + 1 - top, int(cols.max()) + 1 - left

    page.goto(server.url + "/login?next=/app/watermark")
    page.get_by_label(tr("Email address")).focus()
    page.keyboard.type(EMAIL)
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    expect(page).to_have_url(server.url + "/app/watermark")
    page.locator("#wm-file").set_input_files(str(marked))
    found = tr(
        "The watermark is marked in red. Paint over anything that was missed and erase "
        "anything that is not part of it."
    )
    expect(page.locator("#wm-status")).to_have_text(found)
    size = tr("The photo is {width} × {height} px.")  # noqa: RUF001
    expect(page.locator("#wm-box-size")).to_have_text(
        size.format(width=mark.shape[1], height=mark.shape[0])
    )

    page.get_by_role("button", name=tr("Clear"), exact=True).focus()
    page.keyboard.press("Enter")
    assert not _mask_on_page(page).any()

    # Type the mark's box, field by field, and press Enter in the last one.
    page.get_by_label(tr("From the left")).focus()
    for value in (left, top, width):
        page.keyboard.type(str(value))
        page.keyboard.press("Tab")
    page.keyboard.type(str(height))
    page.keyboard.press("Enter")
    said = tr("Box marked: {width} × {height} px at {x}, {y}.")  # noqa: RUF001
    expect(page.locator("#wm-status")).to_have_text(
        said.format(width=width, height=height, x=left, y=top)
    )
    expect(page).to_have_url(server.url + "/app/watermark")  # nothing was paid for
    typed = _mask_on_page(page)
    assert typed.shape == mark.shape
    assert typed[top : top + height, left : left + width].all() and typed.sum() == width * height

    # The eraser from the keyboard (E), then a box that unmarks the box's left column.
    page.get_by_role("button", name=tr("Apply the box")).focus()
    page.keyboard.press("e")
    expect(page.get_by_label(tr("Eraser: unmark"))).to_be_checked()
    page.get_by_label(tr("Width")).fill("1")
    page.get_by_role("button", name=tr("Apply the box")).focus()
    page.keyboard.press("Enter")
    erased = _mask_on_page(page)
    assert not erased[top : top + height, left].any() and erased.sum() == (width - 1) * height

    # A box outside the photo is refused, said in an alert, and changes nothing.
    page.get_by_label(tr("Width")).fill(str(mark.shape[1]))
    page.get_by_role("button", name=tr("Apply the box")).focus()
    page.keyboard.press("Enter")
    alert = page.get_by_role("alert")
    expect(alert).to_have_text(
        tr("Give the box in whole pixels inside the photo: width and height at least 1.")
    )
    assert (_mask_on_page(page) == erased).all()

    page.locator("#wm-submit").focus()
    page.keyboard.press("Enter")
    page.wait_for_url(server.url + "/jobs/*")
    ctx = build_context(server.settings)
    try:
        job = _latest_job(ctx, user.id)
        with Image.open(io.BytesIO(base64.b64decode(job.options["mask_png"]))) as im:
            used = np.asarray(im.convert("L")) > 127
    finally:
        ctx.close()
    assert (used == erased).all()
    assert page.problems == []


@pytest.mark.browser
def test_the_editor_keys_act_only_in_the_editor(
    server: LiveServer, page: Any, tmp_path: Path, tr: Callable[..., str]
) -> None:
    """B, E, [ and ] are single keys: they act while the focus is in the editor (or nowhere,
    after a stroke on the photo), not on a link elsewhere on the page, where a stray key or
    speech input typing letters would change the tool unseen (WCAG 2.1.4)."""
    from playwright.sync_api import expect

    ctx = build_context(server.settings)
    try:
        make_user(ctx, EMAIL, credits=0)
    finally:
        ctx.close()
    photo, _ = watermarked()
    marked = tmp_path / "marked.png"
    marked.write_bytes(photo)
    page.goto(server.url + "/login?next=/app/watermark")
    page.get_by_label(tr("Email address")).fill(EMAIL)
    page.get_by_label(tr("Password")).fill(PASSWORD)
    page.get_by_role("button", name=tr("Sign in")).click()
    expect(page).to_have_url(server.url + "/app/watermark")
    page.locator("#wm-file").set_input_files(str(marked))
    eraser = page.get_by_label(tr("Eraser: unmark"))
    size = page.get_by_label(tr("Brush size"))
    expect(eraser).to_be_enabled()

    page.get_by_role("navigation", name=tr("Main")).get_by_role("link").first.focus()
    for key in ("e", "]", "]"):
        page.keyboard.press(key)
    expect(eraser).not_to_be_checked()
    expect(size).to_have_value("28")

    size.focus()
    page.keyboard.press("e")
    page.keyboard.press("]")
    expect(eraser).to_be_checked()
    expect(size).to_have_value("30")
    # After a stroke on the photo nothing has the focus: the keys still act.
    page.evaluate("() => document.activeElement.blur()")
    page.keyboard.press("b")
    expect(page.get_by_label(tr("Brush: mark the watermark"))).to_be_checked()
    assert page.problems == []
