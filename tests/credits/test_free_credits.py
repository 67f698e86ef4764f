"""Free credits: one signup grant per mailbox, throttled per network; monthly allowance; promo
codes; versioned prices."""

from __future__ import annotations

from datetime import timedelta

import pytest

from removeany.accounts import service as accounts
from removeany.accounts.models import User
from removeany.catalog import prices
from removeany.context import Context
from removeany.credits import free
from removeany.credits import service as ledger
from removeany.errors import DomainError
from removeany.privacy.service import erase_account
from tests.conftest import TestClock
from tests.helpers import make_user


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Ann.Lee+promo@Gmail.com", "annlee@googlemail.com"),
        ("bob+1@example.com", "BOB@example.com"),
    ],
)
def test_mailbox_key_sees_through_aliases(a: str, b: str) -> None:
    assert free.mailbox_key(a) == free.mailbox_key(b)


def test_dots_matter_outside_gmail() -> None:
    assert free.mailbox_key("a.b@example.com") != free.mailbox_key("ab@example.com")


def _verify(ctx: Context, email: str, ip: str) -> int:
    with ctx.db.transaction() as s:
        user = accounts.create_user(s, email, "long enough pw", now=ctx.now())
        token = accounts.verification_token(ctx.secret_key, user)
    with ctx.db.transaction() as s:
        user = accounts.verify_email(
            s,
            ctx.secret_key,
            token,
            now=ctx.now(),
            signup_credits=10,
            signup_credit_days=30,
            ip=ip,
            signup_grants_per_ip_per_day=2,
        )
        return ledger.balance(s, user.id, ctx.now()).available


def test_one_signup_grant_per_mailbox_and_per_network_quota(ctx: Context) -> None:
    assert _verify(ctx, "first.person@gmail.com", "10.0.0.1") == 10
    assert _verify(ctx, "firstperson+again@gmail.com", "10.0.0.2") == 0
    assert _verify(ctx, "second@example.com", "10.0.0.1") == 10
    assert _verify(ctx, "third@example.com", "10.0.0.1") == 0, "third grant from one network"
    assert _verify(ctx, "fourth@example.com", "10.0.0.9") == 10


def test_monthly_allowance_once_per_month(ctx: Context, clock: TestClock) -> None:
    ctx.clock = clock
    user = make_user(ctx, credits=0)
    with ctx.db.transaction() as s:
        lot = free.ensure_monthly_allowance(s, user.id, now=clock.now, credits=5)
        assert lot is not None and lot.expires_at is not None
        assert (lot.expires_at.year, lot.expires_at.month, lot.expires_at.day) == (2026, 2, 1)
        assert free.ensure_monthly_allowance(s, user.id, now=clock.now, credits=5) is None
    clock.now += timedelta(days=31)
    with ctx.db.transaction() as s:
        assert free.ensure_monthly_allowance(s, user.id, now=clock.now, credits=5) is not None
        assert ledger.balance(s, user.id, clock.now).available == 5


def test_promo_codes_limited_uses_and_expiry(ctx: Context, clock: TestClock) -> None:
    ctx.clock = clock
    users = [make_user(ctx, f"u{i}@example.com", credits=0) for i in range(3)]
    with ctx.db.transaction() as s:
        free.create_promo(
            s,
            "launch-2026",
            credits=20,
            max_uses=2,
            credit_days=14,
            redeem_by=clock.now + timedelta(days=10),
            now=clock.now,
            admin_id=None,
        )
    with ctx.db.transaction() as s:
        lot = free.redeem_promo(
            s, users[0].id, " Launch-2026 ", email=users[0].email, now=clock.now
        )
        assert lot.source == "promo" and lot.amount == 20
    with pytest.raises(DomainError) as again, ctx.db.transaction() as s:
        free.redeem_promo(s, users[0].id, "LAUNCH-2026", email=users[0].email, now=clock.now)
    assert again.value.code == "promo_already_redeemed"
    with ctx.db.transaction() as s:
        free.redeem_promo(s, users[1].id, "LAUNCH-2026", email=users[1].email, now=clock.now)
    with pytest.raises(DomainError) as exhausted, ctx.db.transaction() as s:
        free.redeem_promo(s, users[2].id, "LAUNCH-2026", email=users[2].email, now=clock.now)
    assert exhausted.value.code == "promo_exhausted"
    with ctx.db.transaction() as s:
        free.create_promo(
            s,
            "OLD",
            credits=5,
            max_uses=9,
            credit_days=1,
            redeem_by=clock.now,
            now=clock.now,
            admin_id=None,
        )
    with pytest.raises(DomainError) as expired, ctx.db.transaction() as s:
        free.redeem_promo(s, users[2].id, "old", email=users[2].email, now=clock.now)
    assert expired.value.code == "promo_expired" and expired.value.status_code == 410


def test_a_promo_code_is_redeemed_once_per_mailbox(ctx: Context) -> None:
    """As the signup grant: another account on the same mailbox (a Gmail alias, or the
    address signed up again after its account was erased) cannot redeem the code again."""
    with ctx.db.transaction() as s:
        free.create_promo(
            s,
            "WELCOME",
            credits=5,
            max_uses=100,
            credit_days=10,
            redeem_by=None,
            now=ctx.now(),
            admin_id=None,
        )
    first = make_user(ctx, "ann.lee@gmail.com", credits=0)
    alias = make_user(ctx, "annlee+promo@gmail.com", credits=0)
    other = make_user(ctx, "ann.lee@example.com", credits=0)

    def redeem(user: User) -> str:
        try:
            with ctx.db.transaction() as s:
                free.redeem_promo(s, user.id, "welcome", email=user.email, now=ctx.now())
        except DomainError as exc:
            return exc.code
        return "redeemed"

    assert redeem(first) == "redeemed"
    assert redeem(alias) == "promo_already_redeemed"
    assert redeem(other) == "redeemed"
    with ctx.db.transaction() as s:
        row = s.get(User, first.id)
        assert row is not None
        erase_account(s, row, now=ctx.now())
    again = make_user(ctx, "ann.lee@gmail.com", credits=0)
    assert redeem(again) == "promo_already_redeemed"
    with ctx.db.transaction() as s:
        assert ledger.balance(s, again.id, ctx.now()).available == 0
        assert ledger.balance(s, alias.id, ctx.now()).available == 0


def test_price_changes_are_versioned(ctx: Context) -> None:
    with ctx.db.transaction() as s:
        before = prices.price_for(s, "remove_background", "hd")
        assert (before.tier, before.credits, before.version) == ("full", 1, 1)
        after = prices.set_price(s, "remove_background", "full", 3, now=ctx.now(), admin_id=None)
        assert after.version == 2
        assert prices.price_for(s, "remove_background", "full").credits == 3
        current = {(p.service, p.tier, p.credits) for p in prices.catalogue(s)}
        assert {
            (tier, credits) for service, tier, credits in current if service == "remove_background"
        } == {
            ("preview", 1),
            ("full", 3),
            ("50MP", 2),
        }
        assert ("portrait", "full", 1) in current, "other services keep their version-1 price"
        with pytest.raises(DomainError):
            prices.set_price(s, "remove_background", "full", -1, now=ctx.now(), admin_id=None)
