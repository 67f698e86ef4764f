"""The ledger on a real database: spend order, holds, expiry, and its invariants."""

from __future__ import annotations

from datetime import timedelta

import pytest

from removeany.context import Context
from removeany.credits import repository as repo
from removeany.credits import service as ledger
from removeany.credits.service import InsufficientCredits
from tests.conftest import TestClock
from tests.helpers import make_user

TTL = timedelta(hours=1)


def assert_lots_match_entries(ctx: Context, user_id: int) -> None:
    with ctx.db.transaction() as s:
        for lot in repo.lots(s, user_id):
            assert lot.remaining == repo.entry_sum_for_lot(s, lot.id), f"lot {lot.id} drifted"


def test_reserve_spends_soonest_expiry_then_promotional_before_paid(
    ctx: Context, clock: TestClock
) -> None:
    ctx.clock = clock
    user = make_user(ctx, credits=0)
    now = clock.now
    with ctx.db.transaction() as s:
        paid = ledger.grant(
            s, user.id, 5, source="purchase", now=now, expires_at=now + timedelta(days=365)
        )
        promo = ledger.grant(
            s, user.id, 5, source="promo", now=now, expires_at=now + timedelta(days=365)
        )
        soon = ledger.grant(
            s, user.id, 2, source="signup", now=now, expires_at=now + timedelta(days=3)
        )
        assert paid and promo and soon
        holds = ledger.reserve(s, user.id, 4, reference="job:a", now=now, ttl=TTL)
    assert [(h.lot_id, h.amount) for h in holds] == [(soon.id, 2), (promo.id, 2)]
    with ctx.db.transaction() as s:
        assert ledger.balance(s, user.id, now) == ledger.Balance(available=8, held=4)
    assert_lots_match_entries(ctx, user.id)


def test_release_returns_credits_to_the_lots_they_came_from(ctx: Context) -> None:
    user = make_user(ctx, credits=3)
    now = ctx.now()
    with ctx.db.transaction() as s:
        ledger.grant(s, user.id, 2, source="promo", now=now, expires_at=now + timedelta(days=1))
        ledger.reserve(s, user.id, 4, reference="job:r", now=now, ttl=TTL)
    with ctx.db.transaction() as s:
        assert ledger.release(s, user.id, reference="job:r", now=now) == 4
        assert ledger.release(s, user.id, reference="job:r", now=now) == 0, "released twice"
        lots = {lot.source: lot.remaining for lot in repo.lots(s, user.id)}
    assert lots == {"admin": 3, "promo": 2}
    assert_lots_match_entries(ctx, user.id)


def test_capture_charges_once(ctx: Context) -> None:
    user = make_user(ctx, credits=3)
    now = ctx.now()
    with ctx.db.transaction() as s:
        ledger.reserve(s, user.id, 2, reference="job:c", now=now, ttl=TTL)
    with ctx.db.transaction() as s:
        assert ledger.capture(s, user.id, reference="job:c", now=now) == 2
        assert ledger.capture(s, user.id, reference="job:c", now=now) == 0
        assert ledger.release(s, user.id, reference="job:c", now=now) == 0
        assert ledger.charged_for(s, "job:c") == 2
        assert ledger.balance(s, user.id, now) == ledger.Balance(available=1, held=0)


def test_insufficient_credits_is_402_and_changes_nothing(ctx: Context) -> None:
    user = make_user(ctx, credits=1)
    with pytest.raises(InsufficientCredits) as err, ctx.db.transaction() as s:
        ledger.reserve(s, user.id, 2, reference="job:x", now=ctx.now(), ttl=TTL)
    assert err.value.status_code == 402
    assert "balance is 1" in err.value.message
    with ctx.db.transaction() as s:
        assert ledger.balance(s, user.id, ctx.now()).available == 1


def test_expiry_sweep_writes_expire_entries(ctx: Context, clock: TestClock) -> None:
    ctx.clock = clock
    user = make_user(ctx, credits=0)
    start = clock.now
    with ctx.db.transaction() as s:
        ledger.grant(
            s, user.id, 10, source="signup", now=start, expires_at=start + timedelta(days=30)
        )
        ledger.reserve(s, user.id, 3, reference="job:e", now=start, ttl=TTL)
        ledger.capture(s, user.id, reference="job:e", now=start)
    clock.now = start + timedelta(days=30, seconds=1)
    with ctx.db.transaction() as s:
        assert ledger.balance(s, user.id, clock.now).available == 0
        assert ledger.expire_lots(s, clock.now) == 7
        assert ledger.expire_lots(s, clock.now) == 0
        kinds = [e.kind for e in repo.entries(s, user.id)]
    assert kinds[0] == "expire"
    assert_lots_match_entries(ctx, user.id)


def test_stale_holds_are_released_after_their_ttl(ctx: Context, clock: TestClock) -> None:
    ctx.clock = clock
    user = make_user(ctx, credits=2)
    with ctx.db.transaction() as s:
        ledger.reserve(s, user.id, 2, reference="job:stale", now=clock.now, ttl=TTL)
    with ctx.db.transaction() as s:
        assert ledger.release_stale_holds(s, clock.now) == 0
    clock.now += TTL
    with ctx.db.transaction() as s:
        assert ledger.release_stale_holds(s, clock.now) == 2
        assert ledger.balance(s, user.id, clock.now).available == 2


def test_grant_with_idempotency_key_happens_once(ctx: Context) -> None:
    user = make_user(ctx, credits=0)
    with ctx.db.transaction() as s:
        first = ledger.grant(
            s,
            user.id,
            10,
            source="signup",
            now=ctx.now(),
            expires_at=ctx.now() + timedelta(days=30),
            idempotency_key="signup:x",
        )
        again = ledger.grant(
            s,
            user.id,
            10,
            source="signup",
            now=ctx.now(),
            expires_at=ctx.now() + timedelta(days=30),
            idempotency_key="signup:x",
        )
        assert first is not None and again is None
        assert ledger.balance(s, user.id, ctx.now()).available == 10


def test_expiry_warning_is_sent_once_in_the_owners_language(ctx: Context, clock: TestClock) -> None:
    """One credit is singular in English; a Chinese-speaking owner is written to in Chinese;
    a second sweep sends nothing again."""
    from removeany.accounts.models import User
    from removeany.maintenance import run_sweeps
    from tests.trust.conftest import body_of, mails

    ctx.clock = clock
    ada = make_user(ctx, "ada@example.com", credits=0)
    li = make_user(ctx, "li@example.com", credits=0)
    with ctx.db.transaction() as s:
        chinese = s.get(User, li.id)
        assert chinese is not None
        chinese.locale = "zh-CN"
        for user in (ada, li):
            ledger.grant(
                s,
                user.id,
                1,
                source="signup",
                now=clock.now,
                expires_at=clock.now + timedelta(days=3),
            )
    assert run_sweeps(ctx).expiry_warnings == 2
    assert run_sweeps(ctx).expiry_warnings == 0
    (english,) = mails(ctx, "ada@example.com")
    assert english["Subject"] == "1 RemoveAny credit expires soon"
    assert body_of(english).startswith("1 of your credits expires on 2026-01-04 12:00 UTC.")
    (translated,) = mails(ctx, "li@example.com")
    assert translated["Subject"] == "您有 1 个 RemoveAny 积分即将过期"
    assert body_of(translated).startswith("您有 1 积分将于 2026-01-04 12:00 UTC 过期。")
