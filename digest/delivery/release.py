"""Releasing a scheduled edition's batches at their readers' own hour.

A scheduled edition is planned per delivery slot (``plan.plan_batches`` with a ``Release``):
every batch holds one slot's readers and is due at ``release_at``. A batch is handed to the
workers once, when due, by :func:`release_batches`: one conditional UPDATE marks it released
(and stamps ``claimed_at``, as reconcile does when it queues a batch, so reconcile re-drives it
only if its message is lost). ``ledger.claim_batch`` refuses a batch before its hour whoever
asks, so an early message, a re-drive or a resend cannot send it early either.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import or_, select, update

from digest.config import Settings
from digest.delivery.ledger import not_paused
from digest.delivery.plan import Release
from digest.runtime import App
from digest.slots import parse_slot, period_date, release_at
from digest.store.models import Batch, BatchStatus, Cadence, Edition
from digest.store.sessions import transaction


def slot_release(settings: Settings, edition: Edition) -> Release | None:
    """When each slot's readers get ``edition`` (None: all at once, as for instant)."""
    if edition.cadence is Cadence.INSTANT or edition.period_end is None:
        return None
    day = period_date(settings, edition.period_end)
    cadence = edition.cadence

    def release(slot: str) -> datetime:
        return release_at(settings, cadence, day, parse_slot(slot))

    return release


def release_batches(app: App, now: datetime, edition_id: int | None = None) -> list[str]:
    """Mark the pending batches due at ``now`` released, and return their ids, earliest due
    first (those of ``edition_id`` only, if given). A paused edition's batches wait."""
    conditions = [Batch.status == BatchStatus.PENDING, Batch.released_at.is_(None),
                  or_(Batch.release_at.is_(None), Batch.release_at <= now), not_paused()]
    if edition_id is not None:
        conditions.append(Batch.edition_id == edition_id)
    with transaction(app.sessions) as session:
        rows = session.execute(
            update(Batch).where(*conditions).values(released_at=now, claimed_at=now)
            .returning(Batch.id, Batch.release_at, Batch.edition_id, Batch.seq)
            .execution_options(synchronize_session=False)).all()
    ordered = sorted(rows, key=lambda row: (row.release_at or now, row.edition_id, row.seq))
    return [str(row.id) for row in ordered]


def mark_released(app: App, batch_ids: Sequence[str], now: datetime) -> None:
    """Note that ``batch_ids`` (due at once: a send by hand, a resend) were handed over, so
    a release tick does not hand them over again."""
    with transaction(app.sessions) as session:
        for start in range(0, len(batch_ids), 500):
            session.execute(update(Batch).where(Batch.id.in_(list(batch_ids[start:start + 500])),
                                                Batch.released_at.is_(None))
                            .values(released_at=now)
                            .execution_options(synchronize_session=False))


def waiting(app: App, edition_id: int) -> tuple[int, datetime | None]:
    """How many of an edition's batches wait for their hour, and when the next is due."""
    with app.sessions() as session:
        times = list(session.scalars(
            select(Batch.release_at).where(Batch.edition_id == edition_id,
                                           Batch.status == BatchStatus.PENDING,
                                           Batch.released_at.is_(None))))
    due = [t for t in times if t is not None]
    return len(times), min(due) if due else None
