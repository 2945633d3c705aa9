"""A running send's progress, cheap enough to poll every second from a live page.

The edition row (primary key) and its batches by status (``ix_batches_status``, about a
thousand rows at 1M readers) are read on every call. Readers handed over, failures and
complaints come from the edition's delivery rows, which are exact (a sent batch's planned
size is not: readers refused one by one, readers who had every post already, readers who
joined or left its id range since the plan), but counting them reads every row of the
edition: about 0.4 s at 1M readers on PostgreSQL, more in a table holding many editions.
So those counts are kept per process and counted again only once they are older than
``COUNT_BUDGET`` times what the last count took (at once when that is a few milliseconds,
every few seconds at 1M; never older than ``MAX_AGE`` s), and always once the edition is
finished, so the final figures are exact. ``readers_counted_at`` says when they were counted.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from digest.delivery import record
from digest.delivery.ledger import batch_counts
from digest.delivery.readercounts import FAILED, HANDED_OVER
from digest.errors import NoSuchEditionError
from digest.runtime import App
from digest.store.models import BatchStatus, DeliveryStatus, Edition, EditionStatus

__all__ = ["COUNT_BUDGET", "MAX_AGE", "EditionProgress", "edition_progress"]

COUNT_BUDGET = 0.1  # at most this share of a poller's time goes to counting readers
MAX_AGE = 30.0  # seconds: reader counts are never older than this
_KEPT = 256  # editions whose counts a process keeps


@dataclass(frozen=True)
class _Counted:
    """One edition's delivery rows by status, when they were counted and what it cost."""

    counts: dict[DeliveryStatus, int]
    at: datetime
    monotonic: float
    cost: float
    final: bool  # counted after the edition finished

    def fresh(self, clock: float, finished: bool) -> bool:
        if finished and not self.final:
            return False
        age = clock - self.monotonic
        return age < min(MAX_AGE, self.cost / COUNT_BUDGET)


_counted: dict[tuple[str, int, datetime], _Counted] = {}
_lock = threading.Lock()


def _reader_counts(app: App, session: Session, edition: Edition, now: datetime) -> _Counted:
    """The edition's delivery rows by status, counted again only when due (module doc)."""
    key = (app.engine.url.render_as_string(), edition.id, edition.created_at)
    finished = edition.status is not EditionStatus.SENDING
    with _lock:
        kept = _counted.get(key)
    if kept is not None and kept.fresh(time.monotonic(), finished):
        return kept
    started = time.monotonic()
    counts = record.counts(session, edition.id)
    clock = time.monotonic()
    made = _Counted(counts, now, clock, clock - started, finished)
    with _lock:
        _counted[key] = made
        while len(_counted) > _KEPT:
            del _counted[next(iter(_counted))]
    return made


@dataclass(frozen=True)
class EditionProgress:
    """Where one edition's send stands (see the module docstring for where each comes from).

    ``batches`` has every batch status (pending, sending, in_doubt, sent, failed), zero or
    not; ``failures`` is the readers it did not reach for good (refused, dropped, or in a
    batch that failed); ``readers_per_second`` is readers handed over per second from the
    claim until it finished, or until ``now`` while it runs (paused time included).
    """

    edition_id: int
    status: str
    paused: bool
    pause_reason: str | None
    paused_at: datetime | None
    batches: dict[str, int]
    batches_total: int
    readers_planned: int
    readers_handed_over: int
    failures: int
    complaints: int
    started_at: datetime
    finished_at: datetime | None
    readers_per_second: float
    done: bool
    readers_counted_at: datetime  # when the reader figures were counted (module doc)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready fields (datetimes as ISO 8601)."""
        values = dataclasses.asdict(self)
        for key in ("paused_at", "started_at", "finished_at", "readers_counted_at"):
            if values[key] is not None:
                values[key] = values[key].isoformat()
        return values


def edition_progress(app: App, edition_id: int, now: datetime) -> EditionProgress:
    """The progress of edition ``edition_id`` at ``now``; NoSuchEditionError if unknown."""
    with app.sessions() as session:
        edition = session.get(Edition, edition_id)
        if edition is None:
            raise NoSuchEditionError(f"no edition {edition_id}")
        counts = batch_counts(session, edition_id)
        counted = _reader_counts(app, session, edition, now)
    readers = counted.counts
    handed = sum(n for status, n in readers.items() if status in HANDED_OVER)
    failures = sum(n for status, n in readers.items() if status in FAILED)
    end = edition.finished_at or counted.at
    elapsed = (end - edition.created_at).total_seconds()
    paused = edition.paused_at is not None
    return EditionProgress(
        edition_id=edition.id, status=edition.status.value, paused=paused,
        pause_reason=edition.pause_reason if paused else None,
        paused_at=edition.paused_at,
        batches={status.value: counts.get(status, 0) for status in BatchStatus},
        batches_total=sum(counts.values()), readers_planned=edition.recipient_count,
        readers_handed_over=handed, failures=failures,
        complaints=readers.get(DeliveryStatus.COMPLAINED, 0),
        started_at=edition.created_at, finished_at=edition.finished_at,
        readers_per_second=round(handed / elapsed, 1) if elapsed > 0 else 0.0,
        done=edition.status is not EditionStatus.SENDING,
        readers_counted_at=counted.at,
    )
