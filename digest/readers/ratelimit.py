"""Request rate limits for the public forms, kept as fixed-window counters in Redis.

Redis is a cache here, not the record: if it is down the limiter *fails open* (logs a
warning and lets the request through). Signing up must not break because of a cache, and the
harm a flood can do is bounded by the database anyway: a pending address is mailed at most
once per ``subscribers.RESEND_AFTER``. Keys hold an HMAC of what is limited (keyed from
DIGEST_SECRET_KEY, shared by every process of one site), never an address or an IP.

There is deliberately no per-address limit on sign-up requests: anyone can type anyone's
address, so such a limit lets a stranger lock a reader out. The database bound above limits
the mails instead, and the reader's own request after it always works.
"""

from __future__ import annotations

import hmac
import logging
import secrets
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
    "sign-in": Limit(10, 900),  # the console's password form, per client IP, right or wrong
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
        key: bytes | None = None,
    ) -> None:
        self.prefix = prefix
        # Without a key (tests, one-off tools) a random one: never a bare, guessable hash.
        self._key = key if key is not None else secrets.token_bytes(32)
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
        digest = hmac.digest(self._key, key.encode("utf-8"), "sha256").hex()[:32]
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
