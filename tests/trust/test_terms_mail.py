# ruff: noqa: RUF001  (Chinese text: full-width punctuation)
"""The email that tells people about new terms, and the way from it to accepting them: each
person is written to in their own language (`User.locale`), whoever publishes and from
whatever page; the summary of a built-in version is translated, an operator's stays as they
wrote it; the link opens the page where the new version is accepted, in that language.
Real app, real database (SQLite and PostgreSQL), outbox folder and a real SMTP server."""

from __future__ import annotations

import html
import re
from email import message_from_bytes, policy
from email.message import EmailMessage, Message

from fastapi.testclient import TestClient

from removeany.context import Context, build_context
from removeany.i18n import translate
from removeany.infra.settings import Settings
from removeany.legal import texts
from tests.mail.test_outbox import wait_until
from tests.smtp import Collect, free_port, start
from tests.trust.conftest import PASSWORD, body_of, mails
from tests.trust.test_moderation import make_admin
from tests.trust.test_terms import person_who_accepted, submit
from tests.web.test_pages import form_token, text_of

CJK = re.compile(r"[\u4e00-\u9fff]")
ZH_BROWSER = {"Accept-Language": "zh-CN,zh;q=0.9"}


def _notice(ctx: Context, to: str) -> EmailMessage:
    (found,) = [m for m in mails(ctx, to) if "RemoveAny" in str(m["Subject"])]
    return found


def _parsed(message: Message) -> EmailMessage:
    """A message as the SMTP server received it, read the way a mail program does."""
    parsed = message_from_bytes(message.as_bytes(), policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def test_an_admins_new_version_is_announced_in_each_persons_language(
    client: TestClient, ctx: Context
) -> None:
    admin = {"X-Api-Key": make_admin(ctx), **ZH_BROWSER}  # an admin reading the site in Chinese
    person_who_accepted(ctx, "li@example.com", locale="zh-CN", accepted=2)
    person_who_accepted(ctx, "ada@example.com", locale="en", accepted=2)
    person_who_accepted(
        ctx, "old@example.com", locale=None, accepted=2
    )  # made before languages were stored
    v2 = client.get("/api/v1/legal/current").json()
    body = {key: v2[key] for key in ("terms_en", "terms_zh", "privacy_en", "privacy_zh")}
    published = client.post(
        "/api/v1/admin/legal", json={"summary": "Retention is now 12 hours.", **body}, headers=admin
    )
    assert published.status_code == 201 and published.json()["version"] == 3

    zh = _notice(ctx, "li@example.com")
    assert zh["Subject"] == "RemoveAny 服务条款已更新（第 3 版）"
    text = body_of(zh)
    assert text.startswith("我们发布了 RemoveAny 服务条款和隐私政策第 3 版。")
    # The operator's summary as they wrote it, in a Chinese sentence.
    assert "更新内容：Retention is now 12 hours." in text
    assert "http://testserver/legal/accept?lang=zh-CN" in text
    assert "We have published" not in text and "What changed" not in text

    en = _notice(ctx, "ada@example.com")
    assert en["Subject"] == "RemoveAny terms updated (version 3)"
    text = body_of(en)
    assert "What changed: Retention is now 12 hours." in text
    assert "http://testserver/legal/accept?lang=en" in text
    assert not CJK.search(text + str(en["Subject"]))  # the admin's Chinese does not leak in

    # Nobody knows which language this person reads: both, English first.
    both = _notice(ctx, "old@example.com")
    assert "RemoveAny terms updated (version 3)" in str(both["Subject"])
    assert "RemoveAny 服务条款已更新（第 3 版）" in str(both["Subject"])
    text = body_of(both)
    assert text.index("What changed: Retention") < text.index("更新内容：Retention")
    assert "http://testserver/legal/accept\n" in text  # no language forced on them


def test_the_built_in_version_2_is_announced_in_each_persons_language_over_smtp(
    settings: Settings,
) -> None:
    """An installation still on the built-in version 1 starts the release with version 2:
    the emails it writes, as an SMTP server receives them."""
    port = free_port()
    smtp = settings.model_copy(update={"mail_backend": "smtp", "smtp_port": port})
    before = build_context(smtp)  # the release-1 database: accounts, no published rows
    person_who_accepted(before, "li@example.com", locale="zh-CN", accepted=1)
    person_who_accepted(before, "ada@example.com", locale="en", accepted=1)
    before.close()
    handler = Collect()
    controller = start(handler, port)
    try:
        started = build_context(smtp, migrate=True)  # `serve` or an operator command
        try:  # the sender delivers on its own thread after the commit
            wait_until(lambda: len(handler.messages) == 2)
        finally:
            started.close()
    finally:
        controller.stop()
    received = {str(m["To"]): _parsed(m) for m in handler.messages}
    assert set(received) == {"li@example.com", "ada@example.com"}

    zh = received["li@example.com"]
    assert zh["Subject"] == "RemoveAny 服务条款已更新（第 2 版）"
    text = str(zh.get_body(("plain",)).get_content())  # type: ignore[union-attr]
    summary_zh = translate(texts.VERSION_2_SUMMARY, "zh-CN")
    assert summary_zh != texts.VERSION_2_SUMMARY and "隐私政策" in summary_zh
    assert f"更新内容：{summary_zh}" in text
    assert texts.VERSION_2_SUMMARY not in text and "We have published" not in text

    en = received["ada@example.com"]
    assert en["Subject"] == "RemoveAny terms updated (version 2)"
    text = str(en.get_body(("plain",)).get_content())  # type: ignore[union-attr]
    assert f"What changed: {texts.VERSION_2_SUMMARY}" in text and not CJK.search(text)


def test_the_emailed_link_leads_to_accepting_the_new_version(
    client: TestClient, ctx: Context, settings: Settings
) -> None:
    key = person_who_accepted(ctx, "li@example.com", locale="zh-CN", accepted=1)
    build_context(settings, migrate=True).close()  # the release starts: version 2 published
    assert submit(client, key).json()["error"]["code"] == "terms_not_accepted"
    emailed = body_of(_notice(ctx, "li@example.com"))
    link = re.search(r"http://testserver(/legal/accept\S*)", emailed)
    assert link is not None
    # Signed out (an English browser): sign in first, then back to the link.
    to_login = client.get(link.group(1), follow_redirects=False)
    assert to_login.status_code == 303
    assert to_login.headers["location"].startswith("/login?next=/legal/accept")
    login_page = client.get(to_login.headers["location"]).text
    back_to = re.search(r'name="next" value="([^"]*)"', login_page)
    assert back_to is not None
    signed_in = client.post(
        "/login",
        data={
            "email": "li@example.com",
            "password": PASSWORD,
            "csrf_token": form_token(login_page),
            "next": html.unescape(back_to.group(1)),
        },
        follow_redirects=False,
    )
    assert signed_in.status_code == 303
    assert signed_in.headers["location"] == "/legal/accept?lang=zh-CN"
    page = client.get(signed_in.headers["location"])
    assert page.status_code == 200 and '<html lang="zh-CN">' in page.text
    shown = text_of(page.text)
    # What changed, in Chinese: the built-in summary is the software's, so it is translated.
    assert translate(texts.VERSION_2_SUMMARY, "zh-CN") in shown
    assert texts.VERSION_2_SUMMARY not in shown
    accepted = client.post(
        "/legal/accept",
        data={"version": "2", "csrf_token": form_token(page.text), "next": ""},
        follow_redirects=False,
    )
    assert accepted.status_code == 303
    assert submit(client, key).status_code == 202


def test_the_terms_page_offers_to_accept_them_to_whoever_has_not(
    client: TestClient, ctx: Context, settings: Settings
) -> None:
    """The site's banner is not shown on the legal pages: reading the new terms there must
    still lead to accepting them."""
    person_who_accepted(ctx, "ada@example.com", locale="en", accepted=1)
    build_context(settings, migrate=True).close()
    assert client.post(
        "/api/v1/auth/login", json={"email": "ada@example.com", "password": PASSWORD}
    ).is_success
    for page in ("/legal/terms", "/legal/privacy"):
        assert 'href="/legal/accept"' in client.get(page).text, page
    # Not on an old version, nor once accepted.
    assert 'href="/legal/accept"' not in client.get("/legal/terms?version=1").text
    form = client.get("/legal/accept").text
    assert client.post(
        "/legal/accept",
        data={"version": "2", "csrf_token": form_token(form), "next": ""},
        follow_redirects=False,
    ).is_redirect
    assert 'href="/legal/accept"' not in client.get("/legal/terms").text
