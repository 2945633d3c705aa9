"""Fan-out: a snapshot of recipients split into ledger batches, each sent exactly once.

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

``reconcile`` re-drives batches left pending or stuck in sending past ``batch_stale_seconds``
(a killed worker, a flushed Redis) and closes editions whose batches are all done.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, func, insert, or_, select, update
from sqlalchemy.orm import Session

from digest.compose import outgoing_mail as compose_mail
from digest.config import Settings
from digest.db import transaction
from digest.editions import claim_edition, draft, latest_sent_edition, render_posts
from digest.errors import EditionError, PermanentDeliveryError, TransientDeliveryError
from digest.links import recipient_for
from digest.message import OutgoingMail, Recipient
from digest.models import (
    Batch,
    BatchStatus,
    Cadence,
    Edition,
    EditionStatus,
    Subscriber,
    SubscriberStatus,
)
from digest.render import RenderedEdition
from digest.retry import backoff
from digest.signing import RecipientFactory
from digest.subscribers import email_hashes, normalise
from digest.transports.base import BatchInterrupted, Transport
from digest.wiring import App

log = logging.getLogger(__name__)

Dispatch = Callable[[Sequence[str]], None]
NO_READERS = "no confirmed readers for this cadence yet; the posts wait for the next digest"
Progress = Callable[[int, int], None]
_sleep = time.sleep  # tests replace this to keep retries instant


@dataclass(frozen=True)
class BatchOutcome:
    """What one ``send_batch`` call did.

    ``status``: sent | pending (transient failure, retry after ``retry_in`` s) | failed |
    skipped (not claimable: already sent, failed, or being sent by another worker).
    """

    batch_id: str
    status: str
    recipients: int = 0
    attempts: int = 0
    error: str | None = None
    retry_in: float | None = None


@dataclass(frozen=True)
class SendResult:
    """The result of ``send_digest``, for the CLI, the admin route and the scheduler."""

    edition_id: int | None
    status: str  # sent | failed | queued | empty | dry-run | test | sending
    reason: str | None
    recipients: int
    batches: int
    sent: int
    failed: int

    def describe(self) -> str:
        """One or two lines for the operator."""
        if self.status == "test":
            return self.reason or "test copy sent"
        edition = f"edition {self.edition_id}: " if self.edition_id is not None else ""
        line = f"{edition}{self.status}"
        if self.status == "dry-run" and self.batches:
            line += f": would send to {self.recipients} readers in {self.batches} batches"
        elif self.status == "dry-run":
            line += f": nothing would be sent ({self.recipients} readers waiting)"
        elif self.status in ("queued", "sent", "failed", "sending"):
            line += (f": {self.recipients} readers in {self.batches} batches"
                     f" ({self.sent} sent, {self.failed} failed)")
        if self.reason:
            line += f"\n{self.reason}"
        return line

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class ReconcileReport:
    """Batches re-driven and editions closed by one ``reconcile`` pass."""

    redriven: list[str]
    finished: list[int]


def _now(now: datetime | None) -> datetime:
    return now or datetime.now(UTC)


def eligible(cadence: Cadence, max_id: int | None = None) -> list[ColumnElement[bool]]:
    """Who receives an edition of ``cadence``: active, not paused, that cadence (snapshot)."""
    conditions = [
        Subscriber.status == SubscriberStatus.ACTIVE,
        Subscriber.cadence == cadence,
        Subscriber.paused.is_(False),
    ]
    if max_id is not None:
        conditions.append(Subscriber.id <= max_id)
    return conditions


def count_recipients(session: Session, cadence: Cadence) -> int:
    """How many readers an edition of ``cadence`` would go to now."""
    return int(session.scalar(select(func.count(Subscriber.id)).where(*eligible(cadence))) or 0)


def batch_ranges(session: Session, cadence: Cadence, max_id: int,
                 size: int) -> list[tuple[int, int, int]]:
    """``(after_id, upto_id, count)`` per batch of ``size`` eligible readers, by id order.

    One pass of ``row_number()`` finds every ``size``-th id; only the boundaries come back,
    never the readers themselves.
    """
    conditions = eligible(cadence, max_id)
    ranked = (
        select(Subscriber.id.label("id"),
               func.row_number().over(order_by=Subscriber.id).label("rn"))
        .where(*conditions)
        .subquery()
    )
    bounds = [int(i) for i in session.scalars(
        select(ranked.c.id).where(ranked.c.rn % size == 0).order_by(ranked.c.id)
    )]
    total, last = session.execute(
        select(func.count(Subscriber.id), func.max(Subscriber.id)).where(*conditions)
    ).one()
    if total and (not bounds or bounds[-1] != last):
        bounds.append(int(last))
    ranges, after = [], 0
    for i, upto in enumerate(bounds):
        count = size if (i + 1) * size <= total else int(total) - i * size
        ranges.append((after, upto, count))
        after = upto
    return ranges


def plan_batches(session: Session, edition: Edition, batch_size: int) -> list[str]:
    """Snapshot the recipients of ``edition`` and write its ledger rows in bulk."""
    max_id = session.scalar(select(func.max(Subscriber.id))) or 0
    ranges = batch_ranges(session, edition.cadence, int(max_id), batch_size)
    rows = [
        {"id": f"{edition.id}-{seq}", "edition_id": edition.id, "seq": seq,
         "after_id": after, "upto_id": upto, "size": count, "status": BatchStatus.PENDING,
         "attempts": 0}
        for seq, (after, upto, count) in enumerate(ranges, start=1)
    ]
    if rows:
        session.execute(insert(Batch), rows)
    edition.max_subscriber_id = int(max_id)
    edition.batch_count = len(rows)
    edition.recipient_count = sum(r[2] for r in ranges)
    if not rows:
        # Like "no new posts": nothing is sent, the posts stay new for the next digest, and
        # the EMPTY claim does not block a real send once readers have confirmed.
        edition.status = EditionStatus.EMPTY
        edition.reason = NO_READERS
        edition.finished_at = datetime.now(UTC)
    return [str(r["id"]) for r in rows]


def outgoing_mail(
    settings: Settings, edition: Edition, batch_id: str | None = None
) -> OutgoingMail:
    """The shared message of ``edition``, tagged with its edition and batch ids."""
    rendered = RenderedEdition(edition.subject, edition.html, edition.text, len(edition.post_ids))
    mail = compose_mail(settings, rendered, edition_id=edition.id or None)
    if batch_id is None:
        return mail
    return dataclasses.replace(mail, custom_args={**mail.custom_args, "batch_id": batch_id})


def _claim_batch(app: App, batch_id: str, now: datetime) -> bool:
    stale_before = now - timedelta(seconds=app.settings.batch_stale_seconds)
    with transaction(app.sessions) as session:
        result = session.execute(
            update(Batch)
            .where(Batch.id == batch_id, or_(
                Batch.status == BatchStatus.PENDING,
                and_(Batch.status == BatchStatus.SENDING, Batch.claimed_at < stale_before),
            ))
            .values(status=BatchStatus.SENDING, claimed_at=now, attempts=Batch.attempts + 1)
            .execution_options(synchronize_session=False)
        )
        return bool(getattr(result, "rowcount", 0) == 1)


def _load_batch(app: App, batch_id: str) -> tuple[Batch, Edition, list[Any]]:
    with app.sessions() as session:
        batch = session.get(Batch, batch_id)
        if batch is None:
            raise EditionError(f"no batch {batch_id!r} in the ledger")
        edition = batch.edition
        rows = session.execute(
            select(Subscriber.id, Subscriber.email, Subscriber.name, Subscriber.link_key)
            .where(*eligible(edition.cadence, edition.max_subscriber_id),
                   Subscriber.id > batch.after_id, Subscriber.id <= batch.upto_id)
            .order_by(Subscriber.id)
        ).all()
        session.expunge_all()
        return batch, edition, list(rows)


def _record(app: App, batch_id: str, claimed_at: datetime, **values: Any) -> None:
    with transaction(app.sessions) as session:
        session.execute(
            update(Batch)
            .where(Batch.id == batch_id, Batch.status == BatchStatus.SENDING,
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
    """Close a sending edition once none of its batches is pending or sending."""
    counts = batch_counts(session, edition_id)
    if counts.get(BatchStatus.PENDING) or counts.get(BatchStatus.SENDING):
        return False
    failed, total = counts.get(BatchStatus.FAILED, 0), sum(counts.values())
    status = EditionStatus.FAILED if total and failed == total else EditionStatus.SENT
    reason = f"{failed} of {total} batches failed" if failed else None
    result = session.execute(
        update(Edition).where(Edition.id == edition_id, Edition.status == EditionStatus.SENDING)
        .values(status=status, reason=reason, finished_at=_now(now))
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0) == 1)


def _advance(app: App, batch_id: str, claimed_at: datetime, after_id: int) -> None:
    """Move the batch's start past readers already handed over, so a retry skips them."""
    with transaction(app.sessions) as session:
        session.execute(
            update(Batch)
            .where(Batch.id == batch_id, Batch.status == BatchStatus.SENDING,
                   Batch.claimed_at == claimed_at, Batch.after_id < after_id)
            .values(after_id=after_id)
            .execution_options(synchronize_session=False)
        )


def _hand_over(app: App, batch_id: str, claimed_at: datetime, transport: Transport,
               mail: OutgoingMail, recipients: Sequence[Recipient]) -> list[str]:
    """Send ``recipients`` in requests of at most ``transport.max_batch``; return refusals.

    A batch can hold more readers than planned (a reader confirmed or unpaused in its id
    range since the snapshot), so it is split here rather than refused by the provider.
    After each accepted request, and after the readers a ``BatchInterrupted`` says were
    accepted, the ledger cursor moves past them: a retry resumes instead of resending.
    """
    step = max(1, transport.max_batch)
    refused: list[str] = []
    for start in range(0, len(recipients), step):
        chunk = recipients[start:start + step]
        try:
            refused.extend(transport.send_batch(mail, chunk) or [])
        except BatchInterrupted as exc:
            if exc.accepted > 0:
                _advance(app, batch_id, claimed_at, _subscriber_id(chunk[exc.accepted - 1]))
            raise
        if start + step < len(recipients):
            _advance(app, batch_id, claimed_at, _subscriber_id(chunk[-1]))
    return refused


def _subscriber_id(recipient: Recipient) -> int:
    return int(recipient.subscriber_id or 0)


def _refusal_note(refused: Sequence[str]) -> str | None:
    """The ledger text for readers the provider refused one by one (shown in stats)."""
    if not refused:
        return None
    shown = "; ".join(refused[:5])
    more = f" (+{len(refused) - 5} more)" if len(refused) > 5 else ""
    return f"{len(refused)} readers refused: {shown}{more}"[:2000]


def send_batch(app: App, batch_id: str, *, transport: Transport | None = None,
               now: datetime | None = None,
               recipients: RecipientFactory | None = None) -> BatchOutcome:
    """Claim one ledger batch, send it through the transport and record the outcome."""
    outcome = _send_batch(app, batch_id, transport=transport, now=now, recipients=recipients)
    log.info("batch %s %s: %d readers, attempt %d%s", batch_id, outcome.status,
             outcome.recipients, outcome.attempts, f" ({outcome.error})" if outcome.error else "",
             extra={"edition_id": _edition_of(batch_id), "batch_id": batch_id,
                    "status": outcome.status, "recipients": outcome.recipients})
    return outcome


def _edition_of(batch_id: str) -> int | None:
    """The edition a ledger batch id (``<edition>-<seq>``) belongs to."""
    head = batch_id.partition("-")[0]
    return int(head) if head.isdigit() else None


def _send_batch(app: App, batch_id: str, *, transport: Transport | None,
                now: datetime | None, recipients: RecipientFactory | None) -> BatchOutcome:
    claimed_at = _now(now)
    if not _claim_batch(app, batch_id, claimed_at):
        return BatchOutcome(batch_id, "skipped")
    batch, edition, rows = _load_batch(app, batch_id)
    make = recipients or RecipientFactory(app.settings)
    batch_recipients = [make(r.id, r.email, r.name, r.link_key) for r in rows]
    own = transport is None
    transport = transport or app.transport()
    mail = outgoing_mail(app.settings, edition, batch_id)
    try:
        refused = _hand_over(app, batch_id, claimed_at, transport, mail, batch_recipients)
    except PermanentDeliveryError as exc:
        _record(app, batch_id, claimed_at, status=BatchStatus.FAILED, error=str(exc))
        return BatchOutcome(batch_id, "failed", len(rows), batch.attempts, str(exc))
    except Exception as exc:  # transient, or a failure the transport did not map
        if not isinstance(exc, TransientDeliveryError):
            log.exception("batch %s: unexpected error from %r", batch_id, transport)
        return _retry_later(app, batch, claimed_at, len(rows), exc)
    finally:
        if own:
            transport.close()
    _record(app, batch_id, claimed_at, status=BatchStatus.SENT, sent_at=_now(None),
            error=_refusal_note(refused))
    return BatchOutcome(batch_id, "sent", len(rows), batch.attempts)


def _retry_later(app: App, batch: Batch, claimed_at: datetime, size: int,
                 exc: Exception) -> BatchOutcome:
    """Put the batch back as pending with a backoff, or fail it once out of attempts.

    An error the transport did not map counts as transient too: left in ``sending`` it would
    be re-driven forever by reconcile and never reach the operator.
    """
    text = str(exc) if isinstance(exc, TransientDeliveryError) else f"{exc!r}"
    if batch.attempts >= app.settings.max_send_attempts:
        error = f"gave up after {batch.attempts} attempts: {text}"
        _record(app, batch.id, claimed_at, status=BatchStatus.FAILED, error=error)
        return BatchOutcome(batch.id, "failed", size, batch.attempts, error)
    _record(app, batch.id, claimed_at, status=BatchStatus.PENDING, error=text)
    retry_after = exc.retry_after if isinstance(exc, TransientDeliveryError) else None
    delay = backoff(batch.attempts, retry_after)
    return BatchOutcome(batch.id, "pending", size, batch.attempts, text, delay)


def send_batch_until_done(app: App, batch_id: str, *, transport: Transport | None = None,
                          recipients: RecipientFactory | None = None,
                          now: datetime | None = None) -> BatchOutcome:
    """Send one batch in-process, sleeping through transient failures (backoff)."""
    while True:
        outcome = send_batch(app, batch_id, transport=transport, recipients=recipients, now=now)
        now = None  # only the first claim may be judged at the caller's clock
        if outcome.status != "pending" or outcome.retry_in is None:
            return outcome
        log.warning("batch %s: %s; retrying in %.1f s", batch_id, outcome.error, outcome.retry_in)
        _sleep(outcome.retry_in)


def enqueue_batches(batch_ids: Sequence[str]) -> None:
    """Hand batches to the Celery workers (one task each); call after the DB commit."""
    from digest.tasks import send_batch_task

    for batch_id in batch_ids:
        send_batch_task.apply_async(args=[batch_id])


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
    size = _batch_size(app.settings, transport)
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
        (dispatch or enqueue_batches)(batch_ids)
        return _edition_result(app, edition.id, status="queued")
    try:
        _send_inline(app, batch_ids, edition.recipient_count, transport, progress)
    finally:
        transport.close()
    with transaction(app.sessions) as session:
        finish_edition(session, edition.id)
    return _edition_result(app, edition.id)


def _batch_size(settings: Settings, transport: Transport) -> int:
    """Readers per ledger batch: the setting, capped by what one request may carry."""
    return max(1, min(settings.batch_size, transport.max_batch))


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
    size = _batch_size(app.settings, transport)
    transport.close()
    reason = (f"{len(upcoming.posts)} new posts for {upcoming.period.key}" if upcoming.posts
              else upcoming.reason)
    batches = -(-readers // size) if upcoming.posts else 0
    return SendResult(None, "dry-run", reason, readers, batches, 0, 0)


def send_test_copy(app: App, to: str, *, cadence: Cadence = Cadence.WEEKLY,
                   now: datetime | None = None) -> SendResult:
    """Send one copy of the next digest (or the last one, if nothing is new) to ``to``.

    A reader gets their own links; any other address gets the generic ones (the sign-up
    page), never a token that belongs to nobody.
    """
    to = normalise(to)
    with app.sessions() as session:
        upcoming = draft(session, app.settings, cadence, now)
        if upcoming.posts:
            rendered = render_posts(session, app.settings, upcoming.posts)
            edition = Edition(id=0, subject=rendered.subject, html=rendered.html,
                              text=rendered.text, post_ids=[p.id for p in upcoming.posts])
        else:
            last = latest_sent_edition(session, cadence)
            if last is None:
                return SendResult(None, EditionStatus.EMPTY.value, upcoming.reason, 0, 0, 0, 0)
            session.expunge(last)
            edition = last
        reader = session.execute(
            select(Subscriber.id, Subscriber.link_key)
            .where(Subscriber.email_hash.in_(email_hashes(to, app.address_key)))).first()
    mail = outgoing_mail(app.settings, edition)
    mail = dataclasses.replace(mail, subject=f"[Test] {mail.subject}")
    recipient = (Recipient(to) if reader is None
                 else recipient_for(app.settings, app.tokens, reader.id, to,
                                    link_key=reader.link_key))
    transport = app.transport()
    try:
        transport.send_batch(mail, [recipient])
    finally:
        transport.close()
    return SendResult(None, "test", f"test copy sent to {to}", 1, 0, 1, 0)


def reconcile(app: App, now: datetime | None = None, *,
              dispatch: Dispatch | None = None) -> ReconcileReport:
    """Re-drive batches pending or stuck in sending past the stale limit; close done editions.

    With ``dispatch`` the batches go to the workers; without, they are sent in this process.
    """
    now = _now(now)
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
