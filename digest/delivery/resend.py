"""Send a past edition again, only to the readers who did not get it.

Who did not get it: the edition's cadence's readers (active, not paused) with no delivery row
for it (they joined or came back later, or were paused), or whose row says it never reached
them (``record.NOT_RECEIVED``: refused, failed, bounced, dropped), leaving out readers whose
topics hold none of its posts (``topicplan``). Those readers are planned
as new ledger batches of the same edition, numbered on from its last batch
(``<edition>-<seq>``), so the ledger, reconcile and the workers treat them like any other
batch; the batch send skips anyone recorded meanwhile, and gives a reader who already received
some of the edition's posts in another edition only the rest. A reader's NOT_RECEIVED row is
cleared in the planning transaction: the resend writes its own record of them.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, delete, exists, func, insert, select
from sqlalchemy.orm import Session

from digest.delivery.outcomes import SendResult
from digest.delivery.plan import batch_size_for, eligible, ledger_rows
from digest.delivery.record import NOT_RECEIVED
from digest.delivery.send import Progress, deliver, titles
from digest.delivery.topicplan import has_posts_for, reach
from digest.errors import EditionError, NoSuchEditionError, SubscriberError
from digest.readers.addresses import email_hashes, normalise
from digest.runtime import App, Dispatch
from digest.store.models import (
    Batch,
    BatchStatus,
    Delivery,
    DeliveryStatus,
    Edition,
    EditionStatus,
    Subscriber,
    utcnow,
)
from digest.store.sessions import transaction

_NOT_RECEIVED = [int(s) for s in NOT_RECEIVED]


def _received(edition_id: int) -> ColumnElement[bool]:
    """The reader has a row for the edition that is not a failure to receive it."""
    return exists().where(Delivery.edition_id == edition_id,
                          Delivery.subscriber_id == Subscriber.id,
                          Delivery.status.not_in(_NOT_RECEIVED))


def _targets(edition: Edition, reader_id: int | None) -> list[ColumnElement[bool]]:
    conditions = [*eligible(edition.cadence), ~_received(edition.id)]
    if reader_id is not None:
        conditions.append(Subscriber.id == reader_id)
    return conditions


def _ranges(session: Session, conditions: list[ColumnElement[bool]],
            size: int) -> list[tuple[int, int, int]]:
    """``(after_id, upto_id, count)`` per batch of ``size`` target readers, by id."""
    ranked = (select(Subscriber.id.label("id"),
                     func.row_number().over(order_by=Subscriber.id).label("rn"))
              .where(*conditions).subquery())
    ids = [(int(i), int(rn)) for i, rn in session.execute(
        select(ranked.c.id, ranked.c.rn).where(
            (ranked.c.rn % size == 0) | (ranked.c.rn == select(func.max(ranked.c.rn))
                                         .scalar_subquery()))
        .order_by(ranked.c.id))]
    if not ids:
        return []
    # The first batch starts at the first target: ranges hold only readers this resend means.
    first = int(session.scalar(select(func.min(ranked.c.id))) or 1)
    ranges, after, taken = [], first - 1, 0
    for upto, rn in ids:
        ranges.append((after, upto, rn - taken))
        after, taken = upto, rn
    return ranges


def _load(session: Session, edition_id: int) -> Edition:
    edition = session.get(Edition, edition_id, with_for_update=True)
    if edition is None:
        raise NoSuchEditionError(f"there is no edition {edition_id}; `digest stats` lists "
                                 "them")
    if edition.status is EditionStatus.EMPTY:
        raise EditionError(f"edition {edition_id} held no posts; there is nothing to resend")
    if edition.status is EditionStatus.SENDING:
        raise EditionError(f"edition {edition_id} is still being sent; resend it once it has "
                           "finished (see `digest stats`)")
    return edition


def _check_record(session: Session, edition: Edition, retention_days: int,
                  now: datetime) -> None:
    """Refuse when the record cannot say who got the edition: it would go to everyone."""
    if retention_days and edition.created_at < now - timedelta(days=retention_days):
        raise EditionError(
            f"edition {edition.id} is older than DIGEST_DELIVERY_RETENTION_DAYS "
            f"({retention_days} days): who received it is no longer recorded, so it cannot be "
            "resent without mailing readers who already have it")
    handed = session.scalar(select(Delivery.subscriber_id).where(
        Delivery.edition_id == edition.id).limit(1))
    went_out = session.scalar(select(Batch.id).where(
        Batch.edition_id == edition.id, Batch.status == BatchStatus.SENT).limit(1))
    if handed is None and went_out is not None:
        raise EditionError(
            f"edition {edition.id} went out before readers were recorded one by one: who "
            "received it is unknown, so it cannot be resent without mailing them again")


def _reader(session: Session, app: App, edition: Edition, to: str) -> tuple[int | None, str]:
    """The reader ``to`` names, or None with the reason they are not resent the edition."""
    address = normalise(to)
    row = session.execute(
        select(Subscriber.id, Subscriber.status, Subscriber.cadence, Subscriber.paused)
        .where(Subscriber.email_hash.in_(email_hashes(address, app.address_key)))).first()
    if row is None:
        raise SubscriberError(f"{address} is not a reader; `digest subscribers list` shows them")
    got = session.scalar(select(Delivery.status).where(
        Delivery.edition_id == edition.id, Delivery.subscriber_id == row.id))
    if got is not None and got not in _NOT_RECEIVED:
        return None, (f"{address} already received edition {edition.id} "
                      f"({DeliveryStatus(got).name.lower()}); nothing sent")
    if session.scalar(select(Subscriber.id).where(*_targets(edition, row.id))) is None:
        return None, (f"{address} does not receive {edition.cadence.value} digests now "
                      f"({row.status.value}, {row.cadence.value}"
                      f"{', paused' if row.paused else ''}); nothing sent")
    return int(row.id), ""


def _plan(session: Session, edition: Edition, reader_id: int | None,
          size: int) -> tuple[list[str], int]:
    """New ledger batches of ``edition`` for its target readers, numbered on; and how many
    readers they hold."""
    found = reach(session, edition.cadence, edition.post_ids or [])
    conditions = [*_targets(edition, reader_id), has_posts_for(found)]
    ranges = _ranges(session, conditions, size)
    if not ranges:
        return [], 0
    # Readers with a row (refused, failed, bounced ...) were planned already: count only the
    # others, before those rows are cleared.
    recorded = exists().where(Delivery.edition_id == edition.id,
                              Delivery.subscriber_id == Subscriber.id)
    newcomers = int(session.scalar(select(func.count()).select_from(Subscriber)
                                   .where(*conditions, ~recorded)) or 0)
    targets = select(Subscriber.id).where(*eligible(edition.cadence))
    if reader_id is not None:
        targets = targets.where(Subscriber.id == reader_id)
    session.execute(delete(Delivery).where(
        and_(Delivery.edition_id == edition.id, Delivery.status.in_(_NOT_RECEIVED),
             Delivery.subscriber_id.in_(targets.scalar_subquery())))
        .execution_options(synchronize_session=False))
    last = int(session.scalar(select(func.max(Batch.seq)).where(
        Batch.edition_id == edition.id)) or 0)
    rows = ledger_rows(edition.id, ranges, first_seq=last + 1)
    session.execute(insert(Batch), rows)
    edition.max_subscriber_id = max(edition.max_subscriber_id, ranges[-1][1])
    edition.batch_count += len(rows)
    edition.recipient_count += newcomers
    edition.status, edition.finished_at = EditionStatus.SENDING, None
    return [str(r["id"]) for r in rows], sum(r[2] for r in ranges)


def resend_edition(app: App, edition_id: int, *, to: str | None = None, queue: bool = False,
                   progress: Progress | None = None,
                   dispatch: Dispatch | None = None) -> SendResult:
    """Send edition ``edition_id`` again to the readers who did not get it (or only ``to``).

    Returns status ``empty`` with the reason when there is no one to send it to.
    """
    transport = app.transport()
    size = batch_size_for(app.settings, transport)
    try:
        with transaction(app.sessions) as session:
            edition = _load(session, edition_id)
            _check_record(session, edition, app.settings.delivery_retention_days, utcnow())
            reader_id, why = (None, "") if to is None else _reader(session, app, edition, to)
            batch_ids, planned = ([], 0) if why else _plan(session, edition, reader_id, size)
            cadence, names = edition.cadence.value, titles(session, edition.post_ids or [])
    except BaseException:
        transport.close()
        raise
    if not batch_ids:
        transport.close()
        reason = why or f"every {cadence} reader already received edition {edition_id}"
        return SendResult(edition_id, EditionStatus.EMPTY.value, reason, 0, 0, 0, 0, cadence,
                          names)
    result = deliver(app, edition_id, batch_ids, planned, transport, queue=queue,
                     progress=progress, dispatch=dispatch)
    return _this_resend(app, result, batch_ids, planned)


def _this_resend(app: App, result: SendResult, batch_ids: list[str],
                 planned: int) -> SendResult:
    """The result of this resend alone: its readers and batches, not the edition's totals."""
    with app.sessions() as session:
        counts = {BatchStatus(s): int(n) for s, n in session.execute(
            select(Batch.status, func.count()).where(Batch.id.in_(batch_ids))
            .group_by(Batch.status))}
    return replace(result, recipients=planned, batches=len(batch_ids),
                   sent=counts.get(BatchStatus.SENT, 0), failed=counts.get(BatchStatus.FAILED, 0))
