"""The per-reader delivery record: which readers were handed each edition, and what followed.

Rows are written in bulk right after the provider accepts a request (``record_handed``): COPY
on PostgreSQL, one multi-row INSERT elsewhere. A batch that is sent again (a retry, a
re-drive after a dead worker) first asks ``already_handed`` and skips those readers, so the
record is what makes a resend exactly-once per reader. Provider events move a row forward
(``apply_event``); a later stage never goes back to an earlier one.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from digest.runtime import App
from digest.store.deliveries import FINAL, NOT_RECEIVED, apply_event
from digest.store.models import Delivery, DeliveryStatus, Edition, utcnow
from digest.store.sessions import transaction

__all__ = ["FINAL", "NOT_RECEIVED", "already_handed", "apply_event", "counts", "mark_failed",
           "prune", "prune_expired", "record_handed"]

D = DeliveryStatus
PRUNE_CHUNK = 10_000  # rows deleted per transaction


def record_handed(session: Session, edition_id: int, subscriber_ids: Sequence[int],
                  at: datetime, status: DeliveryStatus = D.HANDED) -> None:
    """Record that ``subscriber_ids`` were handed over (or refused) in one request."""
    if not subscriber_ids:
        return
    if session.get_bind().dialect.name == "postgresql":
        import psycopg

        try:
            with session.begin_nested():
                _copy(session, edition_id, subscriber_ids, at, status)
            return
        except (IntegrityError, psycopg.errors.UniqueViolation):
            pass  # a provider event recorded some of them first: insert the rest below
    # ON CONFLICT DO NOTHING, not a look-up first: a provider event committed in between
    # would fail the whole insert, and with it the record of a request already accepted.
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    rows = [{"edition_id": edition_id, "subscriber_id": sid, "status": int(status), "at": at}
            for sid in subscriber_ids]
    session.execute(dialect.insert(Delivery).on_conflict_do_nothing(), rows)


def _copy(session: Session, edition_id: int, subscriber_ids: Sequence[int], at: datetime,
          status: DeliveryStatus) -> None:
    stamp = at.isoformat()
    data = io.StringIO("".join(f"{edition_id}\t{sid}\t{int(status)}\t{stamp}\n"
                               for sid in subscriber_ids))
    raw = session.connection().connection.driver_connection
    with raw.cursor() as cur, cur.copy(  # type: ignore[union-attr]
            "COPY deliveries (edition_id, subscriber_id, status, at) FROM STDIN") as copy:
        copy.write(data.getvalue())


def already_handed(session: Session, edition_id: int, subscriber_ids: Iterable[int]) -> set[int]:
    """The readers among ``subscriber_ids`` who already have a row for this edition."""
    ids = set(subscriber_ids)
    if not ids:
        return set()
    # One range scan of the primary key, no IN list: binding 1000 parameters costs more than
    # reading the rows between them, even for one delivery slot's readers spread over the ids
    # with other slots' rows in between (looking them up by key took a 1M-reader fan-out over
    # 24 slots from 40 s to 66 s: BENCHMARKS.md).
    found = session.scalars(select(Delivery.subscriber_id).where(
        Delivery.edition_id == edition_id,
        Delivery.subscriber_id.between(min(ids), max(ids))))
    return {int(sid) for sid in found if int(sid) in ids}


def counts(session: Session, edition_id: int) -> dict[DeliveryStatus, int]:
    """How many readers of an edition are in each delivery status."""
    return {D(status): int(n) for status, n in session.execute(
        select(Delivery.status, func.count()).where(Delivery.edition_id == edition_id)
        .group_by(Delivery.status))}


def mark_failed(session: Session, edition_id: int, subscriber_ids: Sequence[int],
                at: datetime) -> None:
    """Readers of a batch that failed for good (and were not handed over before): recorded,
    so stats count them and a resend finds them."""
    record_handed(session, edition_id, subscriber_ids, at, D.FAILED)


def prune(session: Session, before: datetime, chunk: int = PRUNE_CHUNK) -> int:
    """Forget up to ``chunk`` rows of one edition created before ``before``; 0 when none is
    left. Rows are found by edition through the primary key (there is no index on ``at``),
    so pruning never scans the table; the caller commits each chunk."""
    editions = select(Edition.id).where(Edition.created_at < before).order_by(Edition.id)
    for edition_id in session.scalars(editions):
        upto = session.scalar(
            select(Delivery.subscriber_id).where(Delivery.edition_id == edition_id)
            .order_by(Delivery.subscriber_id).offset(chunk - 1).limit(1))
        if upto is None:  # the last chunk of this edition, or nothing left of it
            upto = session.scalar(select(func.max(Delivery.subscriber_id))
                                  .where(Delivery.edition_id == edition_id))
            if upto is None:
                continue
        result = session.execute(delete(Delivery).where(
            Delivery.edition_id == edition_id, Delivery.subscriber_id <= upto))
        return int(getattr(result, "rowcount", 0) or 0)
    return 0


def prune_expired(app: App, now: datetime | None = None, chunk: int = PRUNE_CHUNK) -> int:
    """Forget the rows of editions older than ``DIGEST_DELIVERY_RETENTION_DAYS`` (0 keeps them
    all), one chunk per transaction so no lock is held long."""
    days = app.settings.delivery_retention_days
    if days <= 0:
        return 0
    before = (now or utcnow()) - timedelta(days=days)
    total = 0
    while True:
        with transaction(app.sessions) as session:
            gone = prune(session, before, chunk)
        if not gone:
            return total
        total += gone
