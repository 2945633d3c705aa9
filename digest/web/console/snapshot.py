"""A dashboard kept for a minute per web process, refreshed behind the operator's back.

Counting a million readers by status, by week and by edition outcome reads every reader's
row; doing that on every page view would make the dashboard slow. So each web process keeps
the last figures it computed: a view within ``FRESH_FOR`` gets them as they are; a later one
still gets them at once while one background thread computes new ones for the next view.
The page says how old its figures are, and ``?refresh=1`` computes them while the operator
waits. Every figure still comes from the database, whichever worker did the work.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

__all__ = ["FRESH_FOR", "Snapshot"]

log = logging.getLogger(__name__)
FRESH_FOR = 60.0  # seconds
T = TypeVar("T")


class Snapshot(Generic[T]):
    """The last value of ``compute``, recomputed in the background once it is stale."""

    def __init__(self, compute: Callable[[], T], fresh_for: float = FRESH_FOR,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._compute = compute
        self._fresh_for = fresh_for
        self._clock = clock
        self._lock = threading.Lock()
        self._value: T | None = None
        self._taken = 0.0
        self._refreshing = False

    def get(self, *, refresh: bool = False) -> T:
        """The kept value (computed now if there is none yet, or if ``refresh``)."""
        value = self._value
        if refresh or value is None:
            return self._store(self._compute())
        if self._clock() - self._taken > self._fresh_for:
            with self._lock:
                start, self._refreshing = not self._refreshing, True
            if start:
                threading.Thread(target=self._background, name="dashboard-refresh",
                                 daemon=True).start()
        return value

    def _store(self, value: T) -> T:
        self._value, self._taken = value, self._clock()
        return value

    def _background(self) -> None:
        try:
            self._store(self._compute())
        except Exception:  # the old figures stay; the next view tries again
            log.exception("refreshing the console dashboard failed")
        finally:
            with self._lock:
                self._refreshing = False
