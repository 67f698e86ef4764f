"""Races against one balance on PostgreSQL: row locks must keep the ledger exact."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest

from removeany.context import Context
from removeany.credits import repository as repo
from removeany.credits import service as ledger
from removeany.credits.service import InsufficientCredits
from tests.helpers import make_user

TTL = timedelta(hours=1)


@pytest.fixture
def pg_ctx(ctx: Context) -> Context:
    if ctx.db.engine.dialect.name != "postgresql":
        pytest.skip("the concurrency test targets PostgreSQL row locks")
    return ctx


def test_200_concurrent_spends_never_overdraw(pg_ctx: Context) -> None:
    ctx = pg_ctx
    user = make_user(ctx, credits=150)

    def spend(i: int) -> str:
        try:
            with ctx.db.transaction() as s:
                ledger.reserve(s, user.id, 1, reference=f"job:{i}", now=ctx.now(), ttl=TTL)
                ledger.capture(s, user.id, reference=f"job:{i}", now=ctx.now())
            return "charged"
        except InsufficientCredits:
            return "refused"

    with ThreadPoolExecutor(max_workers=16) as pool:
        outcomes = list(pool.map(spend, range(200)))
    assert outcomes.count("charged") == 150
    assert outcomes.count("refused") == 50
    with ctx.db.transaction() as s:
        assert ledger.balance(s, user.id, ctx.now()) == ledger.Balance(available=0, held=0)
        for lot in repo.lots(s, user.id):
            assert lot.remaining == repo.entry_sum_for_lot(s, lot.id) == 0
        charged = sum(ledger.charged_for(s, f"job:{i}") for i in range(200))
    assert charged == 150


def test_reserve_release_races_keep_the_sum(pg_ctx: Context) -> None:
    ctx = pg_ctx
    user = make_user(ctx, credits=20)

    def cycle(i: int) -> None:
        try:
            with ctx.db.transaction() as s:
                ledger.reserve(s, user.id, 3, reference=f"job:{i}", now=ctx.now(), ttl=TTL)
        except InsufficientCredits:
            return
        with ctx.db.transaction() as s:
            ledger.release(s, user.id, reference=f"job:{i}", now=ctx.now())

    with ThreadPoolExecutor(max_workers=12) as pool:
        list(pool.map(cycle, range(120)))
    with ctx.db.transaction() as s:
        assert ledger.balance(s, user.id, ctx.now()) == ledger.Balance(available=20, held=0)
        for lot in repo.lots(s, user.id):
            assert lot.remaining == repo.entry_sum_for_lot(s, lot.id)


def test_expiry_racing_spends(pg_ctx: Context) -> None:
    """The sweep and spends contend for the same lot: every credit is spent or expired, once."""
    from removeany.infra.db import utcnow

    ctx = pg_ctx
    user = make_user(ctx, credits=0)
    start = utcnow()
    with ctx.db.transaction() as s:
        ledger.grant(
            s, user.id, 60, source="signup", now=start, expires_at=start + timedelta(seconds=1)
        )

    def spend(i: int) -> str:
        try:
            with ctx.db.transaction() as s:
                ledger.reserve(s, user.id, 1, reference=f"job:{i}", now=start, ttl=TTL)
                ledger.capture(s, user.id, reference=f"job:{i}", now=start)
            return "charged"
        except InsufficientCredits:
            return "refused"

    def sweep(_: int) -> str:
        with ctx.db.transaction() as s:
            ledger.expire_lots(s, start + timedelta(seconds=2))
        return "swept"

    tasks = [spend] * 80 + [sweep] * 5
    with ThreadPoolExecutor(max_workers=12) as pool:
        outcomes = list(pool.map(lambda pair: pair[1](pair[0]), enumerate(tasks)))
    charged = outcomes.count("charged")
    with ctx.db.transaction() as s:
        entries = repo.entries(s, user.id, limit=1000)
        expired = -sum(e.amount for e in entries if e.kind == "expire")
        (lot,) = repo.lots(s, user.id)
        assert lot.remaining == 0 == repo.entry_sum_for_lot(s, lot.id)
    assert charged + expired == 60
