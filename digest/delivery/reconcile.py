"""Re-drive batches a dead worker or a flushed broker left behind; close finished editions.

A batch left in sending by a dead worker may have reached the provider. With SendGrid's Event
Webhook on (``ledger.settled_by_events``) it is marked in doubt and waits
``DIGEST_IN_DOUBT_MINUTES`` for the provider's "processed" events, which record the readers
it accepted; then it is re-sent, and the send skips every reader with a record. Without the
webhook it is re-driven as soon as it is stale, as before: a request the provider accepted
just before the worker died is then sent again (``digest stats`` says so).

A paused edition (``delivery.pause``) is left alone: none of its batches is re-driven or put
in doubt, and it is not closed; its resume hands its pending batches to the workers.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, func, or_, select, update
from sqlalchemy.orm import Session

from digest.delivery.batch import send_batch_until_done
from digest.delivery.ledger import LIVE, finish_edition, not_paused, settled_by_events
from digest.delivery.outcomes import ReconcileReport
from digest.mail.personalize import RecipientFactory
from digest.runtime import App, Dispatch
from digest.store.models import (
    Batch,
    BatchStatus,
    Edition,
    EditionStatus,
    utcnow,
)
from digest.store.sessions import transaction

log = logging.getLogger(__name__)
_CHUNK = 500  # batch ids per UPDATE (SQLite allows 32766 bound parameters)


def reconcile(app: App, now: datetime | None = None, *,
              dispatch: Dispatch | None = None) -> ReconcileReport:
    """Re-drive batches pending or stuck in sending past the stale limit; close done editions.

    With the Event Webhook on, a stuck batch first waits in doubt (see the module docstring).
    With ``dispatch`` the batches go to the workers; without, they are sent in this process.
    """
    now = now or utcnow()
    with transaction(app.sessions) as session:
        stuck, in_doubt = _settle(app, session, now)
    # Editions are closed in a transaction of their own: ``finish_edition`` locks the edition
    # row, and a worker recording a batch locks the batch first, then the edition.
    with transaction(app.sessions) as session:
        open_editions = list(session.scalars(
            select(Edition.id).where(Edition.status == EditionStatus.SENDING,
                                     Edition.paused_at.is_(None))))
        finished = [e for e in open_editions if finish_edition(session, e, now)]
    log.info("reconcile: %d batches to re-drive, %d in doubt, %d editions finished",
             len(stuck), len(in_doubt), len(finished),
             extra={"batch_ids": stuck, "edition_ids": finished})
    if in_doubt:
        log.warning("reconcile: %d batches in doubt, waiting %s min for the provider's events",
                    len(in_doubt), app.settings.in_doubt_minutes, extra={"batch_ids": in_doubt})
    if stuck:
        log.warning("reconcile: re-driving %d batches", len(stuck), extra={"batch_ids": stuck})
        if dispatch is not None:
            dispatch(stuck)
        else:
            factory = RecipientFactory(app.settings)
            for batch_id in stuck:
                send_batch_until_done(app, batch_id, recipients=factory, now=now)
    return ReconcileReport(stuck, finished, in_doubt)


def _settle(app: App, session: Session, now: datetime) -> tuple[list[str], list[str]]:
    """Sort the open editions' stuck batches: (to re-drive now, waiting in doubt).

    A worker may claim a batch between the SELECT and the UPDATEs, and the operator may pause
    its edition, so each UPDATE repeats the condition its rows were chosen by (the edition
    not paused included), and only the rows it changed are re-driven.
    """
    stale_before = now - timedelta(seconds=app.settings.batch_stale_seconds)
    events = settled_by_events(app.settings)
    # A batch stale since before this has had its whole in-doubt wait for events.
    waited_before = stale_before - timedelta(minutes=app.settings.in_doubt_minutes)
    rows = session.execute(
        select(Batch.id, Batch.status, Batch.claimed_at).join(Edition)
        .where(Edition.status == EditionStatus.SENDING, Edition.paused_at.is_(None),
               _pending_stale(stale_before, now)
               | and_(Batch.status.in_(LIVE), Batch.claimed_at < stale_before))
        .order_by(Batch.edition_id, Batch.seq)
    ).all()
    pending = [b for b, status, _ in rows if status == BatchStatus.PENDING]
    stale_pending = _pending_stale(stale_before, now)
    live = [(b, claimed) for b, status, claimed in rows if status != BatchStatus.PENDING]
    # Pending: queued again, stamped so the next pass does not queue them again while these
    # messages still wait in the broker.
    requeue = {"status": BatchStatus.PENDING, "claimed_at": now, "released_at": now}
    kept = _update(session, pending, [stale_pending, not_paused()], requeue)
    doubtful: list[str] = []
    for batch_id, claimed_at in live:
        same_claim = and_(Batch.claimed_at == claimed_at, not_paused())
        if not events:
            kept.add(batch_id)  # claim_batch takes it over only while it is still stale
        elif claimed_at is not None and claimed_at < waited_before:
            # The events are in: released, to re-send to the readers without one.
            kept |= _update(session, [batch_id], [Batch.status.in_(LIVE), same_claim], requeue)
        elif _update(session, [batch_id], [Batch.status.in_(LIVE), same_claim],
                     {"status": BatchStatus.IN_DOUBT, "error": _doubt_note(app)}):
            doubtful.append(batch_id)
    stuck = [b for b, _, _ in rows if b in kept]
    return stuck, doubtful


def _pending_stale(stale_before: datetime, now: datetime) -> ColumnElement[bool]:
    """A pending batch whose readers' hour has come (``release_at``) and that was not
    queued (or, never queued, not due) within the stale limit: a release tick that never ran
    is made up for here, a batch waiting for its hour is not touched."""
    created = (select(Edition.created_at).where(Edition.id == Batch.edition_id)
               .correlate_except(Edition).scalar_subquery())
    return and_(Batch.status == BatchStatus.PENDING,
                or_(Batch.release_at.is_(None), Batch.release_at <= now),
                func.coalesce(Batch.claimed_at, Batch.release_at, created) < stale_before)


def _doubt_note(app: App) -> str:
    return (f"in doubt since its worker died mid-send: waiting "
            f"{app.settings.in_doubt_minutes:g} min for SendGrid's processed events")


def _update(session: Session, batch_ids: list[str], still: list[ColumnElement[bool]],
            values: dict[str, Any]) -> set[str]:
    """Set ``values`` on the batches still matching ``still``; the ids of those it changed."""
    changed: set[str] = set()
    for start in range(0, len(batch_ids), _CHUNK):
        chunk = batch_ids[start:start + _CHUNK]
        changed.update(session.scalars(
            update(Batch).where(Batch.id.in_(chunk), *still).values(**values)
            .returning(Batch.id).execution_options(synchronize_session=False)))
    return changed
