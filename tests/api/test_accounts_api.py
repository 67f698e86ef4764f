"""Register, verify by emailed link, free credits, API keys — through the JSON API."""

from __future__ import annotations

import email
import email.policy
import re
from datetime import timedelta

from fastapi.testclient import TestClient

from removeany.accounts import service as accounts
from removeany.context import Context


def verification_link(ctx: Context, to: str) -> str:
    for path in sorted(ctx.settings.outbox_dir.glob("*.eml")):
        msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        if msg["To"] == to:
            body = msg.get_body(preferencelist=("plain",))
            assert body is not None
            match = re.search(r"https?://\S+/verify\?token=\S+", body.get_content())
            assert match, "the email has no verification link"
            return match.group(0)
    raise AssertionError(f"no email to {to} in {ctx.settings.outbox_dir}")


def register_and_verify(client: TestClient, ctx: Context, address: str) -> None:
    response = client.post(
        "/api/v1/auth/register", json={"email": address, "password": "correct horse battery"}
    )
    assert response.status_code == 202, response.text
    token = verification_link(ctx, address.lower()).split("token=", 1)[1]
    response = client.post("/api/v1/auth/verify", json={"token": token})
    assert response.status_code == 200 and response.json()["verified"] is True


def test_verification_grants_free_credits_once(client: TestClient, ctx: Context) -> None:
    register_and_verify(client, ctx, "Grace@Example.com")
    token = verification_link(ctx, "grace@example.com").split("token=", 1)[1]
    assert client.post("/api/v1/auth/verify", json={"token": token}).status_code == 200
    with ctx.db.transaction() as s:
        user = accounts.authenticate(s, "grace@example.com", "correct horse battery")
        key = accounts.create_api_key(s, user, "k", now=ctx.now())[0]
    credits = client.get("/api/v1/credits", headers={"X-Api-Key": key}).json()
    assert credits["available"] == ctx.settings.signup_credits == 10
    (lot,) = credits["lots"]
    assert lot["source"] == "signup"
    expires = lot["expires_at"].replace("Z", "+00:00")
    from datetime import datetime

    assert datetime.fromisoformat(expires) - ctx.now() > timedelta(days=29)


def messages_to(ctx: Context, to: str) -> list[email.message.EmailMessage]:
    found = []
    for path in sorted(ctx.settings.outbox_dir.glob("*.eml"), key=lambda p: p.stat().st_mtime_ns):
        msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        if msg["To"] == to:
            assert isinstance(msg, email.message.EmailMessage)
            found.append(msg)
    return found


def test_duplicate_email_weak_password_and_bad_token(client: TestClient, ctx: Context) -> None:
    register_and_verify(client, ctx, "lin@example.com")
    fresh = client.post(
        "/api/v1/auth/register", json={"email": "new@example.com", "password": "another long one"}
    )
    # A taken address (another spelling of it, a Host header of someone else's) gets the
    # answer a new one gets: sign-up does not tell who has an account here.
    again = client.post(
        "/api/v1/auth/register",
        json={"email": "LIN@example.com", "password": "another long one"},
        headers={"Host": "evil.example"},
    )
    assert again.status_code == fresh.status_code == 202
    assert again.json() == {
        "ok": True,
        "message": fresh.json()["message"].replace("new@example.com", "lin@example.com"),
    }
    # Its owner is told instead, with links built from the configured address; nothing
    # about the account changed.
    (notice,) = messages_to(ctx, "lin@example.com")[1:]
    assert notice["Subject"] == "Someone tried to sign up with your email address"
    body = notice.get_body(("plain",))
    assert body is not None
    text = body.get_content()
    assert "http://testserver/login" in text and "http://testserver/forgot-password" in text
    assert "evil.example" not in text and "/verify?token=" not in text
    with ctx.db.transaction() as s:
        assert accounts.authenticate(s, "lin@example.com", "correct horse battery").is_verified
    # No mail bombing through sign-up: a few notices per address per window.
    for _ in range(4):
        client.post(
            "/api/v1/auth/register", json={"email": "lin@example.com", "password": "another one"}
        )
    assert len(messages_to(ctx, "lin@example.com")) == 1 + 3
    weak = client.post(
        "/api/v1/auth/register", json={"email": "x@example.com", "password": "short"}
    )
    assert weak.status_code == 400 and weak.json()["error"]["code"] == "weak_password"
    bad = client.post("/api/v1/auth/verify", json={"token": "forged.token"})
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_token"


def test_unverified_users_cannot_make_keys_or_jobs(client: TestClient, ctx: Context) -> None:
    client.post("/api/v1/auth/register", json={"email": "u@example.com", "password": "long enough"})
    with ctx.db.transaction() as s:
        user = accounts.authenticate(s, "u@example.com", "long enough")
        try:
            accounts.create_api_key(s, user, "k", now=ctx.now())
        except accounts.EmailNotVerified as exc:
            assert exc.status_code == 403
        else:
            raise AssertionError("an unverified user got an API key")


def test_api_keys_are_shown_once_hashed_and_revocable(client: TestClient, ctx: Context) -> None:
    """Keys are made and revoked by the signed-in owner; a key itself can do neither (a leaked
    key could otherwise mint one that outlives its own revocation)."""
    from tests.helpers import make_api_key, make_user

    key = make_api_key(ctx, make_user(ctx))
    headers = {"X-Api-Key": key}
    refused = client.post("/api/v1/api-keys", headers=headers, json={"name": "minted"})
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "session_required"
    signed_in = client.post(
        "/api/v1/auth/login", json={"email": "ada@example.com", "password": "correct horse battery"}
    )
    browser = {"X-CSRF-Token": signed_in.json()["csrf_token"]}
    created = client.post("/api/v1/api-keys", headers=browser, json={"name": "laptop"}).json()
    assert created["key"].startswith("rak_") and created["prefix"] == created["key"][:12]
    listed = client.get("/api/v1/api-keys", headers=headers).json()
    assert {k["name"] for k in listed} == {"test", "laptop"}
    assert all("key" not in k for k in listed)
    assert all(k["last_used_at"] is not None for k in listed if k["name"] == "test")
    from removeany.accounts.models import ApiKey

    with ctx.db.transaction() as s:
        hashes = [k.key_hash for k in s.query(ApiKey).all()]
    assert created["key"] not in hashes and key not in hashes
    by_key = client.delete(f"/api/v1/api-keys/{created['id']}", headers=headers)
    assert by_key.status_code == 403 and by_key.json()["error"]["code"] == "session_required"
    revoked = client.delete(f"/api/v1/api-keys/{created['id']}", headers=browser)
    assert revoked.status_code == 200 and revoked.json()["revoked_at"] is not None
    assert client.get("/api/v1/me", headers={"X-Api-Key": created["key"]}).status_code == 403
    client.post("/api/v1/auth/logout", headers=browser)
    assert client.get("/api/v1/me").status_code == 401
