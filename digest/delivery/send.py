"""Send the digest now: claim this period's edition, plan its batches, then send them here or
queue them for the workers (``App.dispatch``). Also the dry run that counts without sending.

The guarantees live in the pieces: ``editions`` claims each cadence and period once,
``plan`` snapshots the readers into ledger batches, ``ledger`` claims and records each batch
with one conditional UPDATE, ``batch`` hands a batch to the transport, and ``reconcile``
re-drives what a dead worker or a flushed broker left behind.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from digest.delivery.batch import send_batch_until_done
from digest.delivery.editions import claim_edition, draft, render_posts
from digest.delivery.ledger import batch_counts, finish_edition
from digest.delivery.outcomes import SendResult
from digest.delivery.plan import NO_READERS, batch_size_for, count_recipients, plan_batches
from digest.delivery.testcopy import send_test_copy
from digest.errors import EditionError
from digest.mail.personalize import RecipientFactory
from digest.mail.transports.base import Transport
from digest.runtime import App, Dispatch
from digest.store.models import (
    Batch,
    BatchStatus,
    Cadence,
    Edition,
    EditionStatus,
)
from digest.store.sessions import transaction

Progress = Callable[[int, int], None]


def _edition_result(app: App, edition_id: int, status: str | None = None) -> SendResult:
    with app.sessions() as session:
        edition = session.get(Edition, edition_id)
        if edition is None:
            raise EditionError(f"no edition {edition_id}")
        counts = batch_counts(session, edition_id)
        return SendResult(
            edition_id=edition.id, status=status or edition.status.value, reason=edition.reason,
            recipients=edition.recipient_count, batches=edition.batch_count,
            sent=counts.get(BatchStatus.SENT, 0), failed=counts.get(BatchStatus.FAILED, 0),
        )


def send_digest(
    app: App,
    *,
    cadence: Cadence = Cadence.WEEKLY,
    force: bool = False,
    dry_run: bool = False,
    to: str | None = None,
    queue: bool = False,
    now: datetime | None = None,
    progress: Progress | None = None,
    dispatch: Dispatch | None = None,
) -> SendResult:
    """Send this period's digest of ``cadence`` (see the module docstring for the guarantees).

    ``to`` sends one test copy and claims nothing; ``dry_run`` renders and counts only;
    ``queue`` hands each batch to the workers instead of sending in this process.
    Raises ``AlreadySentError`` when the period was already claimed (unless ``force``).
    """
    if to is not None:
        return send_test_copy(app, to, cadence=cadence, now=now)
    if dry_run:
        return _dry_run(app, cadence, now)
    with app.sessions() as session:
        if count_recipients(session, cadence) == 0:
            return SendResult(None, EditionStatus.EMPTY.value, NO_READERS, 0, 0, 0, 0)
    transport = app.transport()
    size = batch_size_for(app.settings, transport)
    batch_ids: list[str] = []

    def plan(session: Session, edition: Edition) -> None:
        batch_ids.extend(plan_batches(session, edition, size))

    edition = claim_edition(app, cadence, force=force, now=now, plan=plan)
    if edition is None:
        transport.close()
        return SendResult(None, EditionStatus.EMPTY.value, "no new posts", 0, 0, 0, 0)
    if edition.status is EditionStatus.EMPTY or not batch_ids:
        transport.close()
        return _edition_result(app, edition.id)
    if queue:
        transport.close()
        (dispatch or app.dispatch)(batch_ids)
        return _edition_result(app, edition.id, status="queued")
    try:
        _send_inline(app, batch_ids, edition.recipient_count, transport, progress)
    finally:
        transport.close()
    with transaction(app.sessions) as session:
        finish_edition(session, edition.id)
    return _edition_result(app, edition.id)


def _send_inline(app: App, batch_ids: Sequence[str], total: int, transport: Transport,
                 progress: Progress | None) -> None:
    factory = RecipientFactory(app.settings)
    with app.sessions() as session:  # planned sizes: a resumed batch reports only its rest
        planned = {str(i): int(n) for i, n in session.execute(
            select(Batch.id, Batch.size).where(Batch.id.in_(list(batch_ids))))}
    done = 0
    for batch_id in batch_ids:
        send_batch_until_done(app, batch_id, transport=transport, recipients=factory)
        done += planned.get(batch_id, 0)
        if progress is not None:
            progress(done, total)


def _dry_run(app: App, cadence: Cadence, now: datetime | None) -> SendResult:
    with app.sessions() as session:
        upcoming = draft(session, app.settings, cadence, now)
        if upcoming.posts:
            render_posts(session, app.settings, upcoming.posts)
        readers = count_recipients(session, cadence)
    transport = app.transport()
    size = batch_size_for(app.settings, transport)
    transport.close()
    reason = (f"{len(upcoming.posts)} new posts for {upcoming.period.key}" if upcoming.posts
              else upcoming.reason)
    batches = -(-readers // size) if upcoming.posts else 0
    return SendResult(None, "dry-run", reason, readers, batches, 0, 0)
