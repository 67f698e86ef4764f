"""The workspace's service chooser in headless Chromium: an ID photo (size and background
colour) and a watermark removal, each sent to /api/v1/jobs and charged; the job page names
the service."""

from __future__ import annotations

import io
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from removeany.context import build_context
from removeany.engine.models import fetch_model, get_model
from tests.conftest import REPO, eval_image
from tests.helpers import make_user
from tests.web.conftest import PASSWORD, both_languages
from tests.web.test_browser import JOB_TIMEOUT_MS, LiveServer, artifact
from tests.web.test_browser import page as page  # the Chromium fixture
from tests.web.test_browser import server as server  # the live-server fixture

sys.path.insert(0, str(REPO / "benchmarks" / "watermark"))
from synth import make_watermark

pytestmark = pytest.mark.browser


def _wait_result(page: Any) -> None:
    page.wait_for_selector(
        "#result:not([hidden]), #upload-error:not([hidden])", timeout=JOB_TIMEOUT_MS
    )
    error = page.locator("#upload-error")
    assert error.is_hidden(), f"the upload failed: {error.inner_text()}"


@both_languages
def test_id_photo_and_watermark_from_the_workspace(
    server: LiveServer,
    page: Any,
    tmp_path: Path,
    lang: str,
    tr: Callable[..., str],
    astronaut: Path,
) -> None:
    from playwright.sync_api import expect

    fetch_model(get_model("blazeface-short"), server.settings.model_dir)
    ctx = build_context(server.settings)
    try:
        make_user(ctx, "services@example.com", credits=10)
    finally:
        ctx.close()
    page.goto(server.url + "/login?next=/app")
    expect(page.locator("html")).to_have_attribute("lang", lang)
    page.get_by_label(tr("Email address")).fill("services@example.com")
    page.get_by_label(tr("Password")).fill(PASSWORD)
    page.get_by_role("button", name=tr("Sign in")).click()
    expect(page).to_have_url(server.url + "/app")
    balance = page.locator(".credit-pill [data-balance]")
    expect(balance).to_have_text("10")

    # ID photo: its own options replace the cut-out's.
    expect(page.get_by_label(tr("Crop to the subject"))).to_be_visible()
    page.get_by_label(tr("Service")).select_option("id_photo")
    expect(page.get_by_role("heading", name=tr("Make an ID photo"))).to_be_visible()
    expect(page.get_by_label(tr("Crop to the subject"))).to_be_hidden()
    page.get_by_label(tr("Photo size")).select_option("1inch")
    page.get_by_label(tr("Blue")).check()
    page.locator("#file-input").set_input_files(str(astronaut))
    _wait_result(page)
    expect(page.get_by_role("heading", name=tr("Done: ID photo ready"))).to_be_visible()
    expect(page.locator("#result-meta")).to_have_text(
        tr("{width} × {height} px · 1 credit charged", width=295, height=413)  # noqa: RUF001
    )
    expect(balance).to_have_text("9")
    page.screenshot(path=str(artifact("workspace-id-photo.png", lang)), full_page=True)
    with page.expect_download() as info:
        page.get_by_role("link", name=tr("Download {format}", format="JPG")).click()
    saved = tmp_path / "id.jpg"
    info.value.save_as(str(saved))
    with Image.open(saved) as photo:
        assert photo.format == "JPEG" and photo.size == (295, 413)
        assert photo.info["dpi"] == (300, 300)
        corner = np.asarray(photo.convert("RGB"))[3, 3].astype(int)
    assert np.abs(corner - np.array([67, 142, 219])).max() <= 6

    page.get_by_role("link", name=tr("Open result page")).click()
    expect(page.locator("[data-service]")).to_have_text(tr("ID photo"))
    expect(page.get_by_role("link", name=tr("Download {format}", format="JPG"))).to_be_visible()

    # Watermark removal with a mask: the result keeps the photo's size and format.
    with Image.open(eval_image("clean", "kodak_kodim05")) as im:
        clean = np.asarray(im.convert("RGB").resize((320, 240)))
    wm = make_watermark(np.random.default_rng(4), 240, 320, "text")
    marked = tmp_path / "marked.png"
    Image.fromarray(wm.apply(clean)).save(marked)
    mask = tmp_path / "mask.png"
    Image.fromarray((wm.region() * 255).astype(np.uint8)).save(mask)
    page.goto(server.url + "/app")
    page.get_by_label(tr("Service")).select_option("remove_watermark")
    expect(page.get_by_role("heading", name=tr("Remove a watermark"))).to_be_visible()
    page.get_by_label(tr("Mask (optional)")).set_input_files(str(mask))
    page.locator("#file-input").set_input_files(str(marked))
    _wait_result(page)
    expect(page.get_by_role("heading", name=tr("Done: watermark removed"))).to_be_visible()
    expect(balance).to_have_text("8")
    href = page.get_by_role("link", name=tr("Download {format}", format="PNG")).get_attribute(
        "href"
    )
    result = page.request.get(server.url + href)
    with Image.open(io.BytesIO(result.body())) as restored:
        assert restored.format == "PNG" and restored.size == (320, 240)
    assert page.problems == []
