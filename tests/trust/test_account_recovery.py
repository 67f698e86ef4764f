"""Stopping someone else's use of an account: what a password change, a reset by emailed link
and a report of unauthorized use ("this wasn't me") each revoke, what the owner is told, and
that a stolen session or key cannot lock the owner out — through the real app and database."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pyotp
import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient
from sqlalchemy import select, text

from removeany import i18n
from removeany.accounts import service as accounts
from removeany.accounts.models import KnownDevice, User
from removeany.api.auth import SESSION_COOKIE
from removeany.context import Context
from removeany.infra.db import Database, upgrade
from removeany.mail.models import SENT, OutgoingMail
from removeany.maintenance import run_sweeps
from removeany.moderation import service as moderation
from removeany.moderation.audit import Actor
from tests.conftest import TestClock
from tests.helpers import make_api_key, make_user
from tests.trust.conftest import PASSWORD, body_of, link_in, login, mails, token_of

OWNER = "ada@example.com"
INTRUDER = "mallory@evil.example"
LOCKED_SUBJECT = "Your RemoveAny account is locked"


def _reset_link(client: TestClient, ctx: Context, email: str = OWNER) -> str:
    assert client.post("/api/v1/auth/password-reset", json={"email": email}).status_code == 202
    return token_of(link_in(ctx, email, "/reset-password"))


def _reset(client: TestClient, token: str, password: str):  # type: ignore[no-untyped-def]
    return client.post(
        "/api/v1/auth/password-reset/confirm", json={"token": token, "new_password": password}
    )


def _email_of(ctx: Context, user_id: int) -> str:
    with ctx.db.transaction() as s:
        user = s.get(User, user_id)
        assert user is not None
        return user.email


def test_a_password_change_kills_every_outstanding_reset_link(
    client: TestClient, ctx: Context
) -> None:
    """A link asked for before the change (by the owner, or by someone reading their mail)
    used to work after it, setting the password back to whatever its holder chose."""
    make_user(ctx)
    stale = _reset_link(client, ctx)
    h = {"X-CSRF-Token": login(client, OWNER).json()["csrf_token"]}
    body = {"current_password": PASSWORD, "new_password": "a changed passphrase"}
    assert client.post("/api/v1/account/password", json=body, headers=h).status_code == 200

    r = _reset(client, stale, "the link holder's pick")
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_token"
    assert login(client, OWNER, "a changed passphrase").status_code == 200
    # A link asked for after the change works.
    assert _reset(client, _reset_link(client, ctx), "newer and better").status_code == 200


def test_a_reset_revokes_every_api_key_and_session_and_says_so(
    client: TestClient, ctx: Context
) -> None:
    """Someone who knew the password could make a key; it used to outlive the reset."""
    user = make_user(ctx)
    key = make_api_key(ctx, user)
    assert login(client, OWNER).status_code == 200
    first, second = _reset_link(client, ctx), _reset_link(client, ctx)

    assert _reset(client, second, "only the owner knows").status_code == 200
    assert client.get("/api/v1/me", headers={"X-Api-Key": key}).status_code == 403
    assert client.get("/api/v1/me").status_code == 401
    # One link used kills the others.
    r = _reset(client, first, "a second choice")
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_token"
    notice = body_of(mails(ctx, OWNER)[-1])
    assert "Every browser was signed out and 1 API key was revoked" in notice
    assert "/account/api-keys" in notice and "/account/not-me?token=" in notice


def test_a_report_kills_pending_email_change_and_reset_links(
    client: TestClient, ctx: Context
) -> None:
    """With the password and a session, an intruder asked to move the account to their own
    address; after the owner's report the link still worked, and the owner's reset then
    went nowhere they could read."""
    user = make_user(ctx)
    owner_link = _reset_link(client, ctx)  # asked for before the report
    intruder = TestClient(client.app, headers={"User-Agent": "EvilBrowser/6.6"})
    h = {"X-CSRF-Token": login(intruder, OWNER).json()["csrf_token"]}
    body = {"current_password": PASSWORD, "new_email": INTRUDER}
    assert intruder.post("/api/v1/account/email", json=body, headers=h).status_code == 202
    change = token_of(link_in(ctx, INTRUDER, "/account/email/confirm"))
    # The old address is told at once, with a way to stop it.
    asked = mails(ctx, OWNER)[-1]
    assert "change" in asked["Subject"].lower() and INTRUDER in body_of(asked)
    not_me = token_of(link_in(ctx, OWNER, "/account/not-me"))

    assert client.post("/api/v1/auth/not-me", json={"token": not_me}).status_code == 200
    r = intruder.post("/api/v1/account/email/confirm", json={"token": change})
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_token"
    assert _email_of(ctx, user.id) == OWNER
    r = _reset(client, owner_link, "an old link's pick")
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_token"
    # The link the report mailed unlocks the account.
    fresh = token_of(link_in(ctx, OWNER, "/reset-password"))
    assert _reset(client, fresh, "mine and only mine").status_code == 200
    assert login(client, OWNER, "mine and only mine").status_code == 200


def test_the_old_address_can_undo_an_email_change(client: TestClient, ctx: Context) -> None:
    """After a confirmed change the old address was told, but its "this wasn't me" link
    mailed the reset to the new address: the intruder's. Now it moves the account back."""
    user = make_user(ctx)
    key = make_api_key(ctx, user)
    intruder = TestClient(client.app, headers={"User-Agent": "EvilBrowser/6.6"})
    h = {"X-CSRF-Token": login(intruder, OWNER).json()["csrf_token"]}
    body = {"current_password": PASSWORD, "new_email": INTRUDER}
    assert intruder.post("/api/v1/account/email", json=body, headers=h).status_code == 202
    change = token_of(link_in(ctx, INTRUDER, "/account/email/confirm"))
    assert intruder.post("/api/v1/account/email/confirm", json={"token": change}).status_code == 200
    assert _email_of(ctx, user.id) == INTRUDER
    told = mails(ctx, OWNER)[-1]
    assert "email address was changed" in told["Subject"] and INTRUDER in body_of(told)
    undo = token_of(link_in(ctx, OWNER, "/account/not-me"))
    sent_to_intruder = len(mails(ctx, INTRUDER))

    r = client.post("/api/v1/auth/not-me", json={"token": undo})
    assert r.status_code == 200, r.text
    assert OWNER in r.json()["message"]
    assert _email_of(ctx, user.id) == OWNER
    assert intruder.get("/api/v1/me").status_code == 401
    assert client.get("/api/v1/me", headers={"X-Api-Key": key}).status_code == 403
    assert len(mails(ctx, INTRUDER)) == sent_to_intruder  # nothing more goes there
    locked = login(intruder, INTRUDER)
    assert locked.status_code == 401  # that address no longer reaches the account
    reset = token_of(link_in(ctx, OWNER, "/reset-password"))
    assert _reset(client, reset, "back in my hands").status_code == 200
    assert login(client, OWNER, "back in my hands").status_code == 200


def test_recovery_emails_are_written_with_the_change_in_the_owners_language(
    client: TestClient, ctx: Context
) -> None:
    """Every email of the recovery flows is an outbox row of the transaction that caused it,
    in the owner's stored language whatever the request's: the paragraph saying what a reset
    or a password change also did was written in the request's language (English here) inside
    an otherwise Chinese email."""
    user = make_user(ctx)
    with ctx.db.transaction() as s:
        row = s.get(User, user.id)
        assert row is not None
        row.locale = "zh-CN"

    def zh(text: str, **values: object) -> str:
        return i18n.translate(text, "zh-CN").format(**values)

    intruder = TestClient(client.app, headers={"User-Agent": "EvilBrowser/6.6"})
    h = {"X-CSRF-Token": login(intruder, OWNER).json()["csrf_token"]}
    body = {"current_password": PASSWORD, "new_email": INTRUDER}
    assert intruder.post("/api/v1/account/email", json=body, headers=h).status_code == 202
    asked = mails(ctx, OWNER)[-1]
    assert asked["Subject"] == zh("Someone asked to change your RemoveAny email address")
    change = token_of(link_in(ctx, INTRUDER, "/account/email/confirm"))
    assert intruder.post("/api/v1/account/email/confirm", json={"token": change}).status_code == 200
    moved = body_of(mails(ctx, OWNER)[-1])
    assert zh("If you made this change, you can ignore this message.") in moved
    undo = token_of(link_in(ctx, OWNER, "/account/not-me"))

    assert client.post("/api/v1/auth/not-me", json={"token": undo}).status_code == 200
    (locked,) = [m for m in mails(ctx, OWNER) if m["Subject"] == zh(LOCKED_SUBJECT)]
    assert zh("The account uses this address again, instead of {address}.", address=INTRUDER) in (
        body_of(locked)
    )
    reset = token_of(link_in(ctx, OWNER, "/reset-password"))
    assert _reset(client, reset, "back in my hands").status_code == 200
    done = body_of(mails(ctx, OWNER)[-1])
    assert zh("Every browser was signed out.") in done
    assert "Every browser was signed out." not in done

    h = {"X-CSRF-Token": login(client, OWNER, "back in my hands").json()["csrf_token"]}
    body = {"current_password": "back in my hands", "new_password": "changed once more"}
    assert client.post("/api/v1/account/password", json=body, headers=h).status_code == 200
    changed = body_of(mails(ctx, OWNER)[-1])
    assert "Your API keys still work" not in changed
    assert "/account/api-keys" in changed and "/account/not-me?token=" in changed

    with ctx.db.transaction() as s:
        rows = s.scalars(select(OutgoingMail).where(OutgoingMail.user_id == user.id)).all()
        assert {m.to_address for m in rows} == {OWNER, INTRUDER}
        assert all(m.status == SENT for m in rows)
        assert len(rows) == len(mails(ctx, OWNER)) + len(mails(ctx, INTRUDER))


def test_a_report_says_what_was_revoked_and_forgets_known_devices(
    client: TestClient, ctx: Context
) -> None:
    """The intruder's browser became a known device, so its next sign-in would pass
    without an alert; and the owner learnt what was revoked only in general terms."""
    user = make_user(ctx)
    make_api_key(ctx, user)
    make_api_key(ctx, user)
    assert login(client, OWNER).status_code == 200
    intruder = TestClient(client.app, headers={"User-Agent": "EvilBrowser/6.6"})
    assert login(intruder, OWNER).status_code == 200
    not_me = token_of(link_in(ctx, OWNER, "/account/not-me"))

    assert client.post("/api/v1/auth/not-me", json={"token": not_me}).status_code == 200
    with ctx.db.transaction() as s:
        assert s.scalars(select(KnownDevice).where(KnownDevice.user_id == user.id)).all() == []
    (locked,) = [m for m in mails(ctx, OWNER) if m["Subject"] == LOCKED_SUBJECT]
    text = body_of(locked)
    assert "2 browser sessions were signed out" in text
    assert "2 API keys were revoked" in text
    assert "turn on two-factor authentication" in text.lower()


def test_two_factor_an_intruder_turned_on_does_not_survive_the_report(
    client: TestClient, ctx: Context, clock: TestClock
) -> None:
    """With the password, an intruder turned on 2FA with their own app: after the owner's
    report and reset, every sign-in asked for a code only the intruder had."""
    ctx.clock = clock
    make_user(ctx)
    intruder = TestClient(client.app, headers={"User-Agent": "EvilBrowser/6.6"})
    h = {"X-CSRF-Token": login(intruder, OWNER).json()["csrf_token"]}
    setup = intruder.post(
        "/api/v1/account/2fa/setup", json={"current_password": PASSWORD}, headers=h
    ).json()
    code = pyotp.TOTP(setup["secret"]).at(clock.now)
    assert intruder.post("/api/v1/account/2fa/enable", json={"code": code}, headers=h).is_success
    told = mails(ctx, OWNER)[-1]
    assert "two-factor authentication was changed" in told["Subject"]
    not_me = token_of(link_in(ctx, OWNER, "/account/not-me"))

    clock.now += timedelta(minutes=5)
    assert client.post("/api/v1/auth/not-me", json={"token": not_me}).status_code == 200
    locked = next(
        m for m in mails(ctx, OWNER) if m["Subject"] == "Your RemoveAny account is locked"
    )
    assert "Two-factor authentication was turned off" in body_of(locked)
    reset = token_of(link_in(ctx, OWNER, "/reset-password"))
    assert _reset(client, reset, "my own again").status_code == 200
    assert login(client, OWNER, "my own again").status_code == 200


def test_the_owners_own_two_factor_survives_a_report_but_new_recovery_codes_do_not(
    client: TestClient, ctx: Context, clock: TestClock
) -> None:
    """2FA on before the reported sign-in is the owner's: a report keeps it. Recovery codes
    made since (by whoever was signed in) used to keep working as a second factor."""
    ctx.clock = clock
    make_user(ctx)
    h = {"X-CSRF-Token": login(client, OWNER).json()["csrf_token"]}
    setup = client.post(
        "/api/v1/account/2fa/setup", json={"current_password": PASSWORD}, headers=h
    ).json()
    totp = pyotp.TOTP(setup["secret"])
    body = {"code": totp.at(clock.now)}
    assert client.post("/api/v1/account/2fa/enable", json=body, headers=h).is_success
    clock.now += timedelta(minutes=5)
    intruder = TestClient(client.app, headers={"User-Agent": "EvilBrowser/6.6"})
    signed = login(intruder, OWNER, totp_code=totp.at(clock.now))
    not_me = token_of(link_in(ctx, OWNER, "/account/not-me"))
    stolen = intruder.post(
        "/api/v1/account/2fa/recovery-codes",
        json={"current_password": PASSWORD},
        headers={"X-CSRF-Token": signed.json()["csrf_token"]},
    ).json()["recovery_codes"]

    clock.now += timedelta(minutes=5)
    assert client.post("/api/v1/auth/not-me", json={"token": not_me}).status_code == 200
    (locked,) = [m for m in mails(ctx, OWNER) if m["Subject"] == LOCKED_SUBJECT]
    assert "Recovery codes made after" in body_of(locked)
    reset = token_of(link_in(ctx, OWNER, "/reset-password"))
    assert _reset(client, reset, "my own again").status_code == 200
    need = login(client, OWNER, "my own again")
    assert need.status_code == 401 and need.json()["error"]["code"] == "totp_required"
    refused = login(client, OWNER, "my own again", totp_code=stolen[0])
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "invalid_totp"
    clock.now += timedelta(minutes=1)
    assert login(client, OWNER, "my own again", totp_code=totp.at(clock.now)).status_code == 200


def test_sessions_die_with_the_password_they_were_started_with(
    client: TestClient, ctx: Context
) -> None:
    """A session lived until something remembered to revoke it; a password written by any
    other path (an operator's tool, a future flow) left every browser signed in. Now a
    session is bound to the password it was started with. Re-hashing the same password at
    sign-in (when the hashing parameters change) keeps the account's other sessions."""
    user = make_user(ctx)
    phone = TestClient(client.app, headers={"User-Agent": "Phone/1.0"})
    with ctx.db.transaction() as s:  # signed in while the hash had older parameters
        row = s.get(User, user.id)
        assert row is not None
        row.password_hash = PasswordHasher(time_cost=1).hash(PASSWORD)
        token, _ = accounts.start_session(
            s, row, now=ctx.now(), days=1, user_agent="Phone/1.0", ip="10.0.0.2"
        )
    phone.cookies.set(SESSION_COOKIE, token)
    assert phone.get("/api/v1/me").status_code == 200
    assert login(client, OWNER).status_code == 200  # re-hashes with today's parameters
    assert phone.get("/api/v1/me").status_code == 200
    laptop = TestClient(client.app, headers={"User-Agent": "Laptop/1.0"})
    assert login(laptop, OWNER).status_code == 200

    with ctx.db.transaction() as s:
        row = s.get(User, user.id)
        assert row is not None
        row.password_hash = PasswordHasher().hash("set by some other path")
    for browser in (client, phone, laptop):
        assert browser.get("/api/v1/me").status_code == 401


def _moved_by_intruder(client: TestClient, ctx: Context) -> tuple[TestClient, str]:
    """An intruder with the password moves the account to INTRUDER; returns their browser
    and the undo token mailed to OWNER."""
    intruder = TestClient(client.app, headers={"User-Agent": "EvilBrowser/6.6"})
    h = {"X-CSRF-Token": login(intruder, OWNER).json()["csrf_token"]}
    body = {"current_password": PASSWORD, "new_email": INTRUDER}
    assert intruder.post("/api/v1/account/email", json=body, headers=h).status_code == 202
    change = token_of(link_in(ctx, INTRUDER, "/account/email/confirm"))
    assert intruder.post("/api/v1/account/email/confirm", json={"token": change}).is_success
    return intruder, token_of(link_in(ctx, OWNER, "/account/not-me"))


def test_squatting_the_old_address_does_not_block_the_undo(
    client: TestClient, ctx: Context
) -> None:
    """After moving the account, the intruder signed up with the old address (or moved
    another account of theirs to it): the undo then answered 409 email_taken and the owner
    could not get the account back. The old address is now reserved for the account while
    the undo works; sign-up answers as for a taken address, without saying why, and only
    the mailbox is told."""
    user = make_user(ctx)
    intruder, undo = _moved_by_intruder(client, ctx)
    squat = {"email": OWNER, "password": "squatting on it", "accept_terms": True}
    fresh = {"email": "nobody@example.com", "password": "squatting on it", "accept_terms": True}
    r = client.post("/api/v1/auth/register", json=squat)
    made = client.post("/api/v1/auth/register", json=fresh)
    assert r.status_code == made.status_code == 202
    assert r.json()["message"] == made.json()["message"].replace("nobody@example.com", OWNER)
    told = mails(ctx, OWNER)[-1]
    assert "no new account was made" in body_of(told) and "/verify" not in body_of(told)
    with ctx.db.transaction() as s:
        assert s.scalar(select(User).where(User.email == OWNER)) is None
    # Another account of the intruder's cannot move there either: same answer, no link.
    make_user(ctx, "second@evil.example")
    other = TestClient(client.app)
    h = {"X-CSRF-Token": login(other, "second@evil.example").json()["csrf_token"]}
    body = {"current_password": PASSWORD, "new_email": OWNER}
    assert other.post("/api/v1/account/email", json=body, headers=h).status_code == 202
    assert not [m for m in mails(ctx, OWNER) if "/account/email/confirm" in body_of(m)]
    sent_to_intruder = len(mails(ctx, INTRUDER))

    r = client.post("/api/v1/auth/not-me", json={"token": undo})
    assert r.status_code == 200, r.text
    assert _email_of(ctx, user.id) == OWNER
    assert intruder.get("/api/v1/me").status_code == 401
    assert len(mails(ctx, INTRUDER)) == sent_to_intruder
    reset = token_of(link_in(ctx, OWNER, "/reset-password"))
    assert _reset(client, reset, "back in my hands").status_code == 200
    assert login(client, OWNER, "back in my hands").status_code == 200


def test_the_undo_wins_over_an_unconfirmed_account_holding_the_old_address(
    client: TestClient, ctx: Context
) -> None:
    """An account that took the address without confirming it (made before addresses were
    reserved, or in a race) is erased by the undo, which proves the mailbox is the owner's;
    a confirmed one still refuses it with 409 email_taken, the account locked all the same
    and nothing mailed to the address the intruder set."""
    user = make_user(ctx)
    _, undo = _moved_by_intruder(client, ctx)
    with ctx.db.transaction() as s:  # as if the reservation had not been there
        s.execute(text("DELETE FROM email_reservations"))
        squatter = accounts.create_user(s, OWNER, "squatting on it", now=ctx.now())
        squatter_id = squatter.id

    assert client.post("/api/v1/auth/not-me", json={"token": undo}).status_code == 200
    assert _email_of(ctx, user.id) == OWNER
    with ctx.db.transaction() as s:
        gone = s.get(User, squatter_id)
        assert gone is not None and gone.status == "deleted"


def test_an_undo_whose_address_a_confirmed_account_holds_locks_and_mails_the_intruder_nothing(
    client: TestClient, ctx: Context
) -> None:
    user = make_user(ctx)
    intruder, undo = _moved_by_intruder(client, ctx)
    with ctx.db.transaction() as s:
        s.execute(text("DELETE FROM email_reservations"))
    make_user(ctx, OWNER)  # confirmed
    sent_to_intruder = len(mails(ctx, INTRUDER))

    r = client.post("/api/v1/auth/not-me", json={"token": undo})
    assert r.status_code == 409 and r.json()["error"]["code"] == "email_taken"
    assert "operator" in r.json()["error"]["message"]
    assert _email_of(ctx, user.id) == INTRUDER
    assert intruder.get("/api/v1/me").status_code == 401
    assert len(mails(ctx, INTRUDER)) == sent_to_intruder
    locked = login(intruder, INTRUDER)
    assert locked.status_code == 403 and locked.json()["error"]["code"] == "account_locked"


def test_the_reservation_ends_with_the_undo_window(
    client: TestClient, ctx: Context, clock: TestClock
) -> None:
    """After 14 days the old address is free again, and the sweep forgets it."""
    ctx.clock = clock
    make_user(ctx)
    _moved_by_intruder(client, ctx)
    squat = {"email": OWNER, "password": "a later account", "accept_terms": True}
    clock.now += timedelta(days=14, minutes=1)
    run_sweeps(ctx)
    with ctx.db.transaction() as s:
        assert s.scalars(text("SELECT address FROM email_reservations")).all() == []
    assert client.post("/api/v1/auth/register", json=squat).status_code == 202
    with ctx.db.transaction() as s:
        assert s.scalar(select(User).where(User.email == OWNER)) is not None


def test_a_reserved_address_is_in_the_export_and_goes_with_the_account(
    client: TestClient, ctx: Context
) -> None:
    """The reservation keeps the old address: the person's data, exported and erased."""
    make_user(ctx)
    intruder, _ = _moved_by_intruder(client, ctx)
    h = {"X-CSRF-Token": login(intruder, INTRUDER).json()["csrf_token"]}
    export = intruder.get("/api/v1/account/export", headers=h)
    with zipfile.ZipFile(io.BytesIO(export.content)) as archive:
        record = json.loads(archive.read("account.json"))
    assert [r["address"] for r in record["reserved_addresses"]] == [OWNER]
    r = intruder.post("/api/v1/account/delete", json={"current_password": PASSWORD}, headers=h)
    assert r.status_code == 200
    with ctx.db.transaction() as s:
        assert s.scalars(text("SELECT address FROM email_reservations")).all() == []


def test_a_banned_account_cannot_confirm_an_email_change(client: TestClient, ctx: Context) -> None:
    """The confirmation link checked the link, not the account: banned after asking, the
    account still moved to the new address."""
    user = make_user(ctx)
    h = {"X-CSRF-Token": login(client, OWNER).json()["csrf_token"]}
    body = {"current_password": PASSWORD, "new_email": INTRUDER}
    assert client.post("/api/v1/account/email", json=body, headers=h).status_code == 202
    change = token_of(link_in(ctx, INTRUDER, "/account/email/confirm"))
    with ctx.db.transaction() as s:
        row = s.get(User, user.id)
        assert row is not None
        moderation.ban(s, Actor(None, "operator"), row, "abuse", now=ctx.now())

    r = client.post("/api/v1/account/email/confirm", json={"token": change})
    assert r.status_code == 403 and r.json()["error"]["code"] == "account_banned"
    assert _email_of(ctx, user.id) == OWNER


def test_known_devices_are_forgotten_after_days_unseen(
    client: TestClient, ctx: Context, clock: TestClock
) -> None:
    """A device's browser and IP were kept as long as the account: the sweep now forgets one
    not seen for KNOWN_DEVICE_DAYS, and a sign-in from it is announced again; one seen since
    stays. Forgetting every device does not silence the alert for the next sign-in."""
    ctx.clock = clock
    make_user(ctx)
    laptop = TestClient(client.app, headers={"User-Agent": "Laptop/1.0"})
    phone = TestClient(client.app, headers={"User-Agent": "Phone/2.0"})
    assert login(laptop, OWNER).json()["new_device"] is False  # the first sign-in
    assert login(phone, OWNER).json()["new_device"] is True
    days = ctx.settings.known_device_days
    clock.now += timedelta(days=days - 1)
    assert login(laptop, OWNER).json()["new_device"] is False
    clock.now += timedelta(days=2)
    run_sweeps(ctx)
    with ctx.db.transaction() as s:
        kept = s.scalars(select(KnownDevice.user_agent)).all()
    assert kept == ["Laptop/1.0"]
    alerts = len(mails(ctx, OWNER))
    assert login(phone, OWNER).json()["new_device"] is True
    assert "New sign-in" in mails(ctx, OWNER)[alerts]["Subject"]

    clock.now += timedelta(days=days + 1)  # neither seen since: both forgotten
    run_sweeps(ctx)
    with ctx.db.transaction() as s:
        assert s.scalars(select(KnownDevice)).all() == []
    intruder = TestClient(client.app, headers={"User-Agent": "EvilBrowser/6.6"})
    assert login(intruder, OWNER).json()["new_device"] is True


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_upgrading_keeps_alerts_for_accounts_that_signed_in_before(
    backend: str, database_before: Callable[[str, str], str]
) -> None:
    """An account with a known device has signed in: the upgrade records when first, so a
    sign-in after its devices are forgotten is still announced; one without stays unset."""
    url = database_before(backend, "0013_admins_named_by_id")
    db = Database(url)
    first = datetime(2026, 3, 1, tzinfo=UTC)
    try:
        with db.transaction() as s:
            for email in ("ada@example.com", "new@example.com"):
                s.execute(
                    text(
                        "INSERT INTO users (email, password_hash, is_admin, created_at, status) "
                        "VALUES (:email, '!', false, :at, 'active')"
                    ),
                    {"email": email, "at": first},
                )
            s.execute(
                text(
                    "INSERT INTO known_devices (user_id, fingerprint, user_agent, ip, "
                    "first_seen_at, last_seen_at) SELECT id, fp, 'B', '192.0.2.1', at, at "
                    "FROM users, (SELECT 'a' AS fp, :first AS at UNION ALL "
                    "SELECT 'b', :later) AS d WHERE email = 'ada@example.com'"
                ),
                {"first": first, "later": first + timedelta(days=3)},
            )
        upgrade(url)
        with db.transaction() as s:
            found = {u.email: u.first_signed_in_at for u in s.scalars(select(User))}
        assert found == {"ada@example.com": first, "new@example.com": None}
    finally:
        db.dispose()
