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
from datetime import datetime

from sqlalchemy import delete, func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from digest.store.models import Delivery, DeliveryStatus

__all__ = ["FINAL", "NOT_RECEIVED", "already_handed", "apply_event", "counts", "mark_failed",
           "prune", "record_handed"]

D = DeliveryStatus
# Outcomes that end a row's story: nothing earlier replaces them.
FINAL = frozenset({D.DELIVERED, D.BOUNCED, D.DROPPED, D.COMPLAINED, D.UNSUBSCRIBED,
                   D.REFUSED, D.FAILED})
# Readers who did not get the edition: a resend may try them again.
NOT_RECEIVED = frozenset({D.BOUNCED, D.DROPPED, D.REFUSED, D.FAILED})


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
    rows = [{"edition_id": edition_id, "subscriber_id": sid, "status": int(status), "at": at}
            for sid in subscriber_ids]
    known = already_handed(session, edition_id, subscriber_ids)
    fresh = [row for row in rows if row["subscriber_id"] not in known]
    if fresh:
        session.execute(insert(Delivery), fresh)


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
    ids = sorted(set(subscriber_ids))
    if not ids:
        return set()
    return {int(sid) for sid in session.scalars(
        select(Delivery.subscriber_id).where(
            Delivery.edition_id == edition_id,
            Delivery.subscriber_id.between(ids[0], ids[-1]),
            Delivery.subscriber_id.in_(ids)))}


def apply_event(session: Session, edition_id: int, subscriber_id: int, status: DeliveryStatus,
                at: datetime, message_id: str | None = None) -> bool:
    """Move one reader's row to ``status`` (creating it if the event came first).

    Returns False when the row already holds a final outcome or a later stage.
    """
    row = session.get(Delivery, (edition_id, subscriber_id))
    if row is None:
        try:
            with session.begin_nested():
                session.add(Delivery(edition_id=edition_id, subscriber_id=subscriber_id,
                                     status=int(status), at=at, updated_at=at,
                                     message_id=message_id))
            return True
        except IntegrityError:
            row = session.get(Delivery, (edition_id, subscriber_id))
            if row is None:
                raise
    current = D(row.status)
    if current in FINAL or (status not in FINAL and status <= current):
        return False
    row.status = int(status)
    row.updated_at = at
    row.message_id = row.message_id or message_id
    return True


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


def prune(session: Session, before: datetime) -> int:
    """Forget rows handed over before ``before`` (DIGEST_DELIVERY_RETENTION_DAYS)."""
    result = session.execute(delete(Delivery).where(Delivery.at < before))
    return int(getattr(result, "rowcount", 0) or 0)
