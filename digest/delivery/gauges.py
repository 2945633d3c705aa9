"""The scrape-time gauges: states read from the database and Redis, not counted as events.

Readers, editions and feeds by status, the age of the newest successful poll, and the age
of beat's last heartbeat (``delivery.heartbeat``). A scrape reads them at most once every
``CACHE_SECONDS`` per process: a count of readers by status is a scan of an index over every
reader (about a tenth of a second at a million on PostgreSQL), and Prometheus scrapes every
15 to 60 s, possibly from several servers.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import redis
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError

from digest.delivery.heartbeat import connect, last_tick
from digest.metrics import state_families
from digest.runtime import App
from digest.store.models import Edition, Feed, FeedStatus, Subscriber

__all__ = ["CACHE_SECONDS", "State", "families", "read_state"]

CACHE_SECONDS = 10.0
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class State:
    """What the gauges show; a time None is "never", ``beat_read`` False is "Redis down"."""

    readers: dict[str, int]
    editions: dict[str, int]
    feeds: dict[str, int]
    last_poll_at: datetime | None
    beat_at: datetime | None
    beat_read: bool


def _by_status(session: Any, column: Any) -> dict[str, int]:
    rows = session.execute(select(column, func.count()).group_by(column))
    return {str(getattr(status, "value", status)): int(n) for status, n in rows}


def read_state(app: App) -> State:
    """Read the gauges' values; a Redis that does not answer leaves the beat gauge out
    rather than failing the scrape."""
    with app.sessions() as session:
        readers = _by_status(session, Subscriber.status)
        editions = _by_status(session, Edition.status)
        feeds = _by_status(session, Feed.status)
        last_good = session.scalar(
            select(func.max(Feed.last_polled_at))
            .where(Feed.status == FeedStatus.ACTIVE, Feed.consecutive_failures == 0))
    ticked: datetime | None = None
    beat_read = True
    try:
        client = connect(app)
        try:
            ticked = last_tick(client)
        finally:
            client.close()
    except redis.RedisError as exc:
        log.warning("metrics: beat's heartbeat could not be read: %s", exc)
        beat_read = False
    return State(readers, editions, feeds, last_good, ticked, beat_read)


def _age(then: datetime | None, now: datetime) -> float | None:
    if then is None:
        return None
    if then.tzinfo is None:
        then = then.replace(tzinfo=UTC)
    return max(0.0, (now - then).total_seconds())


_cache: dict[int, tuple[float, State]] = {}
_lock = threading.Lock()


def families(app: App, *, now: datetime | None = None, clock: float | None = None,
             max_age: float = CACHE_SECONDS) -> list[Any]:
    """The gauges' metric families at ``now``, the states read again when those cached are
    older than ``max_age`` seconds of ``clock`` (monotonic); a database error fails the
    scrape. Ages are taken at ``now`` from the cached times, so they keep growing."""
    now = now or datetime.now(UTC)
    clock = time.monotonic() if clock is None else clock
    with _lock:
        cached = _cache.get(id(app))
        if cached is None or clock - cached[0] >= max_age:
            try:
                cached = (clock, read_state(app))
            except SQLAlchemyError:
                _cache.pop(id(app), None)
                raise
            _cache[id(app)] = cached
    state = cached[1]
    return state_families(readers=state.readers, editions=state.editions, feeds=state.feeds,
                          last_poll_age=_age(state.last_poll_at, now),
                          beat_age=_age(state.beat_at, now),
                          beat_read=state.beat_read)
