"""Checks for operator alerts from inside a long-running process (the web app), every few
minutes, in a daemon thread: beat checks too, but a dead beat cannot report itself.

Two runners at once are harmless (``delivery.alerts`` claims each episode atomically). A
failed check is logged and tried again at the next interval; stopping waits for a check in
progress only briefly.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime

from digest.delivery.alerts import check_alerts
from digest.runtime import App

__all__ = ["ALERT_INTERVAL", "AlertWatch"]

log = logging.getLogger(__name__)

ALERT_INTERVAL = 300.0  # seconds between two checks


class AlertWatch:
    """Runs ``check_alerts`` at once and then every ``interval`` seconds until ``stop``."""

    def __init__(self, app: App, interval: float = ALERT_INTERVAL,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.app = app
        self.interval = interval
        self.clock = clock
        self.checks = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="alert-watch", daemon=True)

    def start(self) -> AlertWatch:
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                check_alerts(self.app, now=self.clock())
            except Exception:
                log.exception("checking for operator alerts failed; trying again in %g s",
                              self.interval)
            self.checks += 1
            self._stop.wait(self.interval)
