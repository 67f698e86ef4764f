"""The trust pages over the real app: forgotten password, two-step sign-in, the security page,
terms acceptance, the admin page. Forms carry CSRF tokens like every other page."""

from __future__ import annotations

import html
import re
from datetime import timedelta

import pyotp
from fastapi.testclient import TestClient
from sqlalchemy import select

from removeany.accounts.models import User
from removeany.context import Context
from tests.conftest import TestClock
from tests.helpers import make_user
from tests.trust.conftest import PASSWORD, link_in, mails, token_of

TOKEN_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


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
        assert user is not None and legal.accepted_version(s, user.id) == 1
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
        data={"version": "1", "csrf_token": form_token(page), "next": "/app"},
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
