"""Pause a running send and resume it: the operator's brake, and the complaint breaker's.

A pause sets ``Edition.paused_at`` and ``pause_reason`` on a sending edition. What it stops
lives in the ledger, not here: ``ledger.claim_batch`` claims no batch of a paused edition
(inside its own conditional UPDATE), so a worker that gets a paused edition's batch leaves it
pending and returns; batches already claimed finish normally. ``reconcile`` re-drives nothing
of a paused edition and ``ledger.finish_edition`` does not close it.

The resume clears the pause and hands the edition's pending batches to the workers. It also
leaves a note in ``pause_reason`` (``resumed with N complaints``, with ``paused_at`` empty):
the complaint count when the operator said go on, which the breaker (``delivery.breaker``)
treats as already seen. A reader of ``pause_reason`` should look at ``paused_at`` first.

Reasons: the operator's pause says ``paused by the operator``; the breaker's starts with
``complaints:`` (``BREAKER_PREFIX``), which the operator alerts look for.
"""

from __future__ import annotations

import logging
import re
from datetime import datetime

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from digest.delivery.ledger import finish_edition
from digest.errors import EditionError, NoSuchEditionError
from digest.runtime import App, Dispatch
from digest.store.models import (
    Batch,
    BatchStatus,
    Delivery,
    DeliveryStatus,
    Edition,
    EditionStatus,
)
from digest.store.sessions import transaction

__all__ = ["BREAKER_PREFIX", "OPERATOR_REASON", "complaints", "complaints_at_resume",
           "pause_edition", "resume_edition"]

log = logging.getLogger(__name__)

OPERATOR_REASON = "paused by the operator"
BREAKER_PREFIX = "complaints:"
_RESUMED = "resumed with {n} complaints"
_RESUMED_RE = re.compile(r"^resumed with (\d+) complaints")
_REASON_MAX = 300  # Edition.pause_reason


def _edition(app: App, edition_id: int) -> Edition:
    with app.sessions() as session:
        edition = session.get(Edition, edition_id)
        if edition is None:
            raise NoSuchEditionError(f"no edition {edition_id}: `digest stats` lists them")
        session.expunge(edition)
        return edition


def pause_edition(app: App, edition_id: int, *, reason: str, now: datetime) -> bool:
    """Pause a sending edition: no new batch of it is claimed until ``resume_edition``.

    True if this call paused it; False if it was paused already (its first reason is kept).
    Raises NoSuchEditionError, or EditionError when the edition is not being sent.
    """
    with transaction(app.sessions) as session:
        result = session.execute(
            update(Edition)
            .where(Edition.id == edition_id, Edition.status == EditionStatus.SENDING,
                   Edition.paused_at.is_(None))
            .values(paused_at=now, pause_reason=reason[:_REASON_MAX])
            .execution_options(synchronize_session=False))
        paused = bool(getattr(result, "rowcount", 0) == 1)
    if paused:
        log.warning("edition %d paused: %s", edition_id, reason,
                    extra={"edition_id": edition_id})
        return True
    edition = _edition(app, edition_id)
    if edition.paused_at is not None:
        return False
    raise EditionError(f"edition {edition_id} is {edition.status.value}, not being sent: "
                       "there is nothing to pause")


def resume_edition(app: App, edition_id: int, *, now: datetime,
                   dispatch: Dispatch | None = None) -> int:
    """Clear the pause and hand the edition's pending batches to the workers (``dispatch``,
    by default ``app.dispatch``); returns how many were handed over.

    An edition that is being sent but not paused is left as it is (0). The batches are
    stamped as queued now, so reconcile waits a stale period before queuing them again; when
    the broker is down, BrokerUnavailableError is raised after the resume is recorded, and
    reconcile sends them once the broker is back. An edition with nothing left is closed.
    Raises NoSuchEditionError, or EditionError when the edition is not being sent.
    """
    edition = _edition(app, edition_id)
    if edition.status is not EditionStatus.SENDING:
        raise EditionError(f"edition {edition_id} is {edition.status.value}, not being sent: "
                           "there is nothing to resume")
    if edition.paused_at is None:
        return 0
    with transaction(app.sessions) as session:
        seen = complaints(session, edition_id)
        result = session.execute(
            update(Edition)
            .where(Edition.id == edition_id, Edition.paused_at.is_not(None))
            .values(paused_at=None, pause_reason=_RESUMED.format(n=seen))
            .execution_options(synchronize_session=False))
        if getattr(result, "rowcount", 0) != 1:
            return 0  # another resume was first; it hands the batches over
        batch_ids = list(session.scalars(
            update(Batch)
            .where(Batch.edition_id == edition_id, Batch.status == BatchStatus.PENDING,
                   # Batches whose readers' hour has not come wait for their release.
                   or_(Batch.release_at.is_(None), Batch.release_at <= now))
            .values(claimed_at=now, released_at=now)
            .returning(Batch.id)
            .execution_options(synchronize_session=False)))
    log.warning("edition %d resumed: %d batches to send", edition_id, len(batch_ids),
                extra={"edition_id": edition_id})
    if not batch_ids:
        with transaction(app.sessions) as session:
            finish_edition(session, edition_id, now)
        return 0
    order = {int(b.rpartition("-")[2]): b for b in batch_ids}
    queued = [order[seq] for seq in sorted(order)]
    (dispatch or app.dispatch)(queued)
    return len(queued)


def complaints(session: Session, edition_id: int) -> int:
    """How many readers of the edition reported it as spam (their delivery rows; a complaint
    is a final status, so a later event never hides one)."""
    return int(session.scalar(
        select(func.count()).select_from(Delivery)
        .where(Delivery.edition_id == edition_id,
               Delivery.status == int(DeliveryStatus.COMPLAINED))) or 0)


def complaints_at_resume(pause_reason: str | None) -> int:
    """The complaint count the last resume noted (0 if the edition was never resumed)."""
    match = _RESUMED_RE.match(pause_reason or "")
    return int(match.group(1)) if match else 0
