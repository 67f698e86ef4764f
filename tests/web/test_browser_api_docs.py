"""The API reference page in headless Chromium: it works from this site alone."""

from __future__ import annotations

from typing import Any

import pytest

from tests.web.test_browser import LiveServer
from tests.web.test_browser import page as page  # the Chromium fixture
from tests.web.test_browser import server as server  # the live-server fixture

pytestmark = pytest.mark.browser


def test_api_docs_run_only_this_sites_code(server: LiveServer, page: Any) -> None:
    """FastAPI's /api/docs ran the newest Swagger UI 5.x from cdn.jsdelivr.net, unpinned, on
    this origin (where a script can act as whoever is signed in), and told the CDN and
    fastapi.tiangolo.com about every visitor. The page now loads nothing from elsewhere,
    under the pages' Content-Security-Policy, and still shows every operation."""
    from playwright.sync_api import expect

    elsewhere: list[str] = []
    page.on(
        "request",
        lambda request: (
            None if request.url.startswith((server.url, "data:")) else elsewhere.append(request.url)
        ),
    )
    response = page.goto(f"{server.url}/api/docs")
    assert response is not None and response.status == 200
    assert "script-src 'self'" in response.headers["content-security-policy"]
    expect(page.locator(".opblock-summary-path", has_text="/api/v1/jobs").first).to_be_visible()
    page.locator(".opblock-summary-path", has_text="/api/v1/me").first.click()
    expect(page.locator(".opblock-body").first).to_be_visible()
    assert elsewhere == []
    assert page.problems == []
