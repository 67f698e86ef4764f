"""Item 2: see and revoke sessions and API keys; email on a new device and on credential
changes; "this wasn't me" locks the account, revokes everything and starts a reset."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient

from removeany.accounts.models import User
from removeany.context import Context
from removeany.jobs import service as jobs
from removeany.jobs import worker
from removeany.jobs.models import Job
from removeany.maintenance import run_sweeps
from tests.batches._images import photo_paths, small_photo
from tests.batches._ledger import audit
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


def test_this_wasnt_me_stops_the_work_waiting_in_the_queue(
    client: TestClient, ctx: Context
) -> None:
    """An intruder's batch kept running after the owner's report (9 of 12 photos started
    after the lock, all charged to the owner): the report cancels every job that has not
    started, uncharged, and the workers take none of a locked account's jobs."""
    user = make_user(ctx, credits=10)
    assert login(client, "ada@example.com").status_code == 200
    intruder = TestClient(client.app, headers={"User-Agent": "EvilBrowser/6.6"})
    csrf = login(intruder, "ada@example.com").json()["csrf_token"]
    photo = small_photo(photo_paths(1)[0], 120)
    ctx.stopping.set()  # the workers are busy: nothing starts before the report
    try:
        batch = intruder.post(
            "/api/v1/batches",
            headers={"X-CSRF-Token": csrf},
            files=[("files", (f"{n}.jpg", photo)) for n in range(3)],
        )
        assert batch.status_code == 202, batch.text
        not_me = token_of(link_in(ctx, "ada@example.com", "/account/not-me"))
        assert client.post("/api/v1/auth/not-me", json={"token": not_me}).status_code == 200
        # submitted in the same moment (the routes refuse a locked account's sessions first)
        with ctx.db.transaction() as session:
            owner = session.get(User, user.id)
            assert owner is not None
            late = jobs.submit(
                session,
                ctx.storage,
                owner,
                service="remove_background",
                options={"size": "full", "format": "png"},
                original=photo,
                input_name="late.jpg",
                width=120,
                height=80,
                now=ctx.now(),
                reserve_ttl=timedelta(hours=1),
            ).id
    finally:
        ctx.stopping.clear()
    assert worker.claim_next(ctx) is None
    run_sweeps(ctx)
    ledger = audit(ctx, user.id)
    assert ledger["statuses"] == {"cancelled": 4}
    jobs_now: dict[str, Job] = ledger["jobs"]  # type: ignore[assignment]
    assert {job.error_code for job in jobs_now.values()} == {"account_locked"}
    assert "report of unauthorized use" in (jobs_now[late].error_message or "")
    assert ledger["captured"] == 0 and ledger["held"] == 0 and ledger["available"] == 10
