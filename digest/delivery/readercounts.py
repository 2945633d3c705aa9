"""One edition's readers as the operator counts them: planned, handed over, and what followed.

The per-reader record (``delivery.record``) holds one status per reader; these counts group
them the way an operator asks: *delivered* is every copy that reached its inbox (including
those later reported as spam or unsubscribed from), *failed* every reader who did not get it
for a reason other than a bounce (refused one by one, dropped by the provider, or a batch
that failed for good), *in doubt* the readers of batches whose worker died after the request
went out and that no event has yet settled, *already received* the readers not sent it
because other editions had brought them every one of its posts.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from digest.delivery import record
from digest.delivery.plan import eligible
from digest.store.models import (
    Batch,
    BatchStatus,
    Delivery,
    DeliveryStatus,
    Edition,
    Subscriber,
)

D = DeliveryStatus
HANDED_OVER = frozenset({D.HANDED, D.PROCESSED, D.DEFERRED, D.DELIVERED, D.BOUNCED, D.DROPPED,
                         D.COMPLAINED, D.UNSUBSCRIBED})
DELIVERED = frozenset({D.DELIVERED, D.COMPLAINED, D.UNSUBSCRIBED})
FAILED = frozenset({D.REFUSED, D.DROPPED, D.FAILED})


@dataclass(frozen=True)
class ReaderCounts:
    """How many readers of one edition are where (see the module docstring)."""

    planned: int
    handed_over: int
    delivered: int
    bounced: int
    complained: int
    failed: int
    in_doubt: int
    already_received: int
    by_status: dict[str, int]

    def describe(self) -> str:
        """One line: ``3 planned, 2 handed over, 1 delivered, ...``."""
        return (f"{self.planned} planned, {self.handed_over} handed over, "
                f"{self.delivered} delivered, {self.bounced} bounced, "
                f"{self.complained} complained, {self.failed} failed, {self.in_doubt} in doubt"
                + (f", {self.already_received} had every post already" if self.already_received
                   else ""))


def reader_counts(session: Session, edition: Edition) -> ReaderCounts:
    """The counts of ``edition`` from its delivery rows and its in-doubt batches."""
    found = record.counts(session, edition.id)

    def total(statuses: frozenset[DeliveryStatus]) -> int:
        return sum(n for status, n in found.items() if status in statuses)

    return ReaderCounts(
        planned=edition.recipient_count, handed_over=total(HANDED_OVER),
        delivered=total(DELIVERED), bounced=found.get(D.BOUNCED, 0),
        complained=found.get(D.COMPLAINED, 0), failed=total(FAILED),
        in_doubt=_in_doubt(session, edition),
        already_received=found.get(D.ALREADY_RECEIVED, 0),
        by_status={status.name.lower(): n for status, n in sorted(found.items())},
    )


def _in_doubt(session: Session, edition: Edition) -> int:
    """Readers left in in-doubt batches (past the resume cursor) with no delivery row yet."""
    recorded = select(Delivery.subscriber_id).where(
        Delivery.edition_id == edition.id, Delivery.subscriber_id == Subscriber.id)
    doubtful = 0
    for batch in session.scalars(select(Batch).where(Batch.edition_id == edition.id,
                                                     Batch.status == BatchStatus.IN_DOUBT)):
        doubtful += int(session.scalar(
            select(func.count()).select_from(Subscriber).where(
                *eligible(edition.cadence, edition.max_subscriber_id),
                Subscriber.id > batch.after_id, Subscriber.id <= batch.upto_id,
                ~recorded.exists())) or 0)
    return doubtful
