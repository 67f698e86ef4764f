"""Throttle counters in Redis, for scaled deployments (`REMOVEANY_RATE_LIMIT_BACKEND=redis`).

The embedded default keeps counters in the database (`accounts.security`, table
`rate_counters`); with several web processes Redis takes that load off PostgreSQL. Both keep
the same rule: a window starts at its first hit and lasts `window`; a hit after it has passed
starts a new one. Time is the caller's `now` (the app's clock), so windows follow the same
clock as everything else; keys also expire in Redis a day after their window ends.

`Database` puts the counters on every session (`session.info[SESSION_KEY]`), so the throttle
functions find them whatever transaction they run in.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import redis

from removeany.errors import DomainError

SESSION_KEY = "rate_counters"

# Atomically: start a new window (or count in the current one) and return the count.
_HIT = """
local start = tonumber(redis.call('HGET', KEYS[1], 'start'))
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local count
if (not start) or start + window <= now then
  redis.call('HSET', KEYS[1], 'start', ARGV[1], 'count', 1)
  count = 1
else
  count = redis.call('HINCRBY', KEYS[1], 'count', 1)
end
redis.call('EXPIRE', KEYS[1], math.ceil(window) + 86400)
return count
"""


class ThrottleUnavailable(DomainError):
    """Redis cannot be reached: what it guards (sign-in, sign-up, the try-out) is refused with
    503 until it is back, rather than let through unthrottled or answered with a bare 500."""

    status_code = 503
    code = "throttle_unavailable"

    def __init__(self) -> None:
        super().__init__("This is unavailable for a moment. Please try again in a minute.")


@contextmanager
def _reachable() -> Iterator[None]:
    try:
        yield
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        raise ThrottleUnavailable() from exc


class RedisCounters:
    """Fixed-window hit counters, one Redis hash per key: {start (epoch seconds), count}."""

    def __init__(self, url: str, *, prefix: str = "removeany:rate:") -> None:
        self.client: Any = redis.Redis.from_url(url)
        self.prefix = prefix
        self._hit = self.client.register_script(_HIT)

    def window(self, key: str) -> tuple[datetime, int] | None:
        """(window start, hits) for `key`, or None when it has no hits."""
        with _reachable():
            start, count = self.client.hmget(self.prefix + key, "start", "count")
        if start is None or count is None:
            return None
        return datetime.fromtimestamp(float(start), UTC), int(count)

    def hit(self, key: str, *, window: timedelta, now: datetime) -> int:
        with _reachable():
            return int(
                self._hit(keys=[self.prefix + key], args=[now.timestamp(), window.total_seconds()])
            )

    def clear(self, key: str) -> None:
        with _reachable():
            self.client.delete(self.prefix + key)

    def close(self) -> None:
        self.client.close()
