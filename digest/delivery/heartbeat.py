"""Beat's heartbeat: proof, kept in Redis, that the scheduler is still firing.

Beat schedules ``digest.tasks.beat_heartbeat_task`` every minute and the worker that runs it
writes the time here, so a fresh heartbeat means beat *and* at least one worker are running.
``/readyz`` (``delivery.health``) reads it back. Redis is DIGEST_REDIS_URL (the broker when
unset), the same one as the rate limits: a cache, not the record, so the key expires on its
own and a flushed Redis only reads as "no heartbeat" until the next minute.
"""

from __future__ import annotations

from datetime import UTC, datetime

import redis

from digest.runtime import App

__all__ = ["HEARTBEAT_KEY", "HEARTBEAT_TTL", "connect", "last_tick", "record_tick"]

HEARTBEAT_KEY = "digest:beat:heartbeat"
# Long enough for an alert on "beat silent for 2 hours" to still read when it last ticked.
HEARTBEAT_TTL = 6 * 3600
REDIS_TIMEOUT = 1.0  # seconds; a probe or a task never waits on a Redis that hangs


def connect(app: App, timeout: float = REDIS_TIMEOUT) -> redis.Redis:
    """A client of DIGEST_REDIS_URL whose every call gives up after ``timeout`` seconds."""
    return redis.Redis.from_url(app.settings.rate_limit_url, socket_timeout=timeout,
                                socket_connect_timeout=timeout)


def record_tick(app: App, *, now: datetime) -> None:
    """Note that beat ticked at ``now`` (aware); raises redis.RedisError if Redis is down."""
    client = connect(app)
    try:
        client.set(HEARTBEAT_KEY, now.astimezone(UTC).isoformat(), ex=HEARTBEAT_TTL)
    finally:
        client.close()


def last_tick(client: redis.Redis) -> datetime | None:
    """When beat last ticked; None if it never did, or not for HEARTBEAT_TTL, or the value
    is not a time (written by something else)."""
    raw = client.get(HEARTBEAT_KEY)
    if raw is None:
        return None
    try:
        stamp = datetime.fromisoformat(raw.decode("ascii") if isinstance(raw, bytes) else raw)
    except (UnicodeDecodeError, ValueError):
        return None
    return stamp if stamp.tzinfo is not None else stamp.replace(tzinfo=UTC)
