"""What the operator sees in `digest stats` and `GET /admin/stats`: counts and last digests.

Per edition, the readers come from the per-reader record (``delivery.record``), the batches
from the ledger: planned, handed over, and what the provider said after.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, select

from digest.delivery.ledger import batch_counts, in_doubt_notes
from digest.delivery.readercounts import ReaderCounts, reader_counts
from digest.runtime import App
from digest.store.models import Batch, BatchStatus, Edition, Feed, FeedStatus, Subscriber
from digest.wording import plural


@dataclass(frozen=True)
class EditionStats:
    """One edition with its ledger: batches sent, failed, pending and in doubt, and why."""

    id: int
    key: str
    status: str
    reason: str | None
    created_at: datetime
    recipients: int
    batches: int
    sent: int
    failed: int
    pending: int
    errors: list[str]
    delivered: int
    opens: int
    clicks: int
    readers: ReaderCounts
    in_doubt: int = 0  # batches whose worker died mid-send, waiting for the provider's events
    paused_at: datetime | None = None  # paused (no new batch claimed) since, and why
    pause_reason: str | None = None


@dataclass(frozen=True)
class FeedFailure:
    """A feed that is failing or gone, with its last error."""

    url: str
    status: str
    failures: int
    last_error: str | None


@dataclass(frozen=True)
class StatsReport:
    """Reader counts per status, the last editions and the failing feeds."""

    subscribers: dict[str, int]
    editions: list[EditionStats]
    feed_failures: list[FeedFailure]
    notes: list[str] = dataclasses.field(default_factory=list)  # how delivery is settled

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return dataclasses.asdict(self)

    def describe(self) -> str:
        """A plain-text report for the terminal."""
        total = sum(self.subscribers.values())
        readers = ", ".join(f"{v} {k}" for k, v in sorted(self.subscribers.items()))
        lines = [plural(total, "reader") + (f": {readers}" if readers else ""), "last digests:"]
        if not self.editions:
            lines.append("  none yet")
        for e in self.editions:
            lines.extend(_edition_lines(e))
        if self.feed_failures:
            lines.append("feed failures:")
            lines.extend(f"  {f.url} {f.status}, {plural(f.failures, 'failure')}: "
                         f"{f.last_error}" for f in self.feed_failures)
        lines.extend(self.notes)
        return "\n".join(lines)


def _edition_lines(e: EditionStats) -> list[str]:
    status = f"{e.status} (paused)" if e.paused_at is not None else e.status
    lines = [f"  #{e.id} {e.key} {status}: {plural(e.batches, 'batch')} ({e.sent} sent, "
             f"{e.failed} failed, {e.pending} pending"
             + (f", {e.in_doubt} in doubt" if e.in_doubt else "") + ")",
             f"    readers: {e.readers.describe()}"]
    if e.opens or e.clicks:
        lines.append(f"    {plural(e.opens, 'open')}, {plural(e.clicks, 'click')}")
    if e.paused_at is not None:
        lines.append(f"    paused since {e.paused_at:%Y-%m-%d %H:%M} UTC: {e.pause_reason}; "
                     f"`digest resume {e.id}` goes on")
    if e.reason:
        lines.append(f"    {e.reason}")
    lines.extend(f"    error: {err}" for err in e.errors)
    return lines


def stats(app: App, limit: int = 10) -> StatsReport:
    """Counts, the last ``limit`` editions with their batches, and failing feeds."""
    with app.sessions() as session:
        subscribers = {
            str(status): int(n)
            for status, n in session.execute(
                select(Subscriber.status, func.count()).group_by(Subscriber.status))
        }
        editions = []
        for e in session.scalars(select(Edition).order_by(Edition.id.desc()).limit(limit)):
            counts = batch_counts(session, e.id)
            errors = list(session.scalars(
                select(Batch.error).where(Batch.edition_id == e.id, Batch.error.is_not(None))
                .distinct().limit(3)))
            editions.append(EditionStats(
                id=e.id, key=e.key, status=e.status.value, reason=e.reason,
                created_at=e.created_at, recipients=e.recipient_count, batches=e.batch_count,
                sent=counts.get(BatchStatus.SENT, 0), failed=counts.get(BatchStatus.FAILED, 0),
                pending=counts.get(BatchStatus.PENDING, 0) + counts.get(BatchStatus.SENDING, 0),
                errors=[str(x) for x in errors], delivered=e.delivered, opens=e.opens,
                clicks=e.clicks, readers=reader_counts(session, e),
                in_doubt=counts.get(BatchStatus.IN_DOUBT, 0), paused_at=e.paused_at,
                pause_reason=e.pause_reason if e.paused_at is not None else None,
            ))
        failures = [
            FeedFailure(f.url, f.status.value, f.consecutive_failures, f.last_error)
            for f in session.scalars(
                select(Feed).where(or_(Feed.status != FeedStatus.ACTIVE,
                                       Feed.consecutive_failures > 0))
                .order_by(Feed.status == FeedStatus.ACTIVE, Feed.id))
        ]
    return StatsReport(subscribers, editions, failures, in_doubt_notes(app.settings))
