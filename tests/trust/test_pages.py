"""The trust pages over the real app: forgotten password, two-step sign-in, the security page,
terms acceptance, the admin page. Forms carry CSRF tokens like every other page."""

from __future__ import annotations

import html
import re
from datetime import timedelta

import pyotp
from fastapi.testclient import TestClient
from sqlalchemy import select

from removeany import i18n
from removeany.accounts import security
from removeany.accounts.models import User
from removeany.context import Context
from removeany.credits import service as ledger
from tests.conftest import TestClock
from tests.helpers import make_user
from tests.trust.conftest import PASSWORD, link_in, mails, token_of

TOKEN_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


def text_of(page: str) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())


def form_token(page: str) -> str:
    found = TOKEN_RE.search(page)
    assert found, "the form has no CSRF token"
    return html.unescape(found.group(1))


def web_login(client: TestClient, email: str, password: str = PASSWORD):  # type: ignore[no-untyped-def]
    token = form_token(client.get("/login").text)
    return client.post(
        "/login",
        data={"email": email, "password": password, "csrf_token": token, "next": "/app"},
        follow_redirects=False,
    )


def test_forgot_password_pages(client: TestClient, ctx: Context) -> None:
    make_user(ctx)
    assert "/forgot-password" in client.get("/login").text
    page = client.get("/forgot-password").text
    r = client.post(
        "/forgot-password", data={"email": "ada@example.com", "csrf_token": form_token(page)}
    )
    assert r.status_code == 200 and "we sent it a link" in r.text
    link = link_in(ctx, "ada@example.com", "/reset-password")
    page = client.get(link.replace("http://testserver", "")).text
    r = client.post(
        "/reset-password",
        data={"token": token_of(link), "password": "password1", "csrf_token": form_token(page)},
    )
    assert r.status_code == 400 and "common" in html.unescape(r.text)
    r = client.post(
        "/reset-password",
        data={
            "token": token_of(link),
            "password": "brand new words here",
            "csrf_token": form_token(r.text),
        },
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"] == "/login?reset=1"
    assert web_login(client, "ada@example.com", "brand new words here").status_code == 303


def test_two_step_sign_in_and_security_page(
    client: TestClient, ctx: Context, clock: TestClock
) -> None:
    ctx.clock = clock
    make_user(ctx)
    assert web_login(client, "ada@example.com").status_code == 303
    page = client.get("/account/security")
    assert page.status_code == 200 and "Where you are signed in" in page.text
    token = form_token(page.text)
    r = client.post(
        "/account/security/2fa/setup", data={"current_password": "wrong!!", "csrf_token": token}
    )
    assert r.status_code == 401 and "current password is wrong" in html.unescape(r.text)
    r = client.post(
        "/account/security/2fa/setup", data={"current_password": PASSWORD, "csrf_token": token}
    )
    secret = re.search(r'id="totp-secret">([A-Z2-7]+)<', r.text)
    assert secret, r.text
    totp = pyotp.TOTP(secret.group(1))
    r = client.post(
        "/account/security/2fa/enable", data={"code": totp.at(clock.now), "csrf_token": token}
    )
    assert r.status_code == 200 and 'id="recovery-codes"' in r.text
    client.cookies.clear()
    r = web_login(client, "ada@example.com")
    assert r.status_code == 303 and r.headers["location"].startswith("/login/2fa?pending=")
    page = client.get(r.headers["location"]).text
    pending = html.unescape(re.search(r'name="pending" value="([^"]+)"', page).group(1))  # type: ignore[union-attr]
    clock.now += timedelta(seconds=30)
    r = client.post(
        "/login/2fa",
        data={"pending": pending, "code": "123456", "next": "/app", "csrf_token": form_token(page)},
    )
    assert r.status_code == 401 and "not right" in r.text
    r = client.post(
        "/login/2fa",
        data={
            "pending": pending,
            "code": totp.at(clock.now),
            "next": "/app",
            "csrf_token": form_token(r.text),
        },
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"] == "/app"
    assert client.get("/app").status_code == 200
    # Without the CSRF token nothing changes.
    assert (
        client.post(
            "/account/security/password",
            data={"current_password": PASSWORD, "new_password": "x" * 12},
        ).status_code
        == 403
    )


def test_terms_acceptance_page_and_registration_records_it(
    client: TestClient, ctx: Context
) -> None:
    page = client.get("/register").text
    assert "/legal/terms" in page
    r = client.post(
        "/register",
        data={"email": "new@example.com", "password": PASSWORD, "csrf_token": form_token(page)},
    )
    assert r.status_code == 200
    with ctx.db.transaction() as s:
        from removeany.legal import service as legal

        user = s.scalar(select(User).where(User.email == "new@example.com"))
        assert user is not None and legal.accepted_version(s, user.id) == legal.BUILTIN.version
    user2 = make_user(ctx, "old@example.com")
    with ctx.db.transaction() as s:
        from removeany.legal.models import TermsAcceptance

        for row in s.scalars(select(TermsAcceptance).where(TermsAcceptance.user_id == user2.id)):
            s.delete(row)
    assert web_login(client, "old@example.com").status_code == 303
    app = client.get("/app").text
    assert 'data-notice="terms"' in app
    page = client.get("/legal/accept").text
    r = client.post(
        "/legal/accept",
        data={"version": "2", "csrf_token": form_token(page), "next": "/app"},
        follow_redirects=False,
    )
    assert r.status_code == 303
    assert 'data-notice="terms"' not in client.get("/app").text


def test_admin_page(client: TestClient, ctx: Context) -> None:
    admin = make_user(ctx, "root@example.com")
    with ctx.db.transaction() as s:
        row = s.get(User, admin.id)
        assert row is not None
        row.is_admin = True
    eve = make_user(ctx, "eve@example.com")
    assert web_login(client, "eve@example.com").status_code == 303
    assert client.get("/admin").status_code == 403
    client.cookies.clear()
    assert web_login(client, "root@example.com").status_code == 303
    page = client.get("/admin", params={"q": "eve"})
    assert page.status_code == 200 and "eve@example.com" in page.text
    token = form_token(page.text)
    r = client.post(
        f"/admin/users/{eve.id}", data={"action": "ban", "reason": "", "csrf_token": token}
    )
    assert r.status_code == 400 and "reason" in r.text
    r = client.post(
        f"/admin/users/{eve.id}",
        data={"action": "ban", "reason": "spam", "csrf_token": token},
        follow_redirects=False,
    )
    assert r.status_code == 303
    r = client.post(
        "/admin/announcements",
        data={"message": "Hello everyone", "csrf_token": token},
        follow_redirects=False,
    )
    assert r.status_code == 303
    page = client.get("/admin").text
    assert "user.ban" in page and "Hello everyone" in page
    assert mails(ctx, "eve@example.com") == []


def _make_admin(ctx: Context) -> None:
    admin = make_user(ctx, "root@example.com")
    with ctx.db.transaction() as s:
        row = s.get(User, admin.id)
        assert row is not None
        row.is_admin = True


def test_a_refused_admin_action_keeps_the_search_and_what_was_typed(
    client: TestClient, ctx: Context
) -> None:
    """Refused for a user found by a search: the page lists the same users again, the error is
    in that user's row and the row's form holds what was typed, so it is not re-applied to
    someone else."""
    _make_admin(ctx)
    dave = make_user(ctx, "dave@example.com", credits=0)
    make_user(ctx, "erin@example.com")
    assert web_login(client, "root@example.com").status_code == 303
    token = form_token(client.get("/admin", params={"q": "dave"}).text)

    def act(**fields: str) -> str:
        r = client.post(
            f"/admin/users/{dave.id}", data={"q": "dave", "csrf_token": token, **fields}
        )
        assert r.status_code == 400, r.text
        return r.text

    page = act(action="credits", amount="ten", reason="Sorry for the outage")
    assert 'id="q" name="q" type="search" value="dave"' in page
    assert "dave@example.com" in page and "erin@example.com" not in page
    rows = re.findall(r"<tr>.*?</tr>", page, re.DOTALL)
    (row,) = [r for r in rows if "dave@example.com" in r]
    assert "Enter a whole number of credits, e.g. 10 or -5." in row  # beside dave
    assert page.count('role="alert"') == 1
    assert '<option value="credits" selected>' in row
    assert 'value="ten"' in row and 'value="Sorry for the outage"' in row
    assert 'name="q" value="dave"' in row  # the next try keeps the search too

    page = act(action="credits", amount="5", reason="")
    (row,) = [r for r in re.findall(r"<tr>.*?</tr>", page, re.DOTALL) if "dave@" in r]
    assert 'role="alert"' in row and 'value="5"' in row
    assert "erin@example.com" not in page

    # The other forms come back as typed too, their error beside them.
    r = client.post(
        "/admin/terms",
        data={"summary": "", "terms_en": "New terms", "csrf_token": token, "q": "dave"},
    )
    assert r.status_code == 400
    terms = r.text.split('id="terms-title"', 1)[1]
    assert 'role="alert"' in terms and ">New terms</textarea>" in terms
    assert "erin@example.com" not in r.text

    done = client.post(
        f"/admin/users/{dave.id}",
        data={
            "action": "credits",
            "amount": "5",
            "reason": "Sorry",
            "q": "dave",
            "csrf_token": token,
        },
        follow_redirects=False,
    )
    assert done.status_code == 303
    with ctx.db.transaction() as s:
        assert ledger.balance(s, dave.id, ctx.now()).available == 5


def test_a_used_or_expired_reset_link_shows_no_form(
    client: TestClient, ctx: Context, clock: TestClock
) -> None:
    ctx.clock = clock
    make_user(ctx)

    def ask() -> str:
        page = client.get("/forgot-password").text
        client.post(
            "/forgot-password", data={"email": "ada@example.com", "csrf_token": form_token(page)}
        )
        return link_in(ctx, "ada@example.com", "/reset-password").replace("http://testserver", "")

    link = ask()
    page = client.get(link)
    assert page.status_code == 200 and 'name="password"' in page.text
    r = client.post(
        "/reset-password",
        data={
            "token": link.split("token=")[1],
            "password": "brand new words here",
            "csrf_token": form_token(page.text),
        },
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"] == "/login?reset=1"
    changed = "Your password was changed. Sign in with the new one."
    assert changed in client.get(r.headers["location"]).text
    zh = client.get("/login?reset=1&lang=zh-CN").text
    assert i18n.translate(changed, "zh-CN") in zh and changed not in zh
    assert "Your password was changed" not in client.get("/login?lang=en").text

    used = client.get(link)
    assert used.status_code == 400
    assert 'name="password"' not in used.text  # no form for a dead link...
    text = text_of(used.text)
    assert "This password reset link is invalid, expired or already used." in text
    assert 'href="/forgot-password"' in used.text  # ...a way to a new one

    late = ask()
    clock.now += timedelta(hours=3)
    expired = client.get(late)
    assert expired.status_code == 400 and 'name="password"' not in expired.text
    assert 'href="/forgot-password"' in expired.text


def test_security_forms_redirect_so_a_reload_repeats_nothing(
    client: TestClient, ctx: Context, clock: TestClock
) -> None:
    """Every form that makes something (a 2FA secret, recovery codes, an email-change link)
    answers with a redirect: reloading the page it lands on makes nothing again, and what is
    shown only once is gone."""
    ctx.clock = clock
    make_user(ctx)
    assert web_login(client, "ada@example.com").status_code == 303
    token = form_token(client.get("/account/security").text)

    def post(path: str, **fields: str):  # type: ignore[no-untyped-def]
        r = client.post(path, data={"csrf_token": token, **fields}, follow_redirects=False)
        assert r.status_code == 303, r.text
        return r.headers["location"]

    # Two-factor setup: the page it lands on, reloaded, shows the same secret.
    landed = post("/account/security/2fa/setup", current_password=PASSWORD)
    secrets = [re.search(r'id="totp-secret">(\w+)<', client.get(landed).text) for _ in "ab"]
    assert secrets[0] and secrets[1] and secrets[0].group(1) == secrets[1].group(1)
    totp = pyotp.TOTP(secrets[0].group(1))
    landed = post("/account/security/2fa/enable", code=totp.at(clock.now))
    shown = client.get(landed).text
    codes = re.search(r'id="recovery-codes">([^<]+)<', shown)
    assert codes and len(codes.group(1).split()) >= 8
    assert 'id="recovery-codes"' not in client.get(landed).text  # shown once

    landed = post("/account/security/recovery-codes", current_password=PASSWORD)
    fresh = re.search(r'id="recovery-codes">([^<]+)<', client.get(landed).text)
    assert fresh and fresh.group(1) != codes.group(1)
    assert 'id="recovery-codes"' not in client.get(landed).text

    landed = post("/account/security/email", current_password=PASSWORD, new_email="ada@new.example")
    notice = "Open the link we sent to ada@new.example to confirm the change."
    assert notice in text_of(client.get(landed).text)
    assert notice not in text_of(client.get(landed).text)
    assert len(mails(ctx, "ada@new.example")) == 1


def test_the_email_change_link_keeps_the_signed_in_header(client: TestClient, ctx: Context) -> None:
    make_user(ctx)
    assert web_login(client, "ada@example.com").status_code == 303
    token = form_token(client.get("/account/security").text)
    client.post(
        "/account/security/email",
        data={"current_password": PASSWORD, "new_email": "ada@new.example", "csrf_token": token},
    )
    link = link_in(ctx, "ada@new.example", "/account/email/confirm")
    page = client.get(link.replace("http://testserver", "")).text
    assert 'action="/logout"' in page and 'class="credit-pill"' in page  # signed in
    r = client.post(
        "/account/email/confirm",
        data={"token": token_of(link), "csrf_token": form_token(page.split("/email/confirm")[1])},
    )
    assert "Your account now uses ada@new.example." in r.text
    client.cookies.clear()
    signed_out = client.get(link.replace("http://testserver", "")).text
    assert 'action="/logout"' not in signed_out and 'href="/login"' in signed_out


def test_this_wasnt_me_answers_with_a_redirect(client: TestClient, ctx: Context) -> None:
    """Reloading the confirmation locks nothing again and sends no more email."""
    token = security.not_me_token(ctx.secret_key, make_user(ctx), now=ctx.now())
    page = client.get(f"/account/not-me?token={token}").text
    r = client.post(
        "/account/not-me",
        data={"token": token, "csrf_token": form_token(page)},
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"] == "/account/not-me?done=1"
    sent = len(mails(ctx, "ada@example.com"))
    assert sent == 2  # "your account is locked", and the reset link
    for _reload in range(2):
        done = client.get(r.headers["location"]).text
        assert 'id="not-me-done"' in done and 'action="/account/not-me"' not in done
    assert len(mails(ctx, "ada@example.com")) == sent


def test_a_refused_new_password_is_tied_to_its_field(client: TestClient, ctx: Context) -> None:
    """A screen reader on the password field hears why it was refused, and the field is
    marked invalid and focused."""
    make_user(ctx)
    page = client.get("/forgot-password").text
    client.post(
        "/forgot-password", data={"email": "ada@example.com", "csrf_token": form_token(page)}
    )
    link = link_in(ctx, "ada@example.com", "/reset-password").replace("http://testserver", "")
    page = client.get(link).text
    refused = client.post(
        "/reset-password",
        data={
            "token": link.split("token=")[1],
            "password": "short",
            "csrf_token": form_token(page),
        },
    )
    assert refused.status_code == 400
    field = re.search(r'<input id="password"[^>]*>', refused.text)
    assert field is not None
    assert 'aria-describedby="form-error password-hint"' in field.group(0)
    assert 'aria-invalid="true"' in field.group(0) and "autofocus" in field.group(0)
    assert 'role="alert" id="form-error"' in refused.text


def test_a_refused_security_form_marks_the_field_it_is_about(
    client: TestClient, ctx: Context
) -> None:
    """The security page holds many forms: a refusal focuses and marks the one field it is
    about, described by the alert, and no other."""
    make_user(ctx)
    web_login(client, "ada@example.com")

    def invalid_fields(action: str, **data: str) -> list[str]:
        token = form_token(client.get("/account/security").text)
        page = client.post(action, data={**data, "csrf_token": token}).text
        assert 'role="alert" id="security-error"' in page
        fields = re.findall(r'<input id="([\w-]+)"[^>]*aria-invalid="true"[^>]*>', page)
        for field in fields:
            tag = re.search(rf'<input id="{field}"[^>]*>', page)
            # Described by the alert, then by the field's own hint if it has one.
            described = r'aria-describedby="security-error(?: [\w-]+)?"'
            assert tag is not None and re.search(described, tag.group(0))
            assert "autofocus" in tag.group(0)
        return fields

    password = "/account/security/password"
    assert invalid_fields(password, current_password="wrong one", new_password="x" * 12) == [
        "pw-current"
    ]
    assert invalid_fields(password, current_password=PASSWORD, new_password="short") == ["pw-new"]
    email = "/account/security/email"
    assert invalid_fields(email, new_email="not-an-address", current_password=PASSWORD) == [
        "em-new"
    ]
    assert invalid_fields(email, new_email="new@example.com", current_password="wrong one") == [
        "em-current"
    ]
    setup = "/account/security/2fa/setup"
    assert invalid_fields(setup, current_password="wrong one") == ["setup-current"]
