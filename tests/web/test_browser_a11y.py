"""What a screen reader, keyboard or low-vision user meets first, in headless Chromium, in
English and Chinese: every control on the main pages has an accessible name, images have
alternatives, headings go in order, text and the edges of form fields stand out from what is
behind them, and a form's error is announced and belongs to the field it is about."""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable
from typing import Any

import pyotp
import pytest

from removeany.accounts import repository as accounts_repo
from removeany.accounts import security
from removeany.accounts.models import User
from removeany.context import Context, build_context
from tests.helpers import make_user
from tests.web.conftest import PASSWORD, both_languages
from tests.web.test_browser import LiveServer
from tests.web.test_browser import page as page  # the Chromium fixture
from tests.web.test_browser import server as server  # the live-server fixture

pytestmark = pytest.mark.browser

EMAIL = "reader@example.com"
SIGNED_OUT = ["/", "/login", "/register", "/forgot-password", "/legal/terms"]
SIGNED_IN = [
    "/app",
    "/app/watermark",
    "/batches",
    "/credits",
    "/account/api-keys",
    "/account/security",
]
# A control in the accessibility tree without a name: `- button` or `- textbox [disabled]`,
# where a named one reads `- button "Sign in"`.
UNNAMED = re.compile(
    r"^\s*- (button|checkbox|combobox|link|radio|slider|spinbutton|textbox|searchbox)"
    r"(?: \[[^\]]*\])*:?$",
    re.MULTILINE,
)
# Images without alt, and the levels of the headings a screen reader lists.
OUTLINE = """() => ({
  bare: [...document.querySelectorAll('img:not([alt])')].map((e) => e.outerHTML.slice(0, 120)),
  levels: [...document.querySelectorAll('h1, h2, h3, h4, h5, h6')]
    .filter((e) => e.getClientRects().length || e.classList.contains('visually-hidden'))
    .map((e) => Number(e.tagName[1])),
})"""
# WCAG's contrast ratios, from the styles the browser computed: text at least 4.5:1 (3:1 when
# large: 24px, or 18.66px bold), and the border of a text field or list box at least 3:1
# against what is around it, since the border is all that shows where to type. Text over a
# picture or a gradient is left out (no single colour behind it).
LEGIBILITY = """() => {
  const rgba = (css) => {
    const [r, g, b, a = 1] = css.match(/[\\d.]+/g).map(Number);
    return [r, g, b, a];
  };
  // A colour with alpha `a` laid over an opaque one.
  const over = ([r, g, b, a], below) => [r, g, b].map((v, i) => v * a + below[i] * (1 - a));
  const luminance = (rgb) => {
    const linear = (v) => (v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4);
    const [r, g, b] = rgb.map((v) => linear(v / 255));
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  };
  const ratio = (x, y) => {
    const [a, b] = [luminance(x), luminance(y)].sort((p, q) => q - p);
    return (a + 0.05) / (b + 0.05);
  };
  // The solid colour behind an element; null over a picture or a gradient.
  const behind = (el) => {
    const layers = [];
    for (let e = el; e; e = e.parentElement) {
      const style = getComputedStyle(e);
      if (style.backgroundImage !== "none") return null;
      const colour = rgba(style.backgroundColor);
      if (colour[3] > 0) layers.push(colour);
      if (colour[3] === 1) break;
    }
    return layers.reduceRight((below, layer) => over(layer, below), [255, 255, 255]);
  };
  const shown = (el) => el.getClientRects().length && getComputedStyle(el).visibility === "visible";
  const problems = new Set();
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const el = node.parentElement;
    const text = node.textContent.trim();
    if (!text || !shown(el) || el.closest(".visually-hidden, :disabled")) continue;
    const style = getComputedStyle(el);
    const back = behind(el);
    if (!back) continue;
    let opacity = 1;
    for (let e = el; e; e = e.parentElement) opacity *= Number(getComputedStyle(e).opacity);
    const colour = rgba(style.color);
    const fore = over([colour[0], colour[1], colour[2], colour[3] * opacity], back);
    const size = parseFloat(style.fontSize);
    const large = size >= 24 || (size >= 18.66 && Number(style.fontWeight) >= 700);
    const found = ratio(fore, back);
    if (found < (large ? 3 : 4.5)) {
      problems.add(`text ${found.toFixed(2)}:1 "${text.slice(0, 40)}"`);
    }
  }
  const fields = "input:is([type=text], [type=email], [type=password], [type=number], " +
    "[type=search], :not([type])), select, textarea";
  for (const el of document.querySelectorAll(fields)) {
    const back = el.parentElement && behind(el.parentElement);
    if (!shown(el) || el.disabled || !back) continue;
    const style = getComputedStyle(el);
    const border = over(rgba(style.borderTopColor), back);
    const found = Math.max(ratio(border, back), ratio(behind(el) || back, back));
    if (found < 3) problems.add(`the edge of #${el.id} ${found.toFixed(2)}:1`);
  }
  return [...problems];
}"""


def _problems(page: Any, url: str) -> list[str]:
    """What a screen reader (or a reader who sees little contrast) would trip over on the page
    at `url`, one line each."""
    page.goto(url)
    tree = page.locator("body").aria_snapshot()
    problems = [
        f"{url}: a control without a name: {m.group(0).strip()}" for m in UNNAMED.finditer(tree)
    ]
    outline = page.evaluate(OUTLINE)
    problems += [f"{url}: <img> without alt: {html}" for html in outline["bare"]]
    levels = outline["levels"]
    if levels.count(1) != 1 or levels[0] != 1:
        problems.append(f"{url}: headings {levels} do not start with the one <h1>")
    problems += [
        f"{url}: heading level jumps from h{a} to h{b}"
        for a, b in itertools.pairwise(levels)
        if b > a + 1
    ]
    problems += [f"{url}: too faint: {found}" for found in page.evaluate(LEGIBILITY)]
    return problems


@both_languages
def test_main_pages_name_controls_order_headings_and_have_contrast(
    server: LiveServer, page: Any, lang: str, tr: Callable[..., str]
) -> None:
    from playwright.sync_api import expect

    ctx = build_context(server.settings)
    try:
        make_user(ctx, EMAIL, credits=3)
    finally:
        ctx.close()
    page.allow_english.update({"Starter", "Standard", "Pro"})  # the credit packs' own names
    problems = [p for path in SIGNED_OUT for p in _problems(page, server.url + path)]
    page.goto(server.url + "/login")
    page.get_by_label(tr("Email address")).fill(EMAIL)
    page.get_by_label(tr("Password")).fill(PASSWORD)
    page.get_by_role("button", name=tr("Sign in")).click()
    expect(page).to_have_url(server.url + "/app")
    problems += [p for path in SIGNED_IN for p in _problems(page, server.url + path)]
    # The main controls by the names a screen reader reads out.
    page.goto(server.url + "/app")
    for name in (tr("Service"), tr("Background photo"), tr("Crop to the subject"), tr("Colour")):
        expect(page.get_by_label(name, exact=True)).to_be_visible()
    expect(page.get_by_role("region", name=tr("Your photo"))).to_be_attached()
    assert problems == []
    assert page.problems == []


@both_languages
def test_a_sign_up_error_is_announced_on_the_field_it_is_about(
    server: LiveServer, page: Any, lang: str, tr: Callable[..., str]
) -> None:
    """The password hint names every rule. A too short password: the alert is announced,
    the password field is invalid, described by the alert and focused (it was the email field
    that was described by it). Something that is not an address: the email field instead. (A
    taken address gets the same answer as a new one: sign-up does not tell who has an
    account.)"""
    from playwright.sync_api import expect

    page.goto(server.url + "/register")
    email = page.get_by_label(tr("Email address"))
    password = page.get_by_label(tr("Password"))
    # The hint names every rule, so the first try can meet them.
    expect(password).to_have_accessible_description(
        tr("At least 8 characters, not a common password or your email address.")
    )
    email.fill("newcomer@example.com")
    password.fill("short")
    page.get_by_role("button", name=tr("Create account")).click()
    alert = page.get_by_role("alert")
    expect(alert).to_have_text(
        tr("Choose a password of at least {MIN_LENGTH} characters.", MIN_LENGTH=8)
    )
    expect(password).to_have_attribute("aria-invalid", "true")
    expect(password).to_have_accessible_description(re.compile(re.escape(alert.inner_text())))
    expect(password).to_be_focused()
    expect(email).not_to_have_attribute("aria-invalid", "true")

    email.fill("newcomer.example.com")
    password.fill("a long enough password")
    page.get_by_role("button", name=tr("Create account")).click()
    # English names the address typed; Chinese gives the sentence with an example address.
    expect(alert).to_contain_text(re.compile(r"newcomer\.example\.com|name@example\.com"))
    expect(email).to_have_attribute("aria-invalid", "true")
    expect(email).to_have_accessible_description(alert.inner_text())
    expect(email).to_be_focused()
    expect(password).not_to_have_attribute("aria-invalid", "true")
    # The two refused forms answer 400, which the console reports; nothing else.
    assert [p for p in page.problems if "status of 400" not in p] == []


def _with_two_factor(ctx: Context, email: str) -> None:
    """Turn two-factor sign-in on for `email`, as the security page does."""
    with ctx.db.transaction() as session:
        user = accounts_repo.user_by_email(session, email)
        assert user is not None
        seed = security.begin_totp(session, user, secret_key=ctx.secret_key)
        code = pyotp.TOTP(seed).now()
        security.enable_totp(session, user, code, now=ctx.now(), secret_key=ctx.secret_key)


@both_languages
def test_a_refused_sign_in_is_announced_on_the_fields_it_is_about(
    server: LiveServer, page: Any, lang: str, tr: Callable[..., str]
) -> None:
    """A wrong password: the alert is announced and both fields are invalid and described by
    it (it does not say which of the two was wrong), the email field focused. A mistyped code
    at the second step: the code field is invalid, described by the alert and focused."""
    from playwright.sync_api import expect

    ctx = build_context(server.settings)
    try:
        make_user(ctx, EMAIL, credits=0)
        _with_two_factor(ctx, EMAIL)
    finally:
        ctx.close()
    page.goto(server.url + "/login")
    email = page.get_by_label(tr("Email address"))
    password = page.get_by_label(tr("Password"))
    email.fill(EMAIL)
    password.fill("not the password")
    page.get_by_role("button", name=tr("Sign in")).click()
    alert = page.get_by_role("alert")
    expect(alert).to_have_text(tr("Email or password is wrong."))
    for field in (email, password):
        expect(field).to_have_attribute("aria-invalid", "true")
        expect(field).to_have_accessible_description(alert.inner_text())
    expect(email).to_be_focused()

    password.fill(PASSWORD)
    page.get_by_role("button", name=tr("Sign in")).click()
    expect(page.get_by_role("heading", name=tr("Two-step sign-in"))).to_be_visible()
    code = page.get_by_label(tr("Code"), exact=True)
    expect(code).not_to_have_attribute("aria-invalid", "true")
    code.fill("12345")  # a digit short
    page.get_by_role("button", name=tr("Sign in")).click()
    expect(alert).to_have_text(
        tr(
            "That code is not right or was already used. Enter the current code from your "
            "app, or an unused recovery code."
        )
    )
    expect(code).to_have_attribute("aria-invalid", "true")
    expect(code).to_have_accessible_description(alert.inner_text())
    expect(code).to_be_focused()
    # The refused forms answer 401, which the console reports; nothing else.
    assert [p for p in page.problems if "status of 401" not in p] == []


@both_languages
def test_a_refused_admin_action_is_announced_on_the_field_it_is_about(
    server: LiveServer, page: Any, lang: str, tr: Callable[..., str]
) -> None:
    """The admin page is long and a refused action reloads it, at the top: the field the error
    is about is marked invalid, described by the error and focused, in a user's row or in a
    form further down. Each row's button names its user (every row has one)."""
    from playwright.sync_api import expect

    ctx = build_context(server.settings)
    try:
        admin = make_user(ctx, "root@example.com", credits=0)
        with ctx.db.transaction() as session:
            row = session.get(User, admin.id)
            assert row is not None
            row.is_admin = True
        make_user(ctx, EMAIL, credits=0)
    finally:
        ctx.close()
    goodwill = "Goodwill after the outage"
    page.allow_english.update({goodwill, "ten", "Shorter terms", "Too short."})
    page.goto(server.url + "/login?next=/admin")
    page.get_by_label(tr("Email address")).fill("root@example.com")
    page.get_by_label(tr("Password")).fill(PASSWORD)
    page.get_by_role("button", name=tr("Sign in")).click()
    expect(page).to_have_url(server.url + "/admin")
    row = page.locator("section[aria-labelledby='users-title'] tbody tr").filter(has_text=EMAIL)
    apply = row.get_by_role("button", name=f"{tr('Apply')} {EMAIL}", exact=True)
    expect(apply).to_be_visible()

    row.get_by_label(tr("Action"), exact=True).select_option("credits")
    amount = row.get_by_label(tr("Credits"), exact=True)
    reason = row.get_by_label(tr("Reason"), exact=True)
    amount.fill("ten")
    reason.fill(goodwill)
    apply.click()
    alert = page.get_by_role("alert")
    expect(alert).to_have_text(tr("Enter a whole number of credits, e.g. 10 or -5."))
    expect(amount).to_have_attribute("aria-invalid", "true")
    expect(amount).to_have_accessible_description(alert.inner_text())
    expect(amount).to_be_focused()
    expect(reason).not_to_have_attribute("aria-invalid", "true")

    amount.fill("5")
    reason.fill("ok")
    apply.click()
    expect(alert).to_have_text(tr("Give a reason for this action (at least a few words)."))
    expect(reason).to_have_attribute("aria-invalid", "true")
    expect(reason).to_have_accessible_description(alert.inner_text())
    expect(reason).to_be_focused()
    expect(amount).not_to_have_attribute("aria-invalid", "true")

    # A service suspended without the message its users would read.
    services = page.locator("section[aria-labelledby='services-title']")
    services.get_by_label(tr("Status"), exact=True).select_option("suspended")
    services.get_by_label(tr("Reason (audit log)")).fill("Model upgrade")
    services.get_by_role("button", name=tr("Save")).click()
    expect(alert).to_have_text(tr("Write the message users will see (what and until when)."))
    message = services.get_by_label(tr("Message shown to users"))
    expect(message).to_have_attribute("aria-invalid", "true")
    expect(message).to_have_accessible_description(alert.inner_text())
    expect(message).to_be_focused()

    # New terms with a text too short: the error is about no one field, and is focused itself.
    terms = page.locator("section[aria-labelledby='terms-title']")
    terms.get_by_label(tr("What changed")).fill("Shorter terms")
    terms.get_by_label(tr("Terms (English)")).fill("Too short.")
    terms.get_by_role("button").click()
    expect(alert).to_contain_text("terms_en")
    expect(alert).to_be_focused()
    # The refused forms answer 400, which the console reports; nothing else.
    assert [p for p in page.problems if "status of 400" not in p] == []


@both_languages
def test_every_new_password_field_names_the_rules_it_must_meet(
    server: LiveServer, page: Any, lang: str, tr: Callable[..., str]
) -> None:
    """Sign-up, the password reset and the security page check the same rules (not a common
    password, not the email address): each new password field is described by all of them,
    so the first try can meet them. On the security page a refused password is described by
    the error and the rules both."""
    from playwright.sync_api import expect

    ctx = build_context(server.settings)
    try:
        make_user(ctx, EMAIL, credits=0)
        with ctx.db.transaction() as session:
            user = accounts_repo.user_by_email(session, EMAIL)
            assert user is not None
            token = security.create_reset_token(session, user, now=ctx.now(), minutes=30)
    finally:
        ctx.close()
    rules = re.compile(
        re.escape(tr("At least 8 characters, not a common password or your email address."))
    )
    page.goto(server.url + "/register")
    expect(page.get_by_label(tr("Password"))).to_have_accessible_description(rules)
    page.goto(f"{server.url}/reset-password?token={token}")
    expect(page.get_by_label(tr("New password"))).to_have_accessible_description(rules)

    page.goto(server.url + "/login")
    page.get_by_label(tr("Email address")).fill(EMAIL)
    page.get_by_label(tr("Password")).fill(PASSWORD)
    page.get_by_role("button", name=tr("Sign in")).click()
    expect(page).to_have_url(server.url + "/app")
    page.goto(server.url + "/account/security")
    new = page.get_by_label(tr("New password"))
    expect(new).to_have_accessible_description(rules)
    page.get_by_label(tr("Current password")).first.fill(PASSWORD)
    new.fill(EMAIL)
    page.get_by_role("button", name=tr("Change password")).click()
    alert = page.get_by_role("alert")
    expect(alert).to_be_visible()
    expect(new).to_have_attribute("aria-invalid", "true")
    expect(new).to_have_accessible_description(re.compile(re.escape(alert.inner_text())))
    expect(new).to_have_accessible_description(rules)
    expect(new).to_be_focused()
    # The refused form answers 400, which the console reports; nothing else.
    assert [p for p in page.problems if "status of 400" not in p] == []
