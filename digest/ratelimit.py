"""Request rate limits for the public forms, kept as fixed-window counters in Redis.

Redis is a cache here, not the record: if it is down the limiter *fails open* (logs a
warning and lets the request through). Signing up must not break because of a cache, and the
harm a flood can do is bounded by the database anyway: a pending address is mailed at most
once per ``subscribers.RESEND_AFTER``. Keys hold a hash of what is limited, never an address.

There is deliberately no per-address limit on sign-up requests: anyone can type anyone's
address, so such a limit lets a stranger lock a reader out. The database bound above limits
the mails instead, and the reader's own request after it always works.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import redis

from digest.errors import RateLimitedError

__all__ = ["Limit", "RateLimiter"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Limit:
    """At most ``count`` hits per ``seconds`` window."""

    count: int
    seconds: int


DEFAULT_LIMITS = {
    "ip": Limit(20, 3600),  # a household or office sharing one address signs up a few people
}


class RateLimiter:
    """Counts hits per (scope, key) in Redis and raises RateLimitedError past the limit."""

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "digest:rl",
        limits: dict[str, Limit] | None = None,
        clock: Callable[[], float] = time.time,
        timeout: float = 0.5,
    ) -> None:
        self.prefix = prefix
        self.limits = {**DEFAULT_LIMITS, **(limits or {})}
        self._clock = clock
        self._redis = redis.Redis.from_url(
            url, socket_timeout=timeout, socket_connect_timeout=timeout
        )

    def hit(self, scope: str, key: str) -> None:
        """Count one request for ``key`` in ``scope``; raises RateLimitedError past the limit."""
        limit = self.limits[scope]
        now = self._clock()
        window = int(now // limit.seconds)
        digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]
        name = f"{self.prefix}:{scope}:{digest}:{window}"
        try:
            pipe = self._redis.pipeline()
            pipe.incr(name)
            pipe.expire(name, limit.seconds + 1)
            count = int(pipe.execute()[0])
        except redis.RedisError as exc:
            log.warning("rate limits are off: Redis is unavailable (%s)", exc)
            return
        if count > limit.count:
            retry_after = max(1, int((window + 1) * limit.seconds - now) + 1)
            raise RateLimitedError(retry_after)

    def close(self) -> None:
        """Release the Redis connections."""
        self._redis.close()
