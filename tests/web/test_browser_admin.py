"""The admin page in headless Chromium, in each language: an administrator finds a user,
restricts them with a reason (their API calls are refused) and sees the audit entry, grants
them credits, suspends background removal with a message (the banner appears on the site and
uploads are refused, free), then reactivates it (uploads work again)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from removeany import i18n
from removeany.accounts.models import User
from removeany.context import Context, build_context
from removeany.credits import service as ledger
from tests.conftest import eval_image
from tests.helpers import make_api_key, make_user
from tests.web.conftest import PASSWORD, both_languages
from tests.web.test_browser import JOB_TIMEOUT_MS, LiveServer, artifact
from tests.web.test_browser import page as page  # the Chromium fixture
from tests.web.test_browser import server as server  # the live-server fixture
from tests.web.test_pages import form_token, login, text_of

ADMIN = "root@example.com"
MEMBER = "member@example.com"
BYSTANDER = "bystander@example.com"
RESTRICT_REASON = "Uploads that break the terms"
GRANT_REASON = "Sorry for the outage"
SUSPEND_REASON = "Model upgrade"
SUSPEND_MESSAGE = "Back at 18:00 UTC after a model upgrade."
REACTIVATE_REASON = "Upgrade finished"


def _wait_upload(page: Any) -> None:
    page.wait_for_selector(
        "#result:not([hidden]), #upload-error:not([hidden])", timeout=JOB_TIMEOUT_MS
    )


def _make_admin(ctx: Context, credits: int) -> User:
    admin = make_user(ctx, ADMIN, credits=credits)
    with ctx.db.transaction() as session:
        row = session.get(User, admin.id)
        assert row is not None
        row.is_admin = True
    return admin


@pytest.mark.browser
@both_languages
def test_restrict_grant_suspend_and_reactivate(
    server: LiveServer, page: Any, lang: str, tr: Callable[..., str]
) -> None:
    from playwright.sync_api import expect

    ctx = build_context(server.settings)
    try:
        _make_admin(ctx, credits=5)
        member = make_user(ctx, MEMBER, credits=3)
        member_key = make_api_key(ctx, member)
        make_user(ctx, BYSTANDER, credits=0)
    finally:
        ctx.close()
    page.allow_english.update(
        {RESTRICT_REASON, GRANT_REASON, SUSPEND_REASON, SUSPEND_MESSAGE, REACTIVATE_REASON}
    )
    photo = eval_image("object", "alphamatting_GT03")
    api = httpx.Client(base_url=server.url, headers={"X-Api-Key": member_key})

    page.goto(server.url + "/login?next=/admin")
    expect(page.locator("html")).to_have_attribute("lang", lang)
    page.get_by_label(tr("Email address")).fill(ADMIN)
    page.get_by_label(tr("Password")).fill(PASSWORD)
    page.get_by_role("button", name=tr("Sign in")).click()
    expect(page).to_have_url(server.url + "/admin")
    expect(page.get_by_role("heading", name=tr("Administration"), level=1)).to_be_visible()
    nav = page.get_by_role("navigation", name=tr("Main"))
    expect(nav.get_by_role("link", name=tr("Admin"), exact=True)).to_have_attribute(
        "aria-current", "page"
    )
    users = page.locator("section[aria-labelledby='users-title'] tbody tr")
    audit = page.locator("section[aria-labelledby='audit-title'] tbody tr")
    services = page.locator("section[aria-labelledby='services-title']")
    notices = page.get_by_role("region", name=tr("Notices"))
    expect(notices).to_have_count(0)

    # --- Find the user -----------------------------------------------------------------------
    page.get_by_label(tr("Email or id")).fill("member")
    page.get_by_role("button", name=tr("Search"), exact=True).click()
    expect(page).to_have_url(server.url + "/admin?q=member")
    expect(users).to_have_count(1)
    row = users.filter(has_text=MEMBER)
    expect(row).to_have_count(1)
    expect(row.locator("[data-status]")).to_have_text(tr("Active"))

    # --- Restrict them, with a reason ----------------------------------------------------------
    row.get_by_label(tr("Action"), exact=True).select_option("restrict")
    row.get_by_label(tr("Reason"), exact=True).fill(RESTRICT_REASON)
    row.get_by_role("button", name=tr("Apply")).click()
    expect(page).to_have_url(server.url + "/admin?done=1")
    expect(page.get_by_role("status")).to_have_text(tr("Done."))
    row = users.filter(has_text=MEMBER)
    expect(row.locator("[data-status]")).to_have_attribute("data-status", "restricted")
    expect(row.locator("[data-status]")).to_have_text(f"{tr('Restricted')} — {RESTRICT_REASON}")
    expect(users.filter(has_text=BYSTANDER).locator("[data-status]")).to_have_text(tr("Active"))
    entry = audit.first
    expect(entry).to_have_attribute("data-action", "user.restrict")
    expect(entry.locator("td").nth(1)).to_have_text(ADMIN)
    expect(entry.locator("td").nth(2)).to_have_text(tr("Account restricted"))
    expect(entry.locator("td").nth(3)).to_have_text(MEMBER)
    expect(entry.locator("td").nth(4)).to_have_text(RESTRICT_REASON)
    refused = api.post(
        "/api/v1/jobs", files={"file": (photo.name, photo.read_bytes(), "image/png")}
    )
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "account_restricted"
    assert RESTRICT_REASON in refused.json()["error"]["message"]
    page.screenshot(path=str(artifact("admin-restricted.png", lang)), full_page=True)

    # --- Grant them credits, with a reason -----------------------------------------------------
    row.get_by_label(tr("Action"), exact=True).select_option("credits")
    row.get_by_label(tr("Credits"), exact=True).fill("25")
    row.get_by_label(tr("Reason"), exact=True).fill(GRANT_REASON)
    row.get_by_role("button", name=tr("Apply")).click()
    expect(page).to_have_url(server.url + "/admin?done=1")
    expect(page.get_by_role("status")).to_have_text(tr("Done."))
    entry = audit.first
    expect(entry).to_have_attribute("data-action", "credits.grant")
    expect(entry.locator("td").nth(2)).to_have_text(tr("Credits granted"))
    expect(entry.locator("td").nth(3)).to_have_text(MEMBER)
    expect(entry.locator("td").nth(4)).to_have_text(GRANT_REASON)
    expect(audit.nth(1)).to_have_attribute("data-action", "user.restrict")
    ctx = build_context(server.settings)
    try:
        with ctx.db.transaction() as session:
            assert ledger.balance(session, member.id, ctx.now()).available == 3 + 25
    finally:
        ctx.close()

    # --- Suspend background removal, with a message for everyone ------------------------------
    removal = services.locator("[data-service='remove_background']")
    expect(removal).to_have_count(0)  # never changed yet: active
    services.get_by_label(tr("Service"), exact=True).select_option("remove_background")
    services.get_by_label(tr("Status"), exact=True).select_option("suspended")
    services.get_by_label(tr("Message shown to users")).fill(SUSPEND_MESSAGE)
    services.get_by_label(tr("Reason (audit log)")).fill(SUSPEND_REASON)
    services.get_by_role("button", name=tr("Save")).click()
    expect(page).to_have_url(server.url + "/admin?done=1")
    by = f"({tr('set by {who}', who=ADMIN)})"  # the admin's address is read from the account
    expect(removal).to_have_text(
        f"{tr('Background removal')}: {tr('Suspended')} — {SUSPEND_MESSAGE} {by}"
    )
    entry = audit.first
    expect(entry).to_have_attribute("data-action", "service.suspended")
    expect(entry.locator("td").nth(2)).to_have_text(tr("Service suspended"))
    expect(entry.locator("td").nth(3)).to_have_text(tr("Background removal"))
    expect(entry.locator("td").nth(4)).to_have_text(SUSPEND_REASON)

    banner = tr(
        "{name} is temporarily suspended: {message}",
        name=tr("Background removal"),
        message=SUSPEND_MESSAGE,
    )
    expect(notices).to_have_text(banner)
    nav.get_by_role("link", name=tr("Workspace")).click()
    expect(page).to_have_url(server.url + "/app")
    expect(notices).to_have_text(banner)
    page.screenshot(path=str(artifact("service-suspended-banner.png", lang)), full_page=True)
    # An upload is refused, and costs nothing; the refusal quotes the operator's message in
    # every language (the Chinese page showed a general sentence without it).
    balance = page.locator(".credit-pill [data-balance]")
    expect(balance).to_have_text("5")
    page.locator("#file-input").set_input_files(str(photo))
    _wait_upload(page)
    expect(page.locator("#upload-error")).to_contain_text(
        tr(i18n.ERROR_FORMS["service_suspended"], message=SUSPEND_MESSAGE)
    )
    expect(balance).to_have_text("5")

    # --- Reactivate it -------------------------------------------------------------------------
    nav.get_by_role("link", name=tr("Admin"), exact=True).click()
    services.get_by_label(tr("Status"), exact=True).select_option("active")
    services.get_by_label(tr("Message shown to users")).fill("")
    services.get_by_label(tr("Reason (audit log)")).fill(REACTIVATE_REASON)
    services.get_by_role("button", name=tr("Save")).click()
    expect(page).to_have_url(server.url + "/admin?done=1")
    expect(removal).to_have_text(f"{tr('Background removal')}: {tr('Active')} {by}")
    expect(notices).to_have_count(0)
    entry = audit.first
    expect(entry).to_have_attribute("data-action", "service.active")
    expect(entry.locator("td").nth(2)).to_have_text(tr("Service active again"))
    expect(entry.locator("td").nth(4)).to_have_text(REACTIVATE_REASON)
    expect(audit.nth(1)).to_have_attribute("data-action", "service.suspended")

    # Uploads work again.
    nav.get_by_role("link", name=tr("Workspace")).click()
    expect(notices).to_have_count(0)
    page.locator("#file-input").set_input_files(str(photo))
    _wait_upload(page)
    error = page.locator("#upload-error")
    assert error.is_hidden(), f"the upload failed: {error.inner_text()}"
    expect(page.get_by_role("heading", name=tr("Done: background removed"))).to_be_visible()
    expect(balance).to_have_text("4")
    api.close()
    # The refused upload answered 503 (the browser logs that); nothing else went wrong.
    assert [p for p in page.problems if "status of 503 " not in p] == []


def test_the_admin_page_and_the_banner_speak_chinese(client: TestClient, ctx: Context) -> None:
    """Without a browser: statuses, audit actions and the service banner are translated."""
    _make_admin(ctx, credits=0)
    member = make_user(ctx, MEMBER)
    login(client, ADMIN)
    token = form_token(client.get("/admin?lang=zh-CN").text)
    restricted = client.post(
        f"/admin/users/{member.id}",
        data={"action": "restrict", "reason": RESTRICT_REASON, "csrf_token": token},
        follow_redirects=False,
    )
    assert restricted.status_code == 303
    suspended = client.post(
        "/admin/services",
        data={
            "service": "remove_background",
            "status": "suspended",
            "message": SUSPEND_MESSAGE,
            "reason": SUSPEND_REASON,
            "csrf_token": token,
        },
        follow_redirects=False,
    )
    assert suspended.status_code == 303
    page = client.get(suspended.headers["location"]).text
    text = text_of(page)
    assert "已完成。" in text
    assert f"受限 — {RESTRICT_REASON}" in text
    assert f"抠图去背景: 已暂停 — {SUSPEND_MESSAGE}" in text
    assert "账户已受限" in text and "服务已暂停" in text
    assert "user.restrict" not in text and "service remove_background" not in text
    banner = f"抠图去背景暂时停用：{SUSPEND_MESSAGE}"  # noqa: RUF001
    assert banner in text_of(client.get("/app").text)
    english = text_of(client.get("/app?lang=en").text)
    assert f"Background removal is temporarily suspended: {SUSPEND_MESSAGE}" in english
    # The audit log names a published version and an announcement in the page's language
    # (it showed "terms v3" and "announcement 1" on the Chinese page).
    for form, path in (
        ({"message": "新模型下周上线", "level": "info"}, "/admin/announcements"),
        (
            {
                "summary": "明确保留期限",
                **dict.fromkeys(
                    ("terms_en", "terms_zh", "privacy_en", "privacy_zh"),
                    "## 1. Retention\n" + "Photos are deleted after a day. " * 10,
                ),
            },
            "/admin/terms",
        ),
    ):
        sent = client.post(path, data={**form, "csrf_token": token}, follow_redirects=False)
        assert sent.status_code == 303, text_of(sent.text)
    audit = text_of(client.get("/admin?lang=zh-CN").text.split('id="audit-title"', 1)[1])
    assert "公告 1" in audit and "条款第 3 版" in audit
    assert "announcement 1" not in audit and "terms v3" not in audit
