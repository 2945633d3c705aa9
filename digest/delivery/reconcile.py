"""Re-drive batches a dead worker or a flushed broker left behind; close finished editions."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import and_, func, or_, select, update

from digest.delivery.batch import send_batch_until_done
from digest.delivery.ledger import finish_edition
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



def reconcile(app: App, now: datetime | None = None, *,
              dispatch: Dispatch | None = None) -> ReconcileReport:
    """Re-drive batches pending or stuck in sending past the stale limit; close done editions.

    With ``dispatch`` the batches go to the workers; without, they are sent in this process.
    """
    now = now or utcnow()
    stale_before = now - timedelta(seconds=app.settings.batch_stale_seconds)
    with transaction(app.sessions) as session:
        open_editions = list(session.scalars(
            select(Edition.id).where(Edition.status == EditionStatus.SENDING)))
        finished = [e for e in open_editions if finish_edition(session, e, now)]
        rows = session.execute(
            select(Batch.id, Batch.status).join(Edition)
            .where(Edition.status == EditionStatus.SENDING, or_(
                and_(Batch.status == BatchStatus.PENDING,
                     func.coalesce(Batch.claimed_at, Edition.created_at) < stale_before),
                and_(Batch.status == BatchStatus.SENDING, Batch.claimed_at < stale_before),
            ))
            .order_by(Batch.edition_id, Batch.seq)
        ).all()
        stuck = [batch_id for batch_id, _ in rows]
        waiting = [batch_id for batch_id, status in rows if status == BatchStatus.PENDING]
        if waiting:
            # Stamp the re-drive, so the next pass does not queue the same batches again
            # while these messages still wait in the broker.
            session.execute(update(Batch).where(Batch.id.in_(waiting),
                                                Batch.status == BatchStatus.PENDING)
                            .values(claimed_at=now).execution_options(synchronize_session=False))
    log.info("reconcile: %d batches to re-drive, %d editions finished", len(stuck),
             len(finished), extra={"batch_ids": stuck, "edition_ids": finished})
    if stuck:
        log.warning("reconcile: re-driving %d batches", len(stuck), extra={"batch_ids": stuck})
        if dispatch is not None:
            dispatch(stuck)
        else:
            factory = RecipientFactory(app.settings)
            for batch_id in stuck:
                send_batch_until_done(app, batch_id, recipients=factory, now=now)
    return ReconcileReport(stuck, finished)
