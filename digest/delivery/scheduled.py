"""The scheduled send, run by beat every ``RELEASE_INTERVAL``.

Each tick claims every weekly and daily period whose first reader's hour has come
(``periods.due_periods``; the period's key makes that once, however many ticks, beats or
hosts run it), then hands every batch now due, of any edition, to the workers
(``release.release_batches``). With every reader on the operator's schedule this is the
schedule itself: the period is claimed and all its batches are due at SCHEDULE's time.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import groupby

from sqlalchemy import select

from digest.delivery.ledger import edition_of
from digest.delivery.outcomes import SendResult
from digest.delivery.periods import due_periods
from digest.delivery.release import release_batches
from digest.delivery.send import send_digest, send_here
from digest.errors import AlreadySentError
from digest.runtime import App, Dispatch
from digest.schedule import Period
from digest.store.models import Cadence, Edition, EditionStatus, utcnow

log = logging.getLogger(__name__)

# How often beat runs the tick: a reader's digest comes at most this long after their hour.
RELEASE_INTERVAL = timedelta(minutes=5)


@dataclass(frozen=True)
class TickReport:
    """What one tick did: the editions it claimed and the batches it released."""

    claimed: list[SendResult] = field(default_factory=list)
    released: list[str] = field(default_factory=list)

    def describe(self) -> str:
        lines = [result.describe() for result in self.claimed]
        lines.append(f"{len(self.released)} batches released")
        return "\n".join(lines)


def run_tick(app: App, now: datetime | None = None, *,
             dispatch: Dispatch | None = None) -> TickReport:
    """Claim the due periods and release the due batches: to ``dispatch`` (the workers), or
    sent in this process without it."""
    now = now or utcnow()
    claimed: list[SendResult] = []
    for cadence in (Cadence.WEEKLY, Cadence.DAILY):
        try:  # one cadence failing to claim must not hold back the other, or the releases
            for period in _unclaimed_due(app, cadence, now):
                try:
                    claimed.append(send_digest(app, cadence=cadence, period=period, now=now,
                                               queue=dispatch is not None, dispatch=dispatch))
                except AlreadySentError:
                    continue
        except Exception:
            log.exception("release tick: claiming the %s digest failed", cadence.value,
                          extra={"cadence": cadence.value})
    released = release_batches(app, now)
    if released and dispatch is not None:
        dispatch(released)
    elif released:
        _send_here(app, released, now)
    return TickReport(claimed, released)


def _unclaimed_due(app: App, cadence: Cadence, now: datetime) -> list[Period]:
    """The periods of ``cadence`` due now that no edition holds yet (an EMPTY one does not
    count: posts may have come since)."""
    with app.sessions() as session:
        due = due_periods(session, app.settings, cadence, now)
        if not due:
            return []
        taken = set(session.scalars(select(Edition.key).where(
            Edition.key.in_([p.key for p in due]), Edition.status != EditionStatus.EMPTY)))
    return [p for p in due if p.key not in taken]


def _send_here(app: App, batch_ids: Sequence[str], now: datetime) -> None:
    """Send released batches in this process, edition by edition, closing each when done."""
    by_edition = sorted(batch_ids, key=lambda b: edition_of(b) or 0)
    for edition_id, ids in groupby(by_edition, key=lambda b: edition_of(b) or 0):
        send_here(app, edition_id, now=now)(list(ids))
