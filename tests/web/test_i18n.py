# ruff: noqa: RUF001  (Chinese text with full-width punctuation)
"""English and Simplified Chinese across the web experience: the catalogue covers every string,
the browser's language and the switch choose the language, emails follow the recipient's
language, and errors on pages are translated (JSON API errors stay English)."""

from __future__ import annotations

import html
import importlib.util
import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient
from jinja2 import Environment

from removeany import i18n
from removeany.accounts import repository as accounts_repo
from removeany.context import Context
from removeany.engine.errors import ImageError
from tests.conftest import REPO, eval_image
from tests.helpers import make_user
from tests.web import test_browser
from tests.web.conftest import PASSWORD, outbox_messages, verification_link
from tests.web.test_browser import JOB_TIMEOUT_MS, LiveServer
from tests.web.test_pages import form_token, login, register, text_of

live_server = test_browser.server  # test_browser's live-server fixture
ZH = {"Accept-Language": "zh-CN,zh;q=0.9"}
EN = {"Accept-Language": "en-US,en;q=0.9"}


def _extractor() -> ModuleType:
    path = REPO / "scripts" / "extract_strings.py"
    spec = importlib.util.spec_from_file_location("extract_strings", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("extract_strings", module)
    spec.loader.exec_module(module)
    return module


extract_strings = _extractor()


def _body(message: Any) -> str:
    part = message.get_body(("plain",))
    assert part is not None
    text: str = part.get_content()
    return text


# --- the catalogue ---------------------------------------------------------------------------


def test_every_string_has_a_chinese_translation() -> None:
    """Fails when a page, template or email gains a t("...") string without a zh-CN entry:
    run `scripts/extract_strings.py --update` and fill in the new entries."""
    found = extract_strings.extract()
    catalogue = extract_strings.load_catalogue("zh-CN")
    assert len(found.strings) > 300  # the extractor really reads the templates and code
    missing = extract_strings.missing(found.strings, catalogue)
    assert missing == [], "strings without a zh-CN translation:\n" + "\n".join(
        f"  {text!r} ({found.strings[text][0]})" for text in missing
    )
    wrong = [
        text
        for text in found.strings
        if i18n.placeholders(catalogue[text]) != i18n.placeholders(text)
    ]
    assert wrong == [], f"translations that lose or invent {{placeholders}}: {wrong}"
    # Error patterns may leave out a placeholder (a plural "s") but never invent one.
    invented = [k for k, v in catalogue.items() if i18n.placeholders(v) - i18n.placeholders(k)]
    assert invented == []


def test_every_t_call_can_be_followed() -> None:
    """A t(expression) the extractor cannot follow would ship untranslated: use a literal, a
    module-level constant or table, or N_("...") where the text is written."""
    assert extract_strings.extract().dynamic == []


def test_the_extractor_notices_new_strings(tmp_path: Path) -> None:
    found = extract_strings.Found()
    page = tmp_path / "new.html"
    page.write_text("{{ t(\"A brand new heading\") }} {{ t('Second', n=1) }} {{ t(name) }}")
    code = tmp_path / "new.py"
    code.write_text(
        'LABELS = {"a": "Alpha label", "b": N_("Beta label")}\n'
        'def f(k):\n    return t("Shown {n}", n=1) + t(LABELS.get(k, k))\n'
        "def g():\n    return [t(v) for _, v in LABELS.items()]\n"
        'def h(x):\n    raise Oops(f"Value {x} is wrong.")\n'
    )
    extract_strings.scan_template(page, found, Environment(), where="new.html")
    extract_strings.scan_python(code, found, where="new.py")
    assert set(found.strings) == {
        "A brand new heading",
        "Second",
        "Shown {n}",
        "Alpha label",
        "Beta label",
    }
    assert found.dynamic == ["new.html:1: t() of an expression"]
    assert set(found.errors) == {"Value {x} is wrong."}
    catalogue = {"Second": "第二", "Shown {n}": ""}  # an empty entry is still missing
    assert extract_strings.missing(found.strings, catalogue) == [
        "A brand new heading",
        "Alpha label",
        "Beta label",
        "Shown {n}",
    ]


def test_the_extractor_finds_both_forms_of_a_count(tmp_path: Path) -> None:
    found = extract_strings.Found()
    page = tmp_path / "count.html"
    page.write_text('{{ tn("1 photo", "{n} photos", count) }} {{ tn(one, "{n} files", n) }}')
    code = tmp_path / "count.py"
    code.write_text('def f(n):\n    return tn("One key", "{n} keys", n)\n')
    extract_strings.scan_template(page, found, Environment(), where="count.html")
    extract_strings.scan_python(code, found, where="count.py")
    assert set(found.strings) == {"1 photo", "{n} photos", "{n} files", "One key", "{n} keys"}
    assert found.dynamic == ["count.html:1: tn() of an expression"]


def test_tn_picks_the_form_that_fits_the_count() -> None:
    assert i18n.tn("1 credit", "{n} credits", 1) == "1 credit"
    assert [i18n.tn("1 credit", "{n} credits", n) for n in (0, 2)] == ["0 credits", "2 credits"]
    assert i18n.tn("One {what}", "{n} {what}s", 1, what="key") == "One key"
    with i18n.use("zh-CN"):  # no plural in Chinese: both forms read the same
        assert i18n.tn("1 credit", "{n} credits", 1) == "1 积分"
        assert i18n.tn("1 credit", "{n} credits", 5) == "5 积分"


def test_a_short_pattern_does_not_swallow_a_sentence() -> None:
    """Placeholders match anything: "{finished} of {total}" translates "3 of 5", not a whole
    sentence that happens to contain " of " (which came back with that word alone changed)."""
    assert i18n.translate_message("3 of 5", "zh-CN") == "3/5"
    sentence = "Choose one of the sizes the page lists, then send the photo again."
    assert i18n.translate_message(sentence, "zh-CN") is None
    assert i18n.error_text(sentence) == sentence  # English: untouched in any case


def test_catalogue_is_package_data() -> None:
    pyproject = (REPO / "pyproject.toml").read_text()
    assert '"locales/*.json"' in pyproject
    data = json.loads(i18n.catalogue_path("zh-CN").read_text(encoding="utf-8"))
    assert data["Sign in"] == "登录"


# --- choosing the language -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "cookie", "expected"),
    [
        (None, None, "en"),
        ("", None, "en"),
        ("zh-CN,zh;q=0.9", None, "zh-CN"),
        ("zh", None, "zh-CN"),
        ("zh-TW,zh;q=0.8,en;q=0.5", None, "zh-CN"),
        ("en-US,en;q=0.9,zh-CN;q=0.8", None, "en"),
        ("fr-FR,fr;q=0.9,zh-CN;q=0.5,en;q=0.4", None, "zh-CN"),
        ("en;q=0.2,zh;q=0.7", None, "zh-CN"),
        ("zh;q=0,en", None, "en"),
        ("de, fr", None, "en"),
        ("*", None, "en"),
        ("zh-CN;q=bogus,en", None, "en"),
        ("en", "zh-CN", "zh-CN"),
        ("zh-CN", "en", "en"),
        ("zh-CN", "klingon", "zh-CN"),
    ],
)
def test_negotiate(header: str | None, cookie: str | None, expected: str) -> None:
    assert i18n.negotiate(header, cookie) == expected


def test_normalize() -> None:
    assert i18n.normalize("zh-cn") == "zh-CN"
    assert i18n.normalize("zh_CN") == "zh-CN"
    assert i18n.normalize("EN") == "en"
    assert i18n.normalize("zh") is None
    assert i18n.normalize("fr") is None
    assert i18n.normalize(None) is None


def test_t_outside_a_request_is_english_and_use_switches() -> None:
    assert i18n.t("Sign in") == "Sign in"
    with i18n.use("zh-CN"):
        assert i18n.t("Sign in") == "登录"
        assert i18n.t("Your balance is {credits} credits.", credits=7) == "您的余额为 7 积分。"
        with i18n.use(None):  # None keeps the surrounding language
            assert i18n.t("Sign in") == "登录"
        assert i18n.t("A text nobody translated") == "A text nobody translated"
    assert i18n.current() == "en"


def test_error_text() -> None:
    insufficient = (
        "This needs 3 credits and your balance is 1. Buy more credits on the Credits page "
        "(/credits) or wait for your free allowance."
    )
    with i18n.use("zh-CN"):
        # The exact message, or a {placeholder} entry that matches it.
        assert i18n.error_text("Email or password is wrong.") == "邮箱或密码错误。"
        assert i18n.error_text(insufficient) == (
            "此操作需要 3 积分，您的余额为 1。请在“积分”页面（/credits）购买更多积分，"
            "或等待免费额度发放。"
        )
        assert i18n.error_text("Choose a password of at least 8 characters.") == (
            "密码至少需要 8 个字符。"
        )
        # Otherwise by the error's code.
        for code in (
            "file_too_large",
            "unsupported_format",
            "corrupt_image",
            "too_many_pixels",
            "unknown_foreground",
        ):
            shown = i18n.error_text(ImageError(code, "Some new English wording."))  # type: ignore[arg-type]
            assert shown == i18n.t(i18n.ERROR_MESSAGES[code]) and re.search(
                r"[\u4e00-\u9fff]", shown
            )
        assert i18n.error_text("Something unforeseen.", "terms_not_accepted") == (
            "使用服务前，请先接受当前的服务条款和隐私政策。"
        )
        # Already translated, or unknown: shown as it is.
        assert i18n.error_text("邮箱或密码错误。", "invalid_credentials") == "邮箱或密码错误。"
        assert i18n.error_text("Something unforeseen.") == "Something unforeseen."
    assert i18n.error_text("Email or password is wrong.") == "Email or password is wrong."


# --- pages -----------------------------------------------------------------------------------


def test_pages_are_english_by_default(client: TestClient) -> None:
    home = client.get("/")
    assert '<html lang="en">' in home.text and "Sign up free" in home.text
    assert "免费注册" not in home.text
    assert "lang" not in client.cookies  # nothing chosen, nothing remembered
    assert '<html lang="en">' in client.get("/register", headers=EN).text


def test_pages_follow_accept_language(client: TestClient) -> None:
    client.headers.update(ZH)
    home = client.get("/")
    assert '<html lang="zh-CN">' in home.text
    text = text_of(home.text)
    assert "免费注册" in text and "为任意照片一键去除背景。" in text and "登录" in text
    assert "Sign up free" not in text
    register_html = client.get("/register").text
    register_page = text_of(register_html)
    assert "注册账户" in register_page and "邮箱地址" in register_page
    # Links inside a translated sentence stay links, in the sentence's order.
    assert (
        '创建账户即表示您同意<a href="/legal/terms">服务条款</a>和'
        '<a href="/legal/privacy">隐私政策</a>。'
    ) in register_html
    login_page = client.get("/login").text
    assert "忘记密码？" in text_of(login_page)
    # The language switch is in the footer, each name in its own language.
    assert re.search(r'<nav class="language-switch" aria-label="语言">', login_page)
    assert 'href="/login?lang=en" lang="en" hreflang="en"' in login_page
    assert 'lang="zh-CN" hreflang="zh-CN" aria-current="true">简体中文</a>' in login_page
    # Strings for the page scripts are translated on the server too.
    make_user(client.app.state.ctx, "ada@example.com")  # type: ignore[attr-defined]
    login(client, "ada@example.com")
    workspace = client.get("/app").text
    found = re.search(r'<script type="application/json" id="ui-strings">(.*?)</script>', workspace)
    assert found
    strings = json.loads(html.unescape(found.group(1)))
    assert strings["running"] == "正在去除背景……"
    assert strings["status"]["succeeded"] == "已完成"
    assert strings["errors"]["insufficient_credits"].startswith("积分不足")
    # In English the API's own (more precise) messages are shown: no table needed.
    english = client.get("/app?lang=en").text
    assert '"errors": {}' in english


def test_switch_sets_the_cookie_and_overrides_the_header(client: TestClient) -> None:
    client.headers.update(EN)
    switched = client.get("/login?next=/app&lang=zh-CN")
    assert '<html lang="zh-CN">' in switched.text
    header = next(h for h in switched.headers.get_list("set-cookie") if h.startswith("lang="))
    assert header.startswith("lang=zh-CN;") and "Path=/" in header and "SameSite=Lax" in header
    assert "Max-Age=31536000" in header
    # Other query parameters survive in the switch's links.
    assert 'href="/login?next=%2Fapp&amp;lang=en"' in switched.text
    # The cookie now wins over the browser's English.
    assert '<html lang="zh-CN">' in client.get("/").text
    assert '<html lang="zh-CN">' in client.get("/register").text
    # Switching back.
    back = client.get("/?lang=en")
    assert '<html lang="en">' in back.text and client.cookies.get("lang") == "en"
    assert '<html lang="en">' in client.get("/", headers=ZH).text
    # An unsupported choice changes nothing.
    other = client.get("/?lang=fr")
    assert "lang=" not in other.headers.get("set-cookie", "")
    assert '<html lang="en">' in other.text


def test_switch_links_stay_on_this_site(client: TestClient) -> None:
    """`https://site//evil.example/x` is answered by the 404 page: its language links once
    read `//evil.example/x?lang=zh-CN`, a link (scheme-relative) to another site."""
    for path, expected in (
        ("//evil.example/x", "/evil.example/x"),
        ("///evil.example", "/evil.example"),
    ):
        page = client.get(f"http://testserver{path}", headers={"Accept": "text/html"})
        assert page.status_code == 404
        links = re.findall(r'href="([^"]*lang=[^"]*)"', page.text)
        assert links, page.text
        for link in links:
            target = urlsplit(html.unescape(link))
            assert not target.netloc and target.path.startswith("/"), link
            assert not target.path.startswith(("//", "/\\")), link
            assert target.path == expected, link


def test_switch_while_signed_in_changes_the_email_language(
    client: TestClient, ctx: Context
) -> None:
    user = make_user(ctx, "ada@example.com")
    login(client, "ada@example.com")
    client.get("/app?lang=zh-CN")
    with ctx.db.transaction() as session:
        stored = accounts_repo.user_by_id(session, user.id)
        assert stored is not None and stored.locale == "zh-CN"
    client.get("/app")  # no switch: nothing written
    client.get("/app?lang=en")
    with ctx.db.transaction() as session:
        stored = accounts_repo.user_by_id(session, user.id)
        assert stored is not None and stored.locale == "en"


def test_legal_pages_follow_the_site_language(client: TestClient) -> None:
    zh = client.get("/legal/terms", headers=ZH)
    assert "<h1>服务条款</h1>" in zh.text and '<article class="card legal" lang="zh-CN">' in zh.text
    assert "本条款适用于您对" in zh.text
    en = client.get("/legal/privacy", headers=EN)
    assert "<h1>Privacy Policy</h1>" in en.text and 'lang="en"' in en.text
    # Older links with ?lang=zh show the Chinese text without switching the site.
    old = client.get("/legal/terms?lang=zh", headers=EN)
    assert "<h1>服务条款</h1>" in old.text and '<html lang="en">' in old.text
    assert "lang" not in client.cookies
    # The document's language links are the site's switch.
    assert 'href="/legal/terms?version=2&amp;lang=zh-CN"' in old.text
    switched = client.get("/legal/terms?version=2&lang=zh-CN", headers=EN)
    assert '<html lang="zh-CN">' in switched.text and client.cookies.get("lang") == "zh-CN"


def test_errors_on_pages_are_translated(client: TestClient, ctx: Context) -> None:
    client.headers.update(ZH)
    make_user(ctx, "ada@example.com")
    token = form_token(client.get("/login").text)
    wrong = client.post(
        "/login", data={"email": "ada@example.com", "password": "not it!", "csrf_token": token}
    )
    assert wrong.status_code == 401 and "邮箱或密码错误。" in wrong.text
    assert "Email or password is wrong." not in wrong.text

    forged = client.post("/login", data={"email": "ada@example.com", "password": PASSWORD})
    assert forged.status_code == 403 and "表单已过期或来自其他网站。" in forged.text

    short = register(client, "lin@example.com", "short")
    assert "密码至少需要 8 个字符。" in short
    # A taken address gets the page a new one would (sign-up does not tell who has an
    # account); its owner gets an email, in the language they use.
    taken = register(client, "ada@example.com")
    assert "请查收邮件" in taken and "该邮箱已注册。" not in taken
    (notice,) = outbox_messages(ctx.settings.outbox_dir)
    assert notice["To"] == "ada@example.com"
    assert notice["Subject"] == "有人尝试用您的邮箱地址注册"

    bad_link = client.get("/verify?token=nonsense")
    assert bad_link.status_code == 400 and "此验证链接无效" in bad_link.text
    assert "此验证链接不完整" in client.get("/verify").text

    # The JSON API answers in English whatever the browser's language: clients match on the
    # code, and one text is quoted in logs and support requests.
    api = client.post(
        "/api/v1/auth/login", json={"email": "ada@example.com", "password": "not it!"}
    )
    assert api.status_code == 401
    assert api.json()["error"] == {
        "code": "invalid_credentials",
        "message": "Email or password is wrong.",
    }


# --- emails ----------------------------------------------------------------------------------


def test_registration_email_in_chinese(client: TestClient, ctx: Context) -> None:
    client.headers.update(ZH)
    page = register(client, "li@example.com")
    assert "请查收邮件" in text_of(page) and "li@example.com" in page
    (message,) = outbox_messages(ctx.settings.outbox_dir)
    assert message["Subject"] == "验证您的 RemoveAny 邮箱地址"
    body = _body(message)
    assert body.startswith("欢迎使用 RemoveAny！")
    assert "请打开以下链接验证您的邮箱地址，并领取免费积分" in body
    assert "该链接 3 天内有效。" in body

    # The link survives the encoding and works.
    link = urlsplit(verification_link(ctx.settings.outbox_dir, "li@example.com"))
    verified = client.get(f"{link.path}?{link.query}")
    assert "邮箱验证成功" in verified.text
    assert "您的余额为 10 积分。" in text_of(verified.text)

    # The language is stored: a later email follows it, even from an English browser.
    with ctx.db.transaction() as session:
        user = accounts_repo.user_by_email(session, "li@example.com")
        assert user is not None and user.locale == "zh-CN"
    client.headers.update(EN)
    reset = client.post(
        "/forgot-password",
        data={
            "email": "li@example.com",
            "csrf_token": form_token(client.get("/forgot-password").text),
        },
    )
    assert reset.status_code == 200 and '<html lang="en">' in reset.text
    latest = outbox_messages(ctx.settings.outbox_dir)[-1]
    assert latest["Subject"] == "重置您的 RemoveAny 密码"
    assert "请打开以下链接设置新密码" in _body(latest)


def test_english_sign_up_gets_english_email(client: TestClient, ctx: Context) -> None:
    register(client, "sam@example.com")
    (message,) = outbox_messages(ctx.settings.outbox_dir)
    assert message["Subject"] == "Confirm your RemoveAny email address"
    assert _body(message).startswith("Welcome to RemoveAny!")
    with ctx.db.transaction() as session:
        user = accounts_repo.user_by_email(session, "sam@example.com")
        assert user is not None and user.locale == "en"


# --- the whole journey in a Chinese browser --------------------------------------------------


@pytest.fixture
def zh_page(request: pytest.FixtureRequest) -> Iterator[Any]:
    """Headless Chromium whose language is Simplified Chinese (its Accept-Language)."""
    tb = test_browser
    if not tb.CHROMIUM.exists():
        tb._unavailable(f"Chromium is not installed at {tb.CHROMIUM}")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        tb._unavailable("the playwright package is not installed")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=str(tb.CHROMIUM), headless=True, args=tb.CHROMIUM_ARGS
        )
        context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN")
        tab = context.new_page()
        problems: list[str] = []
        tab.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
        tab.problems = problems
        try:
            yield tab
        finally:
            report = getattr(request.node, "rep_call", None)
            if report is None or report.failed:
                tb.ARTIFACTS.mkdir(exist_ok=True)
                try:
                    tab.screenshot(path=str(tb.ARTIFACTS / f"{request.node.name}-failure.png"))
                except Exception as exc:
                    print(f"could not take a failure screenshot: {exc}")
            context.close()
            browser.close()


@pytest.mark.browser
def test_register_verify_and_upload_in_chinese(live_server: LiveServer, zh_page: Any) -> None:
    from playwright.sync_api import expect

    page = zh_page
    photo = eval_image("object", "alphamatting_GT03")
    email = "zhang@example.com"
    outbox = live_server.settings.outbox_dir

    page.goto(live_server.url + "/")
    expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
    expect(page.get_by_role("heading", name="为任意照片一键去除背景。")).to_be_visible()
    page.get_by_role("link", name="免费注册").click()
    expect(page.get_by_role("heading", name="注册账户")).to_be_visible()
    page.get_by_label("邮箱地址").fill(email)
    page.get_by_label("密码").fill(PASSWORD)
    page.get_by_role("button", name="创建账户").click()
    expect(page.get_by_role("heading", name="请查收邮件")).to_be_visible()

    (message,) = outbox_messages(outbox)
    assert message["Subject"] == "验证您的 RemoveAny 邮箱地址"
    page.goto(verification_link(outbox, email))
    expect(page.get_by_role("heading", name="邮箱验证成功")).to_be_visible()
    expect(page.get_by_role("status")).to_contain_text("10 积分")
    page.get_by_role("link", name="登录开始使用").click()

    page.get_by_label("邮箱地址").fill(email)
    page.get_by_label("密码").fill(PASSWORD)
    page.get_by_role("button", name="登录").click()
    expect(page).to_have_url(live_server.url + "/app")
    expect(page.get_by_role("heading", name="去除背景")).to_be_visible()
    expect(page.get_by_text("将照片拖到这里")).to_be_visible()
    balance = page.locator(".credit-pill [data-balance]")
    expect(balance).to_have_text("10")

    page.get_by_label("裁剪到主体").uncheck()
    page.locator("#file-input").set_input_files(str(photo))
    expect(page.locator("#progress-text")).to_be_visible()
    page.wait_for_selector(
        "#result:not([hidden]), #upload-error:not([hidden])", timeout=JOB_TIMEOUT_MS
    )
    error = page.locator("#upload-error")
    assert error.is_hidden(), f"the upload failed: {error.inner_text()}"
    expect(page.get_by_role("heading", name="完成：背景已去除")).to_be_visible()
    expect(page.locator("#download")).to_have_text(re.compile(r"^下载"))
    expect(balance).to_have_text("9")
    expect(page.locator("#job-list .badge").first).to_have_text("已完成")

    # The switch in the footer turns the same page into English, and it stays English.
    page.get_by_role("navigation", name="语言").get_by_role("link", name="English").click()
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.get_by_role("heading", name="Remove a background")).to_be_visible()
    page.goto(live_server.url + "/app")
    expect(page.get_by_role("heading", name="Remove a background")).to_be_visible()
    assert page.problems == []
