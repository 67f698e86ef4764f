"""A batch from the browser: sign in, choose real photos plus a damaged file and a photo with no
subject, start the batch, watch batch.js move the progress bar to 100% from the server-sent
events, read why two files cost nothing, and download every result as one ZIP. The batches page
and the other signed-in pages fit a phone's width."""

from __future__ import annotations

import re
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from removeany.context import build_context
from tests.batches._images import photo_paths, plain_image
from tests.helpers import make_user
from tests.web.conftest import PASSWORD, both_languages, pattern
from tests.web.test_browser import JOB_TIMEOUT_MS, LiveServer, artifact
from tests.web.test_browser import page as page  # the Chromium fixture
from tests.web.test_browser import server as server  # the live-server fixture

pytestmark = pytest.mark.browser

NAME = "Browser batch"
NO_SUBJECT = "No foreground subject could be found; upload a photo with a clear subject."
DAMAGED = (
    "The image is damaged or truncated and cannot be decoded; upload the file again or export "
    "it anew."
)


@both_languages
def test_batch_from_the_browser(
    server: LiveServer, page: Any, tmp_path: Path, lang: str, tr: Callable[..., str]
) -> None:
    from playwright.sync_api import expect

    ctx = build_context(server.settings)
    try:
        make_user(ctx, "batch@example.com", credits=10)
    finally:
        ctx.close()
    photos = photo_paths(3)
    broken = tmp_path / "broken.png"
    broken.write_bytes(photos[0].read_bytes()[:4000])  # a PNG cut short: cannot be decoded
    flat = tmp_path / "flat.png"
    flat.write_bytes(plain_image())  # a real image with no subject: fails, and is refunded

    page.allow_english.add(NAME)
    page.goto(server.url + "/login?next=/batches")
    expect(page.locator("html")).to_have_attribute("lang", lang)
    page.get_by_label(tr("Email address")).fill("batch@example.com")
    page.get_by_label(tr("Password")).fill(PASSWORD)
    page.get_by_role("button", name=tr("Sign in")).click()
    expect(page).to_have_url(server.url + "/batches")
    nav = page.get_by_role("navigation", name=tr("Main"))
    expect(nav.get_by_role("link", name=tr("Batches"))).to_have_attribute("aria-current", "page")
    expect(page.get_by_role("heading", name=tr("Batches"), exact=True)).to_be_visible()
    # The seed catalogue: 1 credit a result up to 25 MP, 2 above (the default size is full).
    up_to = tr("1 credit up to {limit}", limit="25 MP")
    over = tr("{n} credits over {limit}", n=2, limit="25 MP")
    expect(page.locator("#batch-price")).to_have_text(
        tr("Price per image: {prices}.", prices=tr(", ").join([up_to, over]))
    )
    balance = page.locator(".credit-pill [data-balance]")
    expect(balance).to_have_text("10")
    # Each service shows its own options: an ID photo has a print size, no cut-out fields.
    service = page.get_by_label(tr("Service"), exact=True)
    service.select_option("id_photo")
    expect(page.locator("#batch-id-size")).to_be_visible()
    expect(page.locator("#batch-format")).to_be_hidden()
    expect(page.locator("#batch-size")).to_be_hidden()
    service.select_option("remove_background")
    expect(page.locator("#batch-format")).to_be_visible()
    expect(page.locator("#batch-id-size")).to_be_hidden()

    page.get_by_label(tr("Images or a ZIP")).set_input_files(
        [*map(str, photos), str(broken), str(flat)]
    )
    chosen = tr("{count} files chosen ({mb} MB)", count=5, mb="{mb}")
    expect(page.locator("#batch-chosen")).to_have_text(pattern(chosen, named=False))
    expect(page.locator("#batch-estimate")).to_have_text(
        tr(
            "{low} to {high} credits for {count} images, depending on the size of each result.",
            low=5,
            high=10,
            count=5,
        )
    )
    page.get_by_label(tr("Name (optional)")).fill(NAME)
    page.screenshot(path=str(artifact("batches-form.png", lang)), full_page=True)
    page.get_by_role("button", name=tr("Start batch")).click()
    expect(page).to_have_url(re.compile(re.escape(server.url) + r"/batches/[0-9a-f]{32}$"))
    expect(page.get_by_role("heading", name=NAME)).to_be_visible()

    progress = page.get_by_role("progressbar", name=tr("Progress"))
    expect(progress).to_have_attribute("max", "4")  # the damaged file is not an item
    page.wait_for_function(
        "() => document.getElementById('batch').dataset.finished === 'true'",
        timeout=JOB_TIMEOUT_MS,
    )
    root = page.locator("#batch")
    # batch.js followed the server-sent events (not a reload, not the polling fallback).
    expect(root).to_have_attribute("data-live", "sse")
    expect(root).to_have_attribute("data-status", "completed")
    assert progress.evaluate("p => [p.value, p.max]") == [4, 4]
    expect(page.locator("#batch-progress-text")).to_have_text(
        tr("{finished} of {total} files finished ({pct}%)", finished=4, total=4, pct=100)
    )
    expect(page.locator("#batch-status")).to_have_text(tr("Completed"))
    expect(page.locator("#batch-cancel")).to_be_hidden()
    expect(page.locator('[data-count="succeeded"]')).to_have_text("3")
    expect(page.locator('[data-count="failed"]')).to_have_text("1")
    expect(page.locator('[data-count="charged"]')).to_have_text("3")
    expect(balance).to_have_text("7")

    for photo in photos:
        row = page.locator("#batch-items tr", has_text=photo.name)
        expect(row.locator("[data-item-status]")).to_have_text(tr("Done"))
        expect(row.locator("[data-item-charged]")).to_have_text("1")
        download = re.compile("^" + re.escape(tr("Download")))
        expect(row.get_by_role("link", name=download)).to_be_visible()
    failed = page.locator("#batch-items tr", has_text="flat.png")
    expect(failed.locator("[data-item-status]")).to_have_text(tr("Failed"))
    expect(failed.locator("[data-item-note]")).to_have_text(
        f"{tr(NO_SUBJECT)} {tr('Refunded: you were not charged for this file.')}"
    )
    expect(failed.locator("[data-item-charged]")).to_have_text("0")
    skipped = page.locator("#batch-items tr", has_text="broken.png")
    expect(skipped).to_contain_text(tr("Skipped"))
    expect(skipped).to_contain_text(f"{tr(DAMAGED)} {tr('Not charged.')}")

    page.screenshot(path=str(artifact("batch-page.png", lang)), full_page=True)

    download_link = page.get_by_role("link", name=tr("Download all (ZIP)"))
    expect(download_link).to_be_visible()
    with page.expect_download() as info:
        download_link.click()
    saved = tmp_path / "results.zip"
    info.value.save_as(str(saved))
    assert info.value.suggested_filename == "Browserbatch-results.zip"
    with zipfile.ZipFile(saved) as zf:
        results = sorted(name for name in zf.namelist() if name != "NOT-INCLUDED.txt")
        assert results == sorted(f"{p.stem}.png" for p in photos)
        assert all(zf.read(name).startswith(b"\x89PNG") for name in results)
        # The failed and the skipped file are named in the note, in the page's language.
        note = zf.read("NOT-INCLUDED.txt").decode()
        assert note.startswith(tr("These files of the batch are not in this ZIP:"))
        assert "broken.png" in note

    # The list of batches shows it, finished.
    nav.get_by_role("link", name=tr("Batches")).click()
    listed = page.locator(".batch-table tbody tr", has_text=NAME)
    expect(listed).to_contain_text(tr("Completed"))
    expect(listed).to_contain_text(tr("{finished} of {total}", finished=4, total=4))
    assert page.problems == []


@both_languages
def test_batches_and_other_pages_fit_a_phone(
    server: LiveServer, page: Any, lang: str, tr: Callable[..., str]
) -> None:
    """On a 390 px phone no page scrolls sideways: each grid's single column may shrink below
    its content's widest line (`minmax(0, 1fr)`), as long lines wrap."""
    from playwright.sync_api import expect

    ctx = build_context(server.settings)
    try:
        make_user(ctx, "phone@example.com", credits=10)
    finally:
        ctx.close()
    page.allow_english.update({"Starter", "Standard", "Pro"})  # the credit packs' names
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(server.url + "/login?next=/batches")
    page.get_by_label(tr("Email address")).fill("phone@example.com")
    page.get_by_label(tr("Password")).fill(PASSWORD)
    page.get_by_role("button", name=tr("Sign in")).click()
    expect(page).to_have_url(server.url + "/batches")
    for path in ("/batches", "/app", "/app/watermark", "/credits", "/account/security", "/"):
        page.goto(server.url + path)
        page.wait_for_load_state("load")
        wide = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
        assert wide[0] <= wide[1], f"{path} scrolls sideways on a phone: {wide}"
    assert page.problems == []
