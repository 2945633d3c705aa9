"""Send one ledger batch: claim it, hand its readers to the transport, record what happened."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from datetime import datetime

from digest.config import Settings
from digest.delivery.ledger import advance, claim_batch, edition_of, load_batch, record_outcome
from digest.delivery.outcomes import BatchOutcome
from digest.delivery.retry import backoff
from digest.errors import PermanentDeliveryError, TransientDeliveryError
from digest.mail.compose import outgoing_mail as compose_mail
from digest.mail.message import OutgoingMail, Recipient
from digest.mail.personalize import RecipientFactory
from digest.mail.render import RenderedEdition
from digest.mail.transports.base import BatchInterrupted, Transport
from digest.runtime import App
from digest.store.models import Batch, BatchStatus, Edition, utcnow

log = logging.getLogger(__name__)





def outgoing_mail(
    settings: Settings, edition: Edition, batch_id: str | None = None
) -> OutgoingMail:
    """The shared message of ``edition``, tagged with its edition and batch ids."""
    rendered = RenderedEdition(edition.subject, edition.html, edition.text, len(edition.post_ids))
    mail = compose_mail(settings, rendered, edition_id=edition.id or None)
    if batch_id is None:
        return mail
    return dataclasses.replace(mail, custom_args={**mail.custom_args, "batch_id": batch_id})


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
                advance(app, batch_id, claimed_at, _subscriber_id(chunk[exc.accepted - 1]))
            raise
        if start + step < len(recipients):
            advance(app, batch_id, claimed_at, _subscriber_id(chunk[-1]))
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
             extra={"edition_id": edition_of(batch_id), "batch_id": batch_id,
                    "status": outcome.status, "recipients": outcome.recipients})
    return outcome


def _send_batch(app: App, batch_id: str, *, transport: Transport | None,
                now: datetime | None, recipients: RecipientFactory | None) -> BatchOutcome:
    claimed_at = now or utcnow()
    if not claim_batch(app, batch_id, claimed_at):
        return BatchOutcome(batch_id, "skipped")
    batch, edition, rows = load_batch(app, batch_id)
    make = recipients or RecipientFactory(app.settings)
    batch_recipients = [make(r.id, r.email, r.name, r.link_key) for r in rows]
    own = transport is None
    transport = transport or app.transport()
    mail = outgoing_mail(app.settings, edition, batch_id)
    try:
        refused = _hand_over(app, batch_id, claimed_at, transport, mail, batch_recipients)
    except PermanentDeliveryError as exc:
        record_outcome(app, batch_id, claimed_at, status=BatchStatus.FAILED, error=str(exc))
        return BatchOutcome(batch_id, "failed", len(rows), batch.attempts, str(exc))
    except Exception as exc:  # transient, or a failure the transport did not map
        if not isinstance(exc, TransientDeliveryError):
            log.exception("batch %s: unexpected error from %r", batch_id, transport)
        return _retry_later(app, batch, claimed_at, len(rows), exc)
    finally:
        if own:
            transport.close()
    record_outcome(app, batch_id, claimed_at, status=BatchStatus.SENT, sent_at=utcnow(),
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
        record_outcome(app, batch.id, claimed_at, status=BatchStatus.FAILED, error=error)
        return BatchOutcome(batch.id, "failed", size, batch.attempts, error)
    record_outcome(app, batch.id, claimed_at, status=BatchStatus.PENDING, error=text)
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
        app.sleep(outcome.retry_in)
