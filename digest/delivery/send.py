"""Send a digest: claim an edition, plan its batches, then send them here or queue them for
the workers (``App.dispatch``). Also the dry run, which reports exactly what a send would.

Two kinds of send share this path. The schedule (``manual=False``, beat's task) claims the
period's edition once. A send by hand (``manual=True``: ``digest send``, ``POST /admin/send``)
sends now the posts no edition of the cadence holds yet, under its own key; with nothing new
it writes nothing and says so. Both, and the dry run and the preview, choose the posts with
the one ``editions.draft``.

The guarantees live in the pieces: ``editions`` claims each cadence and period once,
``plan`` snapshots the readers into ledger batches, ``ledger`` claims and records each batch
with one conditional UPDATE, ``batch`` hands a batch to the transport, and ``reconcile``
re-drives what a dead worker or a flushed broker left behind.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from digest.delivery.batch import send_batch_until_done
from digest.delivery.dryrun import dry_run_result
from digest.delivery.editions import NOTHING_NEW, claim_edition
from digest.delivery.ledger import batch_counts, finish_edition
from digest.delivery.outcomes import SendResult
from digest.delivery.plan import NO_READERS, batch_size_for, count_recipients, plan_batches
from digest.delivery.release import mark_released, release_batches, slot_release, waiting
from digest.delivery.testcopy import send_test_copy
from digest.delivery.topicplan import has_posts_for, post_sets, reach
from digest.errors import EditionError
from digest.mail.personalize import RecipientFactory
from digest.mail.transports.base import Transport
from digest.runtime import App, Dispatch
from digest.schedule import Period
from digest.store.models import (
    Batch,
    BatchStatus,
    Cadence,
    Edition,
    EditionStatus,
    Post,
    utcnow,
)
from digest.store.sessions import transaction

Progress = Callable[[int, int], None]


def titles(session: Session, post_ids: Sequence[int]) -> tuple[str, ...]:
    """The posts' titles, in the edition's order."""
    rows = session.execute(select(Post.id, Post.title).where(Post.id.in_(list(post_ids))))
    found = {int(pid): str(title) for pid, title in rows}
    return tuple(str(found[i]) for i in post_ids if i in found)


def edition_result(app: App, edition_id: int, status: str | None = None) -> SendResult:
    """What became of an edition's batches, for the operator."""
    with app.sessions() as session:
        edition = session.get(Edition, edition_id)
        if edition is None:
            raise EditionError(f"no edition {edition_id}")
        counts = batch_counts(session, edition_id)
        return SendResult(
            edition_id=edition.id, status=status or edition.status.value, reason=edition.reason,
            recipients=edition.recipient_count, batches=edition.batch_count,
            sent=counts.get(BatchStatus.SENT, 0), failed=counts.get(BatchStatus.FAILED, 0),
            cadence=edition.cadence.value, posts=titles(session, edition.post_ids or []),
        )


def send_digest(
    app: App,
    *,
    cadence: Cadence = Cadence.WEEKLY,
    manual: bool = False,
    dry_run: bool = False,
    to: str | None = None,
    queue: bool = False,
    now: datetime | None = None,
    progress: Progress | None = None,
    dispatch: Dispatch | None = None,
    period: Period | None = None,
) -> SendResult:
    """Send a digest of ``cadence``: this period's, or with ``manual`` what is new now.

    A scheduled edition (weekly, daily) reaches each reader at their own hour: its batches
    are planned per delivery slot (``digest.slots``) and only those due at ``now`` go out
    here; the rest wait for ``delivery.release``. ``period``: claim that period, not the one
    due now. A send by hand goes to every reader at once.

    ``to`` sends one test copy and claims nothing; ``dry_run`` reports what the same call would
    send (readers, batches, titles) and writes nothing; ``queue`` hands each batch to the
    workers instead of sending in this process. Raises ``AlreadySentError`` when the period
    (or, by hand, the same posts, in a race) was already claimed.
    """
    if to is not None:
        return send_test_copy(app, to, cadence=cadence, now=now)
    if dry_run:
        return dry_run_result(app, cadence, manual=manual, now=now)
    with app.sessions() as session:
        if count_recipients(session, cadence) == 0:
            return SendResult(None, EditionStatus.EMPTY.value, NO_READERS, 0, 0, 0, 0,
                              cadence.value)
    transport = app.transport()
    size = batch_size_for(app.settings, transport)
    batch_ids: list[str] = []

    def plan(session: Session, edition: Edition) -> None:
        release = None if manual else slot_release(app.settings, edition)
        found = reach(session, edition.cadence, edition.post_ids or [])
        spread = post_sets(found)  # one request per set of posts in each batch
        batch_ids.extend(plan_batches(session, edition, size * spread, release,
                                      has_posts_for(found)))

    edition = claim_edition(app, cadence, manual=manual, now=now, plan=plan, period=period)
    if edition is None:
        transport.close()
        return SendResult(None, EditionStatus.EMPTY.value, NOTHING_NEW, 0, 0, 0, 0,
                          cadence.value)
    if edition.status is EditionStatus.EMPTY or not batch_ids:
        transport.close()
        return edition_result(app, edition.id)
    due = release_batches(app, now or utcnow(), edition.id)
    if not due:
        transport.close()
        return waiting_result(app, edition.id)
    with app.sessions() as session:
        total = int(session.scalar(select(func.coalesce(func.sum(Batch.size), 0))
                                   .where(Batch.id.in_(due))) or 0)
    result = deliver(app, edition.id, due, total, transport, queue=queue, progress=progress,
                     dispatch=dispatch, now=now)
    return result if len(due) == len(batch_ids) else waiting_result(app, edition.id, result)


def deliver(app: App, edition_id: int, batch_ids: Sequence[str], total: int,
            transport: Transport, *, queue: bool, progress: Progress | None,
            dispatch: Dispatch | None, now: datetime | None = None) -> SendResult:
    """Queue the planned batches, or send them here and close the edition; closes
    ``transport``. Sent here, a pause (``delivery.pause``) stops it: status "paused"."""
    mark_released(app, batch_ids, now or utcnow())
    if queue:
        transport.close()
        (dispatch or app.dispatch)(list(batch_ids))
        return edition_result(app, edition_id, status="queued")
    try:
        paused = _send_inline(app, batch_ids, total, transport, progress, now)
    finally:
        transport.close()
    if paused:
        return paused_result(app, edition_id)
    with transaction(app.sessions) as session:
        finish_edition(session, edition_id)
    return edition_result(app, edition_id)


def waiting_result(app: App, edition_id: int, sent: SendResult | None = None) -> SendResult:
    """``sent`` (or the edition's state) saying how many batches wait for their readers' hour."""
    result = sent or edition_result(app, edition_id, status="queued")
    count, first = waiting(app, edition_id)
    if not count:
        return result
    note = f"{count} batches wait for their readers' own hour" + (
        f"; the next at {first:%Y-%m-%d %H:%M} UTC" if first else "")
    return dataclasses.replace(result, reason=f"{result.reason}; {note}" if result.reason
                               else note)


def paused_result(app: App, edition_id: int) -> SendResult:
    """A send that stopped because its edition is paused, saying why and how to go on."""
    result = edition_result(app, edition_id, status="paused")
    with app.sessions() as session:
        why = session.scalar(select(Edition.pause_reason).where(Edition.id == edition_id))
    return dataclasses.replace(result, reason=(
        f"paused ({why or 'no reason given'}): the rest waits; "
        f"`digest resume {edition_id}` sends it"))


def send_here(app: App, edition_id: int, progress: Progress | None = None,
              now: datetime | None = None) -> Dispatch:
    """A dispatch that sends an edition's batches in this process instead of queuing them
    (``digest resume --here``), then closes the edition unless it was paused again."""

    def send(batch_ids: Sequence[str]) -> None:
        with app.sessions() as session:
            total = int(session.scalar(select(func.coalesce(func.sum(Batch.size), 0))
                                       .where(Batch.id.in_(list(batch_ids)))) or 0)
        transport = app.transport()
        try:
            paused = _send_inline(app, batch_ids, total, transport, progress, now)
        finally:
            transport.close()
        if not paused:
            with transaction(app.sessions) as session:
                finish_edition(session, edition_id)

    return send


def _send_inline(app: App, batch_ids: Sequence[str], total: int, transport: Transport,
                 progress: Progress | None, now: datetime | None = None) -> bool:
    """Send the batches one by one in this process; True if it stopped because the edition
    was paused (the claim refused the next batch; the rest stay pending)."""
    factory = RecipientFactory(app.settings)
    with app.sessions() as session:  # planned sizes: a resumed batch reports only its rest
        planned = {str(i): int(n) for i, n in session.execute(
            select(Batch.id, Batch.size).where(Batch.id.in_(list(batch_ids))))}
    done = 0
    for batch_id in batch_ids:
        # The caller's clock (a test's, a tick's) as a floor: a long send here claims each
        # later batch at the real time, never as if it were already stale.
        at = max(now, utcnow()) if now is not None else None
        outcome = send_batch_until_done(app, batch_id, transport=transport, recipients=factory,
                                        now=at)
        if outcome.status == "paused":
            return True
        done += planned.get(batch_id, 0)
        if progress is not None:
            progress(done, total)
    return False
