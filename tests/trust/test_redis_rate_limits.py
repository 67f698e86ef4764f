"""Throttles kept in Redis (REMOVEANY_RATE_LIMIT_BACKEND=redis), as scaled deployments run
them: the same rules as the database counters, through the real HTTP app and a real Redis."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta

import pytest
import redis
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from removeany.accounts.models import RateCounter, User
from removeany.app import create_app
from removeany.context import Context, build_context
from removeany.infra.ratelimit import RedisCounters
from removeany.infra.settings import Settings
from tests.batches._scale import redis_broker
from tests.conftest import TestClock
from tests.helpers import closed_port, make_user
from tests.trust.conftest import PASSWORD, login


@pytest.fixture
def redis_ctx(settings: Settings, clock: TestClock) -> Iterator[Context]:
    url, _ = redis_broker()
    prefix = f"removeany-test:{uuid.uuid4().hex[:12]}:"
    ctx = build_context(
        settings.model_copy(
            update={
                "rate_limit_backend": "redis",
                "rate_limit_redis_url": url,
                "rate_limit_prefix": prefix,
                "login_failures_per_account": 3,
                "signups_per_ip": 2,
            }
        )
    )
    ctx.clock = clock
    yield ctx
    client = redis.Redis.from_url(url)
    for key in client.scan_iter(f"{prefix}*"):
        client.delete(key)
    client.close()
    ctx.close()


def _redis_keys(ctx: Context) -> list[str]:
    with ctx.db.transaction() as session:
        counters = session.info["rate_counters"]
    assert isinstance(counters, RedisCounters)
    return [k.decode() for k in counters.client.scan_iter(f"{counters.prefix}*")]


def test_sign_in_throttle_counts_in_redis_and_follows_the_clock(
    redis_ctx: Context, clock: TestClock
) -> None:
    make_user(redis_ctx)
    with TestClient(create_app(redis_ctx)) as client:
        for _ in range(3):
            assert login(client, "ada@example.com", "wrong password!").status_code == 401
        blocked = login(client, "ada@example.com")
        assert blocked.status_code == 429
        assert blocked.json()["error"]["code"] == "too_many_attempts"
        assert 0 < int(blocked.headers["Retry-After"]) <= redis_ctx.settings.login_window_seconds
        assert any(":login:" in key for key in _redis_keys(redis_ctx))
        with redis_ctx.db.transaction() as session:
            assert session.scalar(select(func.count()).select_from(RateCounter)) == 0
        clock.now += timedelta(seconds=redis_ctx.settings.login_window_seconds + 1)
        assert login(client, "ada@example.com").status_code == 200


def test_signups_per_address_are_throttled_in_redis(redis_ctx: Context) -> None:
    with TestClient(create_app(redis_ctx)) as client:
        for n in range(2):
            r = client.post(
                "/api/v1/auth/register", json={"email": f"s{n}@example.com", "password": PASSWORD}
            )
            assert r.status_code == 202
        r = client.post(
            "/api/v1/auth/register", json={"email": "s9@example.com", "password": PASSWORD}
        )
        assert r.status_code == 429 and r.json()["error"]["code"] == "too_many_attempts"


def test_with_redis_down_sign_in_and_sign_up_answer_503_not_500(settings: Settings) -> None:
    """The throttles cannot count, so what they guard is refused, with a clear answer."""
    ctx = build_context(
        settings.model_copy(
            update={
                "rate_limit_backend": "redis",
                "rate_limit_redis_url": f"redis://127.0.0.1:{closed_port()}/0",
            }
        )
    )
    try:
        make_user(ctx)
        with TestClient(create_app(ctx)) as client:
            signed_in = login(client, "ada@example.com")
            assert signed_in.status_code == 503, signed_in.text
            assert signed_in.json()["error"]["code"] == "throttle_unavailable"
            signed_up = client.post(
                "/api/v1/auth/register", json={"email": "new@example.com", "password": PASSWORD}
            )
            assert signed_up.status_code == 503
            assert signed_up.json()["error"]["code"] == "throttle_unavailable"
        with ctx.db.transaction() as session:
            assert session.scalar(select(func.count()).select_from(User)) == 1
    finally:
        ctx.close()
