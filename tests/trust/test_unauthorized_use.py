"""Item 2: see and revoke sessions and API keys; email on a new device and on credential
changes; "this wasn't me" locks the account, revokes everything and starts a reset."""

from __future__ import annotations

from fastapi.testclient import TestClient

from removeany.context import Context
from tests.helpers import make_api_key, make_user
from tests.trust.conftest import PASSWORD, body_of, link_in, login, mails, token_of


def test_sessions_and_keys_are_listed_with_last_use_and_revocable(
    client: TestClient, ctx: Context
) -> None:
    user = make_user(ctx)
    key = make_api_key(ctx, user)
    assert client.get("/api/v1/me", headers={"X-Api-Key": key}).status_code == 200
    phone = TestClient(client.app, headers={"User-Agent": "Phone/1.0"})
    assert login(phone, "ada@example.com").status_code == 200
    csrf = login(client, "ada@example.com").json()["csrf_token"]
    overview = client.get("/api/v1/account/security").json()
    assert len(overview["sessions"]) == 2
    (mine,) = [s for s in overview["sessions"] if s["current"]]
    (other,) = [s for s in overview["sessions"] if not s["current"]]
    assert other["user_agent"] == "Phone/1.0" and other["last_seen_at"]
    (listed_key,) = overview["api_keys"]
    assert listed_key["last_used_at"] is not None
    # A key cannot sign its owner out (a leaked one would lock them out of their own sessions).
    r = client.delete(f"/api/v1/account/sessions/{other['id']}", headers={"X-Api-Key": key})
    assert r.status_code == 403 and r.json()["error"]["code"] == "session_required"
    r = client.delete(f"/api/v1/account/sessions/{other['id']}", headers={"X-CSRF-Token": csrf})
    assert r.status_code == 200
    assert phone.get("/api/v1/me").status_code == 401
    assert client.get("/api/v1/me").status_code == 200
    r = client.delete(f"/api/v1/api-keys/{listed_key['id']}", headers={"X-CSRF-Token": csrf})
    assert r.status_code == 200
    assert client.get("/api/v1/me", headers={"X-Api-Key": key}).status_code == 403
    assert mine["id"] != other["id"]


def test_new_device_email_and_this_wasnt_me(client: TestClient, ctx: Context) -> None:
    user = make_user(ctx)
    key = make_api_key(ctx, user)
    assert login(client, "ada@example.com").status_code == 200  # first device: no alert
    assert mails(ctx, "ada@example.com") == []
    assert login(client, "ada@example.com").status_code == 200  # same device: no alert
    intruder = TestClient(client.app, headers={"User-Agent": "EvilBrowser/6.6"})
    r = login(intruder, "ada@example.com")
    assert r.status_code == 200 and r.json()["new_device"] is True
    (alert,) = mails(ctx, "ada@example.com")
    assert "New sign-in" in alert["Subject"] and "EvilBrowser/6.6" in body_of(alert)
    not_me = token_of(link_in(ctx, "ada@example.com", "/account/not-me"))

    r = client.post("/api/v1/auth/not-me", json={"token": not_me})
    assert r.status_code == 200, r.text
    # Everyone is out, keys are dead, sign-in is refused until a reset.
    assert intruder.get("/api/v1/me").status_code == 401
    assert client.get("/api/v1/me").status_code == 401
    assert client.get("/api/v1/me", headers={"X-Api-Key": key}).status_code == 403
    locked = login(intruder, "ada@example.com")
    assert locked.status_code == 403 and locked.json()["error"]["code"] == "account_locked"
    subjects = [m["Subject"] for m in mails(ctx, "ada@example.com")]
    assert "Your RemoveAny account is locked" in subjects
    reset = token_of(link_in(ctx, "ada@example.com", "/reset-password"))
    r = client.post(
        "/api/v1/auth/password-reset/confirm",
        json={"token": reset, "new_password": "only I know this one"},
    )
    assert r.status_code == 200
    assert login(intruder, "ada@example.com").status_code == 401
    assert login(client, "ada@example.com", "only I know this one").status_code == 200
    assert login(client, "ada@example.com", PASSWORD).status_code == 401


def test_forged_not_me_link_does_nothing(client: TestClient, ctx: Context) -> None:
    make_user(ctx)
    r = client.post("/api/v1/auth/not-me", json={"token": "forged.token.value"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_token"
    assert login(client, "ada@example.com").status_code == 200


def test_new_api_key_is_announced_by_email(client: TestClient, ctx: Context) -> None:
    make_user(ctx)
    csrf = login(client, "ada@example.com").json()["csrf_token"]
    r = client.post("/api/v1/api-keys", headers={"X-CSRF-Token": csrf}, json={"name": "robot"})
    assert r.status_code == 201
    (mail,) = mails(ctx, "ada@example.com")
    assert "API key" in mail["Subject"] and '"robot"' in body_of(mail)
    assert "/account/not-me?token=" in body_of(mail)
