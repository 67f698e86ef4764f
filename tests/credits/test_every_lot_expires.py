"""The terms say credits expire: an administrator's grant lasts the days named, else the
operator's REMOVEANY_ADMIN_CREDIT_DAYS; lots from before that rule get the default from the
migration on."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from alembic import command
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from removeany.accounts.models import User
from removeany.context import Context
from removeany.credits.models import CreditLot
from removeany.infra.db import alembic_config, upgrade
from tests.api.conftest import client
from tests.conftest import TestClock
from tests.helpers import make_api_key, make_user
from tests.trust.test_pages import form_token, web_login


def _make_admin(ctx: Context) -> User:
    admin = make_user(ctx, "root@example.com", credits=0)
    with ctx.db.transaction() as s:
        row = s.get(User, admin.id)
        assert row is not None
        row.is_admin = True
    return admin


def _lot_expiries(ctx: Context, user_id: int) -> list[datetime]:
    with ctx.db.transaction() as s:
        lots = s.query(CreditLot).filter_by(user_id=user_id).order_by(CreditLot.id)
        return [lot.expires_at for lot in lots]


def test_admin_grants_expire_after_the_days_given_or_the_operators_default(
    client: TestClient, ctx: Context, clock: TestClock
) -> None:
    ctx.clock = clock
    ctx.settings.admin_credit_days = 90
    admin_key = make_api_key(ctx, _make_admin(ctx))
    user = make_user(ctx, "eve@example.com", credits=0)
    for body, days in (
        ({"amount": 7, "reason": "goodwill"}, 90),
        ({"amount": 3, "reason": "goodwill", "days": 10}, 10),
    ):
        r = client.post(
            f"/api/v1/admin/users/{user.id}/credits", json=body, headers={"X-Api-Key": admin_key}
        )
        assert r.status_code == 200, r.text
        # The answer says when the new lot expires, so the admin need not work it out.
        granted = r.json()["granted"]
        assert granted["amount"] == body["amount"]
        assert datetime.fromisoformat(granted["expires_at"]) == clock.now + timedelta(days=days)
    revoked = client.post(
        f"/api/v1/admin/users/{user.id}/credits",
        json={"amount": -1, "reason": "typo"},
        headers={"X-Api-Key": admin_key},
    )
    assert revoked.status_code == 200 and revoked.json()["granted"] is None
    schema = client.get("/api/openapi.json").json()["components"]["schemas"]
    assert "expires_at" in schema["GrantedLotOut"]["properties"]

    # The admin console's form says how long a grant lasts, the default filled in.
    assert web_login(client, "root@example.com").status_code == 303
    page = client.get("/admin", params={"q": "eve"}).text
    assert "Granted credits expire after (days)" in page
    assert (
        f'id="days-{user.id}" name="days" type="text" inputmode="numeric" size="4" value="90"'
        in page
    )
    token = form_token(page)
    for days in ("", "5"):
        done = client.post(
            f"/admin/users/{user.id}",
            data={
                "action": "credits",
                "amount": "2",
                "days": days,
                "reason": "goodwill",
                "csrf_token": token,
            },
            follow_redirects=False,
        )
        assert done.status_code == 303, done.text
    refused = client.post(
        f"/admin/users/{user.id}",
        data={
            "action": "credits",
            "amount": "2",
            "days": "soon",
            "reason": "goodwill",
            "csrf_token": token,
        },
    )
    assert refused.status_code == 400
    assert "Enter how many days the credits last, e.g. 365." in refused.text

    now = clock.now
    assert _lot_expiries(ctx, user.id) == [
        now + timedelta(days=90),
        now + timedelta(days=10),
        now + timedelta(days=90),
        now + timedelta(days=5),
    ]
    # The user sees each lot's expiry on /credits, as for bought credits.
    client.cookies.clear()
    assert web_login(client, "eve@example.com").status_code == 303
    lots = client.get("/credits").text.split('id="lots"', 1)[1].split("</table>", 1)[0]
    assert "Never" not in lots
    assert len(re.findall(r"2026-04-01", lots)) == 2 and "2026-01-06" in lots


def test_a_lot_cannot_be_stored_without_an_expiry(ctx: Context) -> None:
    user = make_user(ctx, credits=0)
    with pytest.raises(IntegrityError), ctx.db.transaction() as s:
        s.add(CreditLot(user_id=user.id, source="admin", amount=1, remaining=1))


def test_the_migration_gives_never_expiring_lots_the_default_from_now(
    ctx: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Lots granted before every lot had to expire keep their credits and get
    REMOVEANY_ADMIN_CREDIT_DAYS from the day of the migration; other lots keep theirs."""
    monkeypatch.setenv("REMOVEANY_ADMIN_CREDIT_DAYS", "30")
    user = make_user(ctx, credits=0)
    url = ctx.settings.sqlalchemy_url
    command.downgrade(alembic_config(url), "0007_promo_mailbox")
    with ctx.db.transaction() as s:
        for expires_at in ("NULL", "'2030-01-01 00:00:00+00:00'"):
            s.execute(
                text(
                    "INSERT INTO credit_lots (user_id, source, amount, remaining, expires_at, "
                    f"created_at) VALUES (:u, 'admin', 5, 4, {expires_at}, :now)"
                ),
                {"u": user.id, "now": datetime(2025, 1, 1, tzinfo=UTC)},
            )
    before = datetime.now(UTC)
    upgrade(url)
    after = datetime.now(UTC)
    with ctx.db.transaction() as s:
        first, second = s.query(CreditLot).order_by(CreditLot.id)
        assert first.remaining == second.remaining == 4
        assert before + timedelta(days=30) <= first.expires_at <= after + timedelta(days=30)
        assert second.expires_at == datetime(2030, 1, 1, tzinfo=UTC)


__all__ = ["client"]
