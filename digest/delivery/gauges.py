"""The scrape-time gauges: states read from the database and Redis, not counted as events.

Readers, editions and feeds by status, paused editions, the age of the newest successful
poll, and the age of beat's last heartbeat (``delivery.heartbeat``). A scrape reads them at
most once every ``CACHE_SECONDS`` per process: counting readers by status scans an index over
every reader, and Prometheus scrapes every 15 to 60 s, possibly from several servers.
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

from digest.delivery.heartbeat import connect, last_tick
from digest.metrics import state_families
from digest.runtime import App
from digest.store.models import Edition, EditionStatus, Feed, FeedStatus, Subscriber

__all__ = ["CACHE_SECONDS", "Gauges", "State", "read_state"]

CACHE_SECONDS = 10.0
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class State:
    """What the gauges show; a time None is "never", ``beat_read`` False is "Redis down"."""

    readers: dict[str, int]
    editions: dict[str, int]
    feeds: dict[str, int]
    paused: int
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
        paused = session.scalar(select(func.count()).select_from(Edition).where(
            Edition.status == EditionStatus.SENDING, Edition.paused_at.is_not(None)))
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
    return State(readers, editions, feeds, int(paused or 0), last_good, ticked, beat_read)


def _age(then: datetime | None, now: datetime) -> float | None:
    if then is None:
        return None
    if then.tzinfo is None:
        then = then.replace(tzinfo=UTC)
    return max(0.0, (now - then).total_seconds())


class Gauges:
    """The gauges of one App, read at most once every ``max_age`` seconds (one per process:
    the web app keeps it beside the App)."""

    def __init__(self, app: App, max_age: float = CACHE_SECONDS) -> None:
        self.app = app
        self.max_age = max_age
        self._lock = threading.Lock()
        self._cached: tuple[float, State] | None = None

    def state(self, clock: float | None = None) -> State:
        """The cached state, read again when older than ``max_age`` seconds of ``clock``
        (monotonic); a database error fails the scrape and caches nothing."""
        clock = time.monotonic() if clock is None else clock
        with self._lock:
            if self._cached is None or clock - self._cached[0] >= self.max_age:
                self._cached = (clock, read_state(self.app))
            return self._cached[1]

    def families(self, *, now: datetime | None = None, clock: float | None = None
                 ) -> list[Any]:
        """The gauges' metric families at ``now``; ages are taken at ``now`` from the cached
        times, so they keep growing between reads."""
        now = now or datetime.now(UTC)
        state = self.state(clock)
        return state_families(readers=state.readers, editions=state.editions,
                              feeds=state.feeds, paused=state.paused,
                              last_poll_age=_age(state.last_poll_at, now),
                              beat_age=_age(state.beat_at, now), beat_read=state.beat_read)
