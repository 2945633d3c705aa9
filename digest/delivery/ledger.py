"""The ledger: a snapshot of recipients split into batches, each sent exactly once.

The ledger (``models.Batch``) is the record of what was sent. A batch covers the eligible
readers with ``after_id < id <= upto_id`` and ``id <= edition.max_subscriber_id``; its id is
``"<edition>-<seq>"``. Sending a batch first claims it with one conditional UPDATE (pending,
or sending but stale, becomes sending), so a duplicated Celery message, a redelivery after a
worker died, or a reconcile pass can never send it twice while it is live. The outcome is
recorded after the provider answers: sent (with any readers refused one by one); pending
again with the error (transient, retried with backoff); or failed with the provider's text
(permanent, or out of attempts). ``after_id`` is also a resume cursor: it moves past readers
already handed over, so a batch that grew past one request, or an SMTP session that dropped
mid-batch, resumes on retry instead of mailing anyone twice.

An edition can be paused (``delivery.pause``: the operator, or the complaint breaker): then
``claim_batch`` claims none of its batches (the one place that rule lives, inside the claim's
own UPDATE), batches already claimed finish normally, and ``finish_edition`` leaves it open
until it is resumed.

``reconcile`` re-drives batches left pending or stuck in sending past ``batch_stale_seconds``
(a killed worker, a flushed Redis) and closes editions whose batches are all done. When the
provider reports what it accepted (``settled_by_events``: SendGrid with its Event Webhook on),
a batch stuck in sending is "in doubt" instead: its request may have been accepted, so nobody
may take it over until reconcile has waited ``in_doubt_minutes`` for the provider's
"processed" events; the re-sent batch then skips every reader with a delivery record.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, func, or_, select, update
from sqlalchemy.orm import Session

from digest.config import Settings
from digest.delivery.plan import eligible
from digest.errors import EditionError
from digest.runtime import App
from digest.slots import slot_at
from digest.store.models import (
    Batch,
    BatchStatus,
    Edition,
    EditionStatus,
    Subscriber,
    utcnow,
)
from digest.store.sessions import transaction

# A batch in these states has a worker (or had one that may have got its request through).
LIVE = (BatchStatus.SENDING, BatchStatus.IN_DOUBT)
# A batch in these states keeps its edition open.
OPEN = (BatchStatus.PENDING, *LIVE)


def settled_by_events(settings: Settings) -> bool:
    """Whether the provider tells us what it accepted: SendGrid with its Event Webhook on.

    Then a batch whose worker died mid-send waits for the provider's events; otherwise it is
    re-driven once stale (SMTP answers per reader, so a resumed batch already skips them).
    """
    return settings.mail_backend == "sendgrid" and bool(settings.sendgrid_webhook_public_key)


def in_doubt_notes(settings: Settings) -> list[str]:
    """What ``digest stats`` says when a dead worker's batch can only be re-driven blind."""
    if settings.mail_backend != "sendgrid" or settled_by_events(settings):
        return []
    return ["note: a batch whose worker died mid-send is re-sent once stale, so a request "
            "SendGrid had already accepted goes out twice; set "
            "DIGEST_SENDGRID_WEBHOOK_PUBLIC_KEY (Event Webhook) to settle it from SendGrid's "
            "own record"]


def not_paused() -> ColumnElement[bool]:
    """True for a batch whose edition is not paused: a correlated subquery, so it is judged
    inside the statement that uses it (a pause committed before it is always seen)."""
    return ~(select(Edition.id).where(Edition.id == Batch.edition_id,
                                      Edition.paused_at.is_not(None))
             .correlate_except(Edition).exists())


def claim_batch(app: App, batch_id: str, now: datetime) -> bool:
    """Claim one batch for sending: True if this caller now holds it.

    Pending (or, without provider events, sending but stale) becomes sending, in one
    conditional UPDATE that also requires its edition not to be paused and the batch's readers'
    hour to have come (``release_at``); a refused claim changes nothing, so a paused
    edition's batch, or one early, simply stays pending until the resume or its release.
    """
    stale_before = now - timedelta(seconds=app.settings.batch_stale_seconds)
    claimable = Batch.status == BatchStatus.PENDING
    if not settled_by_events(app.settings):
        # Without provider events a stale claim is taken over at once; with them, only
        # reconcile releases it, after the in-doubt wait.
        claimable = or_(claimable, and_(Batch.status == BatchStatus.SENDING,
                                        Batch.claimed_at < stale_before))
    with transaction(app.sessions) as session:
        result = session.execute(
            update(Batch)
            .where(Batch.id == batch_id, claimable, not_paused(),
                   # Released by the tick (its clock), or due by this worker's clock.
                   or_(Batch.released_at.is_not(None), Batch.release_at.is_(None),
                       Batch.release_at <= now))
            .values(status=BatchStatus.SENDING, claimed_at=now, attempts=Batch.attempts + 1)
            .execution_options(synchronize_session=False)
        )
        return bool(getattr(result, "rowcount", 0) == 1)


def edition_paused(app: App, edition_id: int) -> bool:
    """Whether the edition is paused now (to say why a claim was refused; decides nothing)."""
    with app.sessions() as session:
        return session.scalar(select(Edition.paused_at).where(Edition.id == edition_id)) \
            is not None


def load_batch(app: App, batch_id: str) -> tuple[Batch, Edition, list[Any]]:
    with app.sessions() as session:
        batch = session.get(Batch, batch_id)
        if batch is None:
            raise EditionError(f"no batch {batch_id!r} in the ledger")
        edition = batch.edition
        base = (select(Subscriber.id, Subscriber.email, Subscriber.name, Subscriber.link_key,
                       Subscriber.topic_ids)
                .where(*eligible(edition.cadence, edition.max_subscriber_id),
                       Subscriber.id > batch.after_id, Subscriber.id <= batch.upto_id)
                .order_by(Subscriber.id))
        if batch.slot is None:
            rows = list(session.execute(base).all())
        else:
            planned = edition.created_at
            movers = session.execute(base.add_columns(
                Subscriber.slot, Subscriber.slot_changed_at, Subscriber.slot_history)
                .where(Subscriber.slot_changed_at > planned))
            rows = sorted((*session.execute(base.where(*in_slot(batch.slot, planned))),
                           *(row for row in movers if slot_at(
                               row.slot, row.slot_changed_at, row.slot_history,
                               planned) == batch.slot)),
                          key=lambda row: int(row.id))
        session.expunge_all()
        return batch, edition, rows


def in_slot(slot: str, planned_at: datetime) -> list[ColumnElement[bool]]:
    """Readers in ``slot`` since before an edition planned at ``planned_at``. Those who
    changed since keep, for that edition, the slot they had then (``slots.slot_at``): never
    a second copy at their new hour."""
    return [Subscriber.slot == slot,
            or_(Subscriber.slot_changed_at.is_(None), Subscriber.slot_changed_at <= planned_at)]


def record_outcome(app: App, batch_id: str, claimed_at: datetime, **values: Any) -> None:
    """Record what the provider answered; a worker thought dead (in doubt) may still do so."""
    with transaction(app.sessions) as session:
        session.execute(
            update(Batch)
            .where(Batch.id == batch_id, Batch.status.in_(LIVE),
                   Batch.claimed_at == claimed_at)
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        edition_id = session.scalar(select(Batch.edition_id).where(Batch.id == batch_id))
        if edition_id is not None and values.get("status") != BatchStatus.PENDING:
            finish_edition(session, int(edition_id))


def batch_counts(session: Session, edition_id: int) -> dict[BatchStatus, int]:
    """How many of an edition's ledger batches are in each status."""
    return {BatchStatus(status): int(n) for status, n in session.execute(
        select(Batch.status, func.count()).where(Batch.edition_id == edition_id)
        .group_by(Batch.status))}


def finish_edition(session: Session, edition_id: int, now: datetime | None = None) -> bool:
    """Close a sending edition once none of its batches is pending, sending or in doubt.

    A paused edition stays open (its resume closes it if nothing is left to send).

    The edition row is locked first: two workers recording its last two batches at once
    would otherwise each see the other's batch still sending, and neither would close it.
    With the lock, the second one counts after the first has committed.
    """
    session.execute(select(Edition.id).where(Edition.id == edition_id).with_for_update())
    counts = batch_counts(session, edition_id)
    if any(counts.get(status) for status in OPEN):
        return False
    failed, total = counts.get(BatchStatus.FAILED, 0), sum(counts.values())
    status = EditionStatus.FAILED if total and failed == total else EditionStatus.SENT
    reason = f"{failed} of {total} batches failed" if failed else None
    result = session.execute(
        update(Edition).where(Edition.id == edition_id, Edition.status == EditionStatus.SENDING,
                              Edition.paused_at.is_(None))
        .values(status=status, reason=reason, finished_at=now or utcnow())
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0) == 1)


def move_cursor(session: Session, batch_id: str, claimed_at: datetime, after_id: int) -> None:
    """Move the batch's start past readers already handed over, so a retry skips them; in the
    caller's transaction, together with those readers' delivery rows."""
    session.execute(
        update(Batch)
        .where(Batch.id == batch_id, Batch.status.in_(LIVE),
               Batch.claimed_at == claimed_at, Batch.after_id < after_id)
        .values(after_id=after_id)
        .execution_options(synchronize_session=False)
    )


def edition_of(batch_id: str) -> int | None:
    """The edition a ledger batch id (``<edition>-<seq>``) belongs to."""
    head = batch_id.partition("-")[0]
    return int(head) if head.isdigit() else None
