"""The editions' history for the console: a page of editions with their outcome, and one edition.

The list reads only indexed, small aggregates, so it stays fast with a million readers: the
edition rows by primary key (keyset pagination, newest first), their ledger batches grouped by
status (``ix_batches_status``: one row per batch, not per reader) and the provider's counters on
the edition. One edition's page adds the per-reader record grouped by status
(``readercounts``), a single indexed range of the deliveries' primary key.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from digest.delivery.nextdigest import MailView, mail_view
from digest.delivery.readercounts import ReaderCounts, reader_counts
from digest.delivery.record import NOT_RECEIVED
from digest.delivery.send import titles
from digest.errors import NoSuchEditionError
from digest.runtime import App
from digest.store.models import Batch, BatchStatus, Edition, EditionStatus

PAGE_SIZE = 25


@dataclass(frozen=True)
class LedgerCounts:
    """An edition's batches by status, and the readers the sent ones carried."""

    batches: dict[str, int] = field(default_factory=dict)
    readers_sent: int = 0
    readers_failed: int = 0

    def of(self, status: BatchStatus) -> int:
        return self.batches.get(status.value, 0)

    @property
    def open(self) -> int:
        """Batches still to go: pending, sending or in doubt."""
        return sum(self.of(s) for s in (BatchStatus.PENDING, BatchStatus.SENDING,
                                         BatchStatus.IN_DOUBT))


@dataclass(frozen=True)
class EditionSummary:
    """One line of the history."""

    id: int
    key: str
    cadence: str
    status: str
    reason: str | None
    subject: str
    created_at: datetime
    finished_at: datetime | None
    paused: bool
    recipients: int
    batch_count: int
    ledger: LedgerCounts
    delivered: int
    opens: int
    clicks: int


@dataclass(frozen=True)
class HistoryPage:
    """A page of editions, newest first; ``next_before`` continues it (None: the last page)."""

    editions: list[EditionSummary]
    next_before: int | None


@dataclass(frozen=True)
class EditionDetail:
    """One edition: what it held and what became of it, reader by reader."""

    summary: EditionSummary
    posts: tuple[str, ...]
    mail: MailView | None
    readers: ReaderCounts
    not_received: int
    errors: list[str]
    can_resend: bool


def ledger_counts(session: Session, edition_ids: Sequence[int]) -> dict[int, LedgerCounts]:
    """The ledger of each edition in ``edition_ids``, in one grouped query."""
    found: dict[int, dict[str, int]] = {}
    sent: dict[int, int] = {}
    failed: dict[int, int] = {}
    if not edition_ids:
        return {}
    rows = session.execute(
        select(Batch.edition_id, Batch.status, func.count(), func.coalesce(func.sum(Batch.size), 0))
        .where(Batch.edition_id.in_(list(edition_ids)))
        .group_by(Batch.edition_id, Batch.status))
    for edition_id, status, n, readers in rows:
        eid, st = int(edition_id), BatchStatus(status)
        found.setdefault(eid, {})[st.value] = int(n)
        if st is BatchStatus.SENT:
            sent[eid] = int(readers)
        elif st is BatchStatus.FAILED:
            failed[eid] = int(readers)
    return {eid: LedgerCounts(found.get(eid, {}), sent.get(eid, 0), failed.get(eid, 0))
            for eid in edition_ids}


def _summary(edition: Edition, ledger: LedgerCounts) -> EditionSummary:
    return EditionSummary(
        id=edition.id, key=edition.key, cadence=edition.cadence.value,
        status=edition.status.value, reason=edition.reason, subject=edition.subject,
        created_at=edition.created_at, finished_at=edition.finished_at,
        paused=edition.paused_at is not None, recipients=edition.recipient_count,
        batch_count=edition.batch_count, ledger=ledger, delivered=edition.delivered,
        opens=edition.opens, clicks=edition.clicks)


def edition_history(app: App, *, before: int | None = None,
                    limit: int = PAGE_SIZE) -> HistoryPage:
    """Up to ``limit`` editions with ids below ``before`` (all: None), newest first."""
    limit = max(1, limit)
    query = select(Edition).order_by(Edition.id.desc()).limit(limit + 1)
    if before is not None:
        query = query.where(Edition.id < before)
    with app.sessions() as session:
        editions = list(session.scalars(query))
        more = len(editions) > limit
        editions = editions[:limit]
        ledgers = ledger_counts(session, [e.id for e in editions])
        rows = [_summary(e, ledgers[e.id]) for e in editions]
    return HistoryPage(rows, rows[-1].id if more and rows else None)


def edition_detail(app: App, edition_id: int) -> EditionDetail:
    """Edition ``edition_id`` with its content and outcome; NoSuchEditionError if none."""
    with app.sessions() as session:
        edition = session.get(Edition, edition_id)
        if edition is None:
            raise NoSuchEditionError(f"there is no edition {edition_id}")
        ledger = ledger_counts(session, [edition.id])[edition.id]
        readers = reader_counts(session, edition)
        errors = [str(x) for x in session.scalars(
            select(Batch.error).where(Batch.edition_id == edition.id, Batch.error.is_not(None))
            .distinct().limit(3))]
        posts = titles(session, edition.post_ids or [])
        summary = _summary(edition, ledger)
        has_mail = edition.status is not EditionStatus.EMPTY and bool(edition.html)
        mail = mail_view(app, edition) if has_mail else None
        can_resend = edition.status in (EditionStatus.SENT, EditionStatus.FAILED)
    missed = sum(n for name, n in readers.by_status.items()
                 if name.upper() in {s.name for s in NOT_RECEIVED})
    return EditionDetail(
        summary=summary, posts=posts, mail=mail, readers=readers, not_received=missed,
        errors=errors, can_resend=can_resend)
