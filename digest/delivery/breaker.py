"""The complaint breaker: pause a running send whose spam complaints pass a threshold.

Called by the web shell after SendGrid's events are applied (``readers.events`` may not
import delivery), with the editions those events brought spam reports for; only a new
complaint can push an edition over the line, since more readers handed over only lower its
rate. For each edition still being sent and not paused it counts, from the per-reader record
(``delivery.record``), the readers who complained and the readers handed over, and pauses it
(``delivery.pause``, reason ``complaints: ...``) when

    complaints > DIGEST_COMPLAINT_BREAKER_RATE x handed over, and
    complaints - complaints at the last resume >= DIGEST_COMPLAINT_BREAKER_MIN.

The second rule keeps one early complaint among the first readers from stopping a send, and
after a resume (which notes the count it saw, ``pause.complaints_at_resume``) it keeps the
breaker from tripping again on the complaints the operator already chose to accept: it
trips again only once MIN more have arrived and the rate is still past the threshold. A rate
of 0 turns the breaker off. It never resumes anything itself.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from digest.delivery import record
from digest.delivery.pause import BREAKER_PREFIX, complaints_at_resume, pause_edition
from digest.delivery.readercounts import HANDED_OVER
from digest.errors import EditionError
from digest.runtime import App
from digest.store.models import DeliveryStatus, Edition, EditionStatus

__all__ = ["Verdict", "check_editions", "verdict"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Verdict:
    """What the breaker saw for one edition, and whether that trips it."""

    edition_id: int
    complaints: int
    handed_over: int
    since_resume: int  # complaints counted after the last resume (all of them if none)
    rate: float  # the threshold, a fraction
    minimum: int

    @property
    def trips(self) -> bool:
        return (self.rate > 0 and self.since_resume >= self.minimum
                and self.complaints > self.rate * self.handed_over)

    def reason(self) -> str:
        """``complaints: 4 of 1,000 readers handed over (0.40%) passed 0.30%``."""
        share = self.complaints / self.handed_over if self.handed_over else 1.0
        return (f"{BREAKER_PREFIX} {self.complaints:,} of {self.handed_over:,} readers handed "
                f"over ({share:.2%}) passed {self.rate:.2%}")


def verdict(app: App, session: Session, edition: Edition) -> Verdict:
    """Count one edition's complaints and readers handed over (one grouped query)."""
    found = record.counts(session, edition.id)
    complained = found.get(DeliveryStatus.COMPLAINED, 0)
    handed = sum(n for status, n in found.items() if status in HANDED_OVER)
    return Verdict(edition.id, complained, handed,
                   complained - complaints_at_resume(edition.pause_reason),
                   app.settings.complaint_breaker_rate, app.settings.complaint_breaker_min)


def check_editions(app: App, edition_ids: Iterable[int], *, now: datetime) -> list[int]:
    """Pause each of ``edition_ids`` that is being sent and whose complaints trip the
    breaker; returns the editions this call paused."""
    if app.settings.complaint_breaker_rate <= 0:
        return []
    tripped: list[int] = []
    for edition_id in sorted(set(edition_ids)):
        with app.sessions() as session:
            edition = session.get(Edition, edition_id)
            if (edition is None or edition.status is not EditionStatus.SENDING
                    or edition.paused_at is not None):
                continue
            seen = verdict(app, session, edition)
        if not seen.trips:
            continue
        try:
            paused = pause_edition(app, edition_id, reason=seen.reason(), now=now)
        except EditionError:
            continue  # finished in the meantime: nothing left to stop
        if paused:
            log.warning("complaint breaker tripped for edition %d: %s", edition_id,
                        seen.reason(), extra={"edition_id": edition_id})
            tripped.append(edition_id)
    return tripped
