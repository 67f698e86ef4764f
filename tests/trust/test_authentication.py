"""Item 1: argon2id with rehash, common passwords, throttling, reset links, TOTP 2FA with
recovery codes, re-authentication — through the real HTTP app and database."""

from __future__ import annotations

from datetime import timedelta

import pyotp
from argon2 import PasswordHasher
from fastapi.testclient import TestClient
from sqlalchemy import select

from removeany.accounts.models import PasswordResetToken, User, WebSession
from removeany.context import Context
from tests.conftest import TestClock
from tests.helpers import make_api_key, make_user
from tests.trust.conftest import PASSWORD, link_in, login, mails, token_of


def _user(ctx: Context, email: str = "ada@example.com") -> User:
    with ctx.db.transaction() as s:
        user = s.scalar(select(User).where(User.email == email))
        assert user is not None
        return user


def test_common_passwords_are_refused_and_length_rules(client: TestClient) -> None:
    for weak in ("password123", "Iloveyou2", "qwertyuiop", "short"):
        r = client.post("/api/v1/auth/register", json={"email": "x@example.com", "password": weak})
        assert r.status_code == 400 and r.json()["error"]["code"] == "weak_password", weak
    assert (
        "common"
        in client.post(
            "/api/v1/auth/register", json={"email": "x@example.com", "password": "password123"}
        ).json()["error"]["message"]
    )
    long_ok = "a long passphrase with spaces " * 4  # 120 characters are accepted
    r = client.post("/api/v1/auth/register", json={"email": "x@example.com", "password": long_ok})
    assert r.status_code == 202, r.text


def test_login_upgrades_an_old_hash(client: TestClient, ctx: Context) -> None:
    make_user(ctx)
    weak_hash = PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1).hash(PASSWORD)
    with ctx.db.transaction() as s:
        user = s.scalar(select(User).where(User.email == "ada@example.com"))
        assert user is not None
        user.password_hash = weak_hash
    r = login(client, "ada@example.com")
    assert r.status_code == 200, r.text
    stored = _user(ctx).password_hash
    assert stored != weak_hash and "m=19456,t=2,p=1" in stored and stored.startswith("$argon2id$")


def test_failed_logins_are_throttled_per_account(
    client: TestClient, ctx: Context, clock: TestClock
) -> None:
    ctx.clock = clock
    ctx.settings.login_failures_per_account = 3
    make_user(ctx)
    for _ in range(3):
        assert login(client, "ada@example.com", "wrong password!").status_code == 401
    blocked = login(client, "ada@example.com")  # even the right password waits
    assert blocked.status_code == 429 and blocked.json()["error"]["code"] == "too_many_attempts"
    assert 0 < int(blocked.headers["Retry-After"]) <= ctx.settings.login_window_seconds
    clock.now += timedelta(seconds=ctx.settings.login_window_seconds + 1)
    assert login(client, "ada@example.com").status_code == 200


def test_every_spelling_of_an_account_shares_its_throttle(client: TestClient, ctx: Context) -> None:
    """Spellings that sign in to the same account (another case, fullwidth letters in the
    domain) count against it together: they are no fresh supply of guesses."""
    ctx.settings.login_failures_per_account = 3
    make_user(ctx)
    spellings = [
        "ada@example.com",
        "Ada@EXAMPLE.com",
        "ada@\uff25\uff38\uff21\uff2d\uff30\uff2c\uff25.com",
    ]
    for email in spellings:
        assert login(client, email, "wrong password!").status_code == 401
    for email in spellings:
        assert login(client, email).status_code == 429


def test_failed_logins_are_throttled_per_ip(client: TestClient, ctx: Context) -> None:
    ctx.settings.login_failures_per_ip = 4
    make_user(ctx)
    for n in range(4):
        assert login(client, f"nobody{n}@example.com", "wrong password!").status_code == 401
    r = login(client, "ada@example.com")
    assert r.status_code == 429 and r.json()["error"]["code"] == "too_many_attempts"


def test_signups_are_throttled_per_ip(client: TestClient, ctx: Context) -> None:
    ctx.settings.signups_per_ip = 2
    for n in range(2):
        r = client.post(
            "/api/v1/auth/register", json={"email": f"s{n}@example.com", "password": PASSWORD}
        )
        assert r.status_code == 202
    r = client.post("/api/v1/auth/register", json={"email": "s9@example.com", "password": PASSWORD})
    assert r.status_code == 429 and r.json()["error"]["code"] == "too_many_attempts"


def test_password_reset_link_is_single_use_and_expires(
    client: TestClient, ctx: Context, clock: TestClock
) -> None:
    ctx.clock = clock
    make_user(ctx)
    assert login(client, "ada@example.com").status_code == 200
    # Unknown addresses get the same answer and no mail.
    same = client.post("/api/v1/auth/password-reset", json={"email": "nobody@example.com"})
    r = client.post("/api/v1/auth/password-reset", json={"email": "ada@example.com"})
    assert r.status_code == same.status_code == 202 and r.json() == same.json()
    assert mails(ctx, "nobody@example.com") == []
    token = token_of(link_in(ctx, "ada@example.com", "/reset-password"))
    with ctx.db.transaction() as s:
        assert token not in {t.token_hash for t in s.scalars(select(PasswordResetToken))}
    weak = client.post(
        "/api/v1/auth/password-reset/confirm", json={"token": token, "new_password": "password1"}
    )
    assert weak.status_code == 400 and weak.json()["error"]["code"] == "weak_password"
    done = client.post(
        "/api/v1/auth/password-reset/confirm",
        json={"token": token, "new_password": "a brand new secret"},
    )
    assert done.status_code == 200, done.text
    again = client.post(
        "/api/v1/auth/password-reset/confirm",
        json={"token": token, "new_password": "yet another secret"},
    )
    assert again.status_code == 400 and again.json()["error"]["code"] == "invalid_token"
    assert login(client, "ada@example.com").status_code == 401
    assert login(client, "ada@example.com", "a brand new secret").status_code == 200
    with ctx.db.transaction() as s:  # the reset ended the session that existed before it
        sessions = s.scalars(select(WebSession).order_by(WebSession.id)).all()
        assert sessions[0].revoked_at is not None and sessions[-1].revoked_at is None
    # An expired link does nothing.
    client.post("/api/v1/auth/password-reset", json={"email": "ada@example.com"})
    late = token_of(link_in(ctx, "ada@example.com", "/reset-password"))
    clock.now += timedelta(minutes=ctx.settings.password_reset_minutes + 1)
    expired = client.post(
        "/api/v1/auth/password-reset/confirm",
        json={"token": late, "new_password": "too late for this"},
    )
    assert expired.status_code == 400 and expired.json()["error"]["code"] == "invalid_token"


def test_totp_2fa_with_replay_block_and_recovery_codes(
    client: TestClient, ctx: Context, clock: TestClock
) -> None:
    ctx.clock = clock
    make_user(ctx)
    csrf = login(client, "ada@example.com").json()["csrf_token"]
    h = {"X-CSRF-Token": csrf}
    wrong = client.post(
        "/api/v1/account/2fa/setup", json={"current_password": "nope nope"}, headers=h
    )
    assert wrong.status_code == 401 and wrong.json()["error"]["code"] == "reauth_failed"
    setup = client.post(
        "/api/v1/account/2fa/setup", json={"current_password": PASSWORD}, headers=h
    ).json()
    assert setup["otpauth_uri"].startswith("otpauth://totp/RemoveAny:")
    totp = pyotp.TOTP(setup["secret"])
    bad = client.post("/api/v1/account/2fa/enable", json={"code": "000000"}, headers=h)
    assert bad.status_code == 401
    codes = client.post(
        "/api/v1/account/2fa/enable", json={"code": totp.at(clock.now)}, headers=h
    ).json()["recovery_codes"]
    assert len(codes) == 10 and len(set(codes)) == 10
    sealed = _user(ctx).totp_secret or ""
    assert sealed.startswith("v1:") and setup["secret"] not in sealed  # not stored in clear
    # API keys cannot change how the account signs in.
    key = make_api_key(ctx, _user(ctx))
    no = client.post(
        "/api/v1/account/2fa/disable",
        json={"current_password": PASSWORD},
        headers={"X-Api-Key": key},
    )
    assert no.status_code == 403 and no.json()["error"]["code"] == "session_required"

    client.cookies.clear()
    need = login(client, "ada@example.com")
    assert need.status_code == 401 and need.json()["error"]["code"] == "totp_required"
    clock.now += timedelta(seconds=60)
    code = totp.at(clock.now)
    assert login(client, "ada@example.com", totp_code=code).status_code == 200
    replay = login(client, "ada@example.com", totp_code=code)
    assert replay.status_code == 401 and replay.json()["error"]["code"] == "invalid_totp"
    assert login(client, "ada@example.com", totp_code=codes[0]).status_code == 200
    reused = login(client, "ada@example.com", totp_code=codes[0])
    assert reused.status_code == 401
    overview = client.get("/api/v1/account/security").json()
    assert overview["two_factor"] is True and overview["recovery_codes_left"] == 9
    with ctx.db.transaction() as s:
        stored = [
            c.code_hash
            for c in s.scalars(
                select(
                    __import__("removeany.accounts.models", fromlist=["RecoveryCode"]).RecoveryCode
                )
            )
        ]
    assert all(h.startswith("$argon2id$") for h in stored)


def test_changing_password_or_email_needs_the_current_password(
    client: TestClient, ctx: Context
) -> None:
    make_user(ctx)
    h = {"X-CSRF-Token": login(client, "ada@example.com").json()["csrf_token"]}
    r = client.post(
        "/api/v1/account/password",
        json={"current_password": "wrong one!", "new_password": "another secret"},
        headers=h,
    )
    assert r.status_code == 401 and r.json()["error"]["code"] == "reauth_failed"
    no_csrf = client.post(
        "/api/v1/account/password",
        json={"current_password": PASSWORD, "new_password": "another secret"},
    )
    assert no_csrf.status_code == 403
    r = client.post(
        "/api/v1/account/password",
        json={"current_password": PASSWORD, "new_password": "another secret"},
        headers=h,
    )
    assert r.status_code == 200
    changed = mails(ctx, "ada@example.com")[-1]
    assert "password was changed" in changed["Subject"]
    r = client.post(
        "/api/v1/account/email",
        json={"current_password": PASSWORD, "new_email": "ada@new.example"},
        headers=h,
    )
    assert r.status_code == 401
    r = client.post(
        "/api/v1/account/email",
        json={"current_password": "another secret", "new_email": "ada@new.example"},
        headers=h,
    )
    assert r.status_code == 202
    token = token_of(link_in(ctx, "ada@new.example", "/account/email/confirm"))
    done = client.post("/api/v1/account/email/confirm", json={"token": token})
    assert done.status_code == 200 and done.json()["email"] == "ada@new.example"
    assert "not-me" in mails(ctx, "ada@example.com")[-1].get_body(("plain",)).get_content()


def test_email_change_does_not_reveal_other_accounts(client: TestClient, ctx: Context) -> None:
    """Any signed-in person could ask, address after address, whether it has an account: a
    taken address answered 409 `email_taken`, a free one 202."""
    make_user(ctx)
    make_user(ctx, "bob@example.com")
    h = {"X-CSRF-Token": login(client, "ada@example.com").json()["csrf_token"]}

    def change_to(address: str):  # type: ignore[no-untyped-def]
        body = {"current_password": PASSWORD, "new_email": address}
        return client.post("/api/v1/account/email", json=body, headers=h)

    free, taken = change_to("ada@new.example"), change_to("BOB@example.com")
    assert free.status_code == taken.status_code == 202
    assert taken.json()["message"] == free.json()["message"].replace(
        "ada@new.example", "bob@example.com"
    )
    assert len(mails(ctx, "ada@new.example")) == 1
    assert mails(ctx, "bob@example.com") == []  # nothing to confirm: the address is taken
    own = change_to("ada@example.com")  # saying so tells nothing about others
    assert own.status_code == 409 and own.json()["error"]["code"] == "email_unchanged"


def test_wrong_current_passwords_are_throttled_too(client: TestClient, ctx: Context) -> None:
    ctx.settings.login_failures_per_account = 3
    make_user(ctx)
    h = {"X-CSRF-Token": login(client, "ada@example.com").json()["csrf_token"]}
    body = {"current_password": "guess guess", "new_password": "another secret"}
    for _ in range(3):
        assert client.post("/api/v1/account/password", json=body, headers=h).status_code == 401
    body["current_password"] = PASSWORD
    r = client.post("/api/v1/account/password", json=body, headers=h)
    assert r.status_code == 429 and r.json()["error"]["code"] == "too_many_attempts"
