"""Send one ledger batch: claim it, hand its readers to the transport, record what happened."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from digest.config import Settings
from digest.delivery.cursor import Cursor
from digest.delivery.ledger import (
    claim_batch,
    edition_of,
    edition_paused,
    load_batch,
    move_cursor,
    record_outcome,
    settled_by_events,
)
from digest.delivery.outcomes import BatchOutcome
from digest.delivery.received import still_new
from digest.delivery.record import already_handed, mark_failed, record_handed
from digest.delivery.retry import backoff
from digest.delivery.topicfilter import EditionTopics
from digest.delivery.variants import variant_of
from digest.errors import PermanentDeliveryError, TransientDeliveryError
from digest.mail.compose import outgoing_mail as compose_mail
from digest.mail.message import OutgoingMail, Recipient
from digest.mail.personalize import RecipientFactory
from digest.mail.render import RenderedEdition
from digest.mail.transports.base import BatchInterrupted, BatchStopped, MaybeAccepted, Transport
from digest.metrics import BATCHES, READERS_HANDED_OVER, READERS_REFUSED
from digest.runtime import App
from digest.store.models import Batch, BatchStatus, DeliveryStatus, Edition, utcnow
from digest.store.sessions import transaction

log = logging.getLogger(__name__)


def outgoing_mail(
    settings: Settings, edition: Edition, batch_id: str | None = None,
    rendered: RenderedEdition | None = None,
) -> OutgoingMail:
    """The shared message of ``edition`` (or of ``rendered``, a variant of it holding only
    some of its posts), tagged with its edition and batch ids."""
    rendered = rendered or RenderedEdition(edition.subject, edition.html, edition.text,
                                           len(edition.post_ids))
    mail = compose_mail(settings, rendered, edition_id=edition.id or None)
    if batch_id is None:
        return mail
    return dataclasses.replace(mail, custom_args={**mail.custom_args, "batch_id": batch_id})


@dataclasses.dataclass(frozen=True)
class _Request:
    """Where one request's readers are recorded."""

    batch_id: str
    claimed_at: datetime
    edition_id: int
    cursor: Cursor


def _refused_ids(chunk: Sequence[Recipient], refused: Sequence[str]) -> set[int]:
    """The readers behind per-reader refusals (each "address: reason", as transports say)."""
    by_email = {r.email: _subscriber_id(r) for r in chunk}
    found = {by_email.get(text.split(": ", 1)[0]) for text in refused}
    return {sid for sid in found if sid}


def _record(app: App, req: _Request, chunk: Sequence[Recipient], refused: Sequence[str]) -> None:
    """The readers of one accepted request, and the cursor past them, in one transaction."""
    ids = [_subscriber_id(r) for r in chunk]
    refused_ids = _refused_ids(chunk, refused)
    moved = req.cursor.mark(ids)
    at = utcnow()
    with transaction(app.sessions) as session:
        record_handed(session, req.edition_id, [i for i in ids if i not in refused_ids], at)
        record_handed(session, req.edition_id, sorted(refused_ids), at, DeliveryStatus.REFUSED)
        if moved is not None:
            move_cursor(session, req.batch_id, req.claimed_at, moved)
    READERS_HANDED_OVER.inc(len(ids) - len(refused_ids))
    READERS_REFUSED.inc(len(refused_ids))


def _hand_over(app: App, req: _Request, transport: Transport, mail: OutgoingMail,
               recipients: Sequence[Recipient]) -> list[str]:
    """Send ``recipients`` in requests of at most ``transport.max_batch``; return refusals.

    A batch can hold more readers than planned (a reader confirmed or unpaused in its id
    range since the snapshot), so it is split here rather than refused by the provider.
    After each accepted request, and after the readers a ``BatchInterrupted`` says were
    accepted, they are recorded (``delivery.record``) and the ledger cursor moves past them,
    in one transaction: a retry skips them instead of resending.
    """
    step = max(1, transport.max_batch)
    refused: list[str] = []
    for start in range(0, len(recipients), step):
        chunk = recipients[start:start + step]
        try:
            answer = list(transport.send_batch(mail, chunk) or [])
        except (BatchInterrupted, BatchStopped) as exc:
            if exc.accepted > 0:
                _record(app, req, chunk[:exc.accepted], exc.refused)
            raise
        _record(app, req, chunk, answer)
        refused.extend(answer)
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


def _plan(app: App, batch: Batch, edition: Edition, rows: Sequence[Any],
          batch_id: str) -> tuple[list[tuple[OutgoingMail, list[Any]]], set[int]]:
    """The batch's readers grouped by the mail each gets, and those who need none.

    A reader gets the posts in their topics (``topicfilter``) not received in another edition
    (``received.still_new``). Readers already handed it (a retry) are left out; so are readers
    whose topics had no post (no record); readers who received all theirs elsewhere are
    recorded as ALREADY_RECEIVED. Sets other than the whole edition are variants (``variants``).
    """
    ids = [int(r.id) for r in rows]
    with app.sessions() as session:
        done = already_handed(session, edition.id, ids)
        had_all: list[int] = []
        nothing: list[int] = []
        needs = still_new(session, edition, batch.after_id, batch.upto_id)
        topics = EditionTopics.load(session, list(edition.post_ids or ()))
        by_posts: dict[frozenset[int], list[Any]] = {topics.all: []}
        for row in rows:
            if row.id in done:
                continue
            posts = topics.for_reader(row.topic_ids)
            if not posts and topics.all:
                nothing.append(row.id)  # none of their topics had a post: no mail, no record
                continue
            new = needs.get(row.id)
            if new is not None:
                posts = posts & new
                if not posts:
                    had_all.append(row.id)  # every post already received elsewhere
                    continue
            by_posts.setdefault(posts, []).append(row)
        groups = []
        for posts, readers in by_posts.items():
            if not readers:
                continue
            variant = None if posts == topics.all else variant_of(
                session, app.settings, edition, posts)
            groups.append((outgoing_mail(app.settings, edition, batch_id, variant), readers))
    if had_all:  # recorded, so stats account for them and a resend leaves them out
        with transaction(app.sessions) as session:
            record_handed(session, edition.id, had_all, utcnow(),
                          DeliveryStatus.ALREADY_RECEIVED)
    return groups, done | set(had_all) | set(nothing)


def send_batch(app: App, batch_id: str, *, transport: Transport | None = None,
               now: datetime | None = None,
               recipients: RecipientFactory | None = None) -> BatchOutcome:
    """Claim one ledger batch, send it through the transport and record the outcome."""
    outcome = _send_batch(app, batch_id, transport=transport, now=now, recipients=recipients)
    BATCHES.labels(outcome.status).inc()
    log.info("batch %s %s: %d readers, attempt %d%s", batch_id, outcome.status,
             outcome.recipients, outcome.attempts, f" ({outcome.error})" if outcome.error else "",
             extra={"edition_id": edition_of(batch_id), "batch_id": batch_id,
                    "status": outcome.status, "recipients": outcome.recipients})
    return outcome


def _send_batch(app: App, batch_id: str, *, transport: Transport | None,
                now: datetime | None, recipients: RecipientFactory | None) -> BatchOutcome:
    claimed_at = now or utcnow()
    if not claim_batch(app, batch_id, claimed_at):
        paused = edition_paused(app, edition_of(batch_id) or 0)
        return BatchOutcome(batch_id, "paused" if paused else "skipped")
    make = recipients or RecipientFactory(app.settings)
    own = transport is None
    transport = transport or app.transport()
    req = _Request(batch_id, claimed_at, edition_of(batch_id) or 0, Cursor([], ()))
    attempts, size = 0, 0
    refused: list[str] = []
    try:  # loading and planning too: an error there is retried and capped like any other
        batch, edition, rows = load_batch(app, batch_id)
        attempts, size = batch.attempts, len(rows)
        req = _Request(batch_id, claimed_at, edition.id, Cursor([int(r.id) for r in rows], ()))
        groups, done = _plan(app, batch, edition, rows, batch_id)
        req.cursor.mark(done)
        for mail, readers in groups:
            chunk = [make(r.id, r.email, r.name, r.link_key) for r in readers]
            refused.extend(_hand_over(app, req, transport, mail, chunk))
    except PermanentDeliveryError as exc:
        _mark_failed(app, req)
        record_outcome(app, batch_id, claimed_at, status=BatchStatus.FAILED, error=str(exc))
        return BatchOutcome(batch_id, "failed", size, attempts, str(exc))
    except MaybeAccepted as exc:
        if settled_by_events(app.settings) and attempts < app.settings.max_send_attempts:
            return _hold_in_doubt(app, req, size, attempts, exc)
        return _retry_later(app, req, size, attempts, exc)
    except Exception as exc:  # transient, or a failure the transport did not map
        if not isinstance(exc, TransientDeliveryError):
            log.exception("batch %s: unexpected error from %r", batch_id, transport)
        return _retry_later(app, req, size, attempts or _attempts(app, batch_id), exc)
    finally:
        if own:
            transport.close()
    record_outcome(app, batch_id, claimed_at, status=BatchStatus.SENT, sent_at=utcnow(),
            error=_refusal_note(refused))
    return BatchOutcome(batch_id, "sent", size, attempts)


def _attempts(app: App, batch_id: str) -> int:
    """The claim count of a batch that could not even be loaded."""
    with app.sessions() as session:
        batch = session.get(Batch, batch_id)
        return batch.attempts if batch is not None else 0


def _mark_failed(app: App, req: _Request) -> None:
    """The readers of a batch that failed for good and were not handed over: FAILED rows."""
    with transaction(app.sessions) as session:
        mark_failed(session, req.edition_id, req.cursor.pending(), utcnow())


def _hold_in_doubt(app: App, req: _Request, size: int, attempts: int,
                   exc: MaybeAccepted) -> BatchOutcome:
    """The provider may have accepted the request: keep the claim and let reconcile wait for
    its events (``reconcile._settle``) rather than retry blind and mail readers twice."""
    error = f"in doubt: {exc}; waiting {app.settings.in_doubt_minutes:g} min for SendGrid's events"
    record_outcome(app, req.batch_id, req.claimed_at, status=BatchStatus.IN_DOUBT, error=error)
    return BatchOutcome(req.batch_id, "in_doubt", size, attempts, error)


def _retry_later(app: App, req: _Request, size: int, attempts: int,
                 exc: Exception) -> BatchOutcome:
    """Put the batch back as pending with a backoff, or fail it once out of attempts.

    An error the transport did not map counts as transient too: left in ``sending`` it would
    be re-driven forever by reconcile and never reach the operator.
    """
    text = str(exc) if isinstance(exc, TransientDeliveryError) else f"{exc!r}"
    batch_id, claimed_at = req.batch_id, req.claimed_at
    if attempts >= app.settings.max_send_attempts:
        _mark_failed(app, req)
        error = f"gave up after {attempts} attempts: {text}"
        record_outcome(app, batch_id, claimed_at, status=BatchStatus.FAILED, error=error)
        return BatchOutcome(batch_id, "failed", size, attempts, error)
    record_outcome(app, batch_id, claimed_at, status=BatchStatus.PENDING, error=text)
    retry_after = exc.retry_after if isinstance(exc, TransientDeliveryError) else None
    delay = backoff(attempts, retry_after)
    return BatchOutcome(batch_id, "pending", size, attempts, text, delay)


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
        app.sleep(outcome.retry_in)
