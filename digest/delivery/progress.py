"""A running send's progress, cheap enough to poll every second from a live page.

Three indexed aggregate queries: the edition row (primary key), its batches by status
(``ix_batches_status``), and its delivery rows by status (a range of the primary key of
``deliveries``). Readers handed over come from the delivery rows, which are exact: a sent
batch's planned size is not (readers refused one by one, readers who had every post already,
readers who joined or left its id range since the plan).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from digest.delivery import record
from digest.delivery.ledger import batch_counts
from digest.delivery.readercounts import FAILED, HANDED_OVER
from digest.errors import NoSuchEditionError
from digest.runtime import App
from digest.store.models import BatchStatus, DeliveryStatus, Edition, EditionStatus

__all__ = ["EditionProgress", "edition_progress"]


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

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready fields (datetimes as ISO 8601)."""
        values = dataclasses.asdict(self)
        for key in ("paused_at", "started_at", "finished_at"):
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
        readers = record.counts(session, edition_id)
    handed = sum(n for status, n in readers.items() if status in HANDED_OVER)
    failures = sum(n for status, n in readers.items() if status in FAILED)
    end = edition.finished_at or now
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
    )
