"""SendGrid Event Webhook: verify first, then dedupe, then suppress or count.

Nothing in a request is trusted before its ECDSA P-256 signature over ``timestamp + raw body``
checks out with the configured public key (``sendgrid.helpers.eventwebhook.EventWebhook``), and
the timestamp is within ``REPLAY_WINDOW`` of now. Each event is applied once (``sg_event_id``
is the primary key of ``WebhookEvent``). Bounces, drops for bounced or invalid addresses, spam
reports and unsubscribes suppress the reader at once; delivered, open and click are counted on
the edition named in the event's custom args. Every event naming an edition and a reader
(``edition_id`` and ``subscriber_id`` custom args) also moves that reader's delivery row
(processed, deferred, delivered, bounced, dropped, complained, unsubscribed; never back).

Events are applied or skipped one by one: a request is first applied in one transaction (the
common case, one commit), and if anything in it fails, each event is applied again in its own,
so one malformed event (an id past 2^63, a NUL byte) can never roll back a spam report beside it.
"""

from __future__ import annotations

import binascii
import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sendgrid.helpers.eventwebhook import EventWebhook
from sqlalchemy import select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from digest.errors import DigestError
from digest.metrics import WEBHOOK_EVENTS, on_commit
from digest.readers import lifecycle
from digest.readers.addresses import email_hashes
from digest.runtime import App
from digest.store.deliveries import apply_event
from digest.store.models import (
    MAX_ID,
    DeliveryStatus,
    Edition,
    Subscriber,
    SubscriberStatus,
    WebhookEvent,
)
from digest.store.sessions import transaction

SIGNATURE_HEADER = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP_HEADER = "X-Twilio-Email-Event-Webhook-Timestamp"
REPLAY_WINDOW = 600  # seconds either side of now

log = logging.getLogger(__name__)

_SUPPRESS = {
    "bounce": SubscriberStatus.BOUNCED,
    "spamreport": SubscriberStatus.COMPLAINED,
    "unsubscribe": SubscriberStatus.UNSUBSCRIBED,
    "group_unsubscribe": SubscriberStatus.UNSUBSCRIBED,
}
_DROP_REASONS = ("bounce", "invalid")
_EVENT_ID_LENGTH = 100  # WebhookEvent.sg_event_id
_COUNTERS = {"delivered": Edition.delivered, "open": Edition.opens, "click": Edition.clicks}
# Events that move a reader's delivery row (``store.deliveries``: forward only).
_DELIVERY = {
    "processed": DeliveryStatus.PROCESSED,
    "deferred": DeliveryStatus.DEFERRED,
    "delivered": DeliveryStatus.DELIVERED,
    "bounce": DeliveryStatus.BOUNCED,
    "dropped": DeliveryStatus.DROPPED,
    "spamreport": DeliveryStatus.COMPLAINED,
    "unsubscribe": DeliveryStatus.UNSUBSCRIBED,
    "group_unsubscribe": DeliveryStatus.UNSUBSCRIBED,
}
_MESSAGE_ID_LENGTH = 100  # Delivery.message_id
# SendGrid's event kinds (its Event Webhook reference), the labels of the webhook counter.
_KINDS = frozenset({"processed", "dropped", "deferred", "delivered", "bounce", "open", "click",
                    "spamreport", "unsubscribe", "group_unsubscribe", "group_resubscribe"})


class WebhookRejected(DigestError):
    """The request is not a fresh, authentic SendGrid event batch (nothing was applied)."""

    def __init__(self, message: str, status: int = 403) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class WebhookReport:
    """What one webhook request changed."""

    applied: int
    duplicates: int
    suppressed: int
    counted: int
    skipped: int = 0  # events that could not be applied (malformed), logged one by one
    # Editions named by spam reports (applied or replayed): the complaint breaker's to check.
    complained: frozenset[int] = frozenset()

    def __add__(self, other: WebhookReport) -> WebhookReport:
        return WebhookReport(self.applied + other.applied, self.duplicates + other.duplicates,
                             self.suppressed + other.suppressed, self.counted + other.counted,
                             self.skipped + other.skipped, self.complained | other.complained)


def verify(public_key: str | None, body: bytes, signature: str | None,
           timestamp: str | None, now: datetime | None = None) -> None:
    """Raise WebhookRejected unless the signature is valid and the timestamp is fresh."""
    if not public_key:
        # An optional endpoint that is switched off: absent (404), not a server fault.
        raise WebhookRejected("the SendGrid Event Webhook is not enabled here: set "
                              "DIGEST_SENDGRID_WEBHOOK_PUBLIC_KEY to its verification key", 404)
    if not signature or not timestamp:
        raise WebhookRejected("missing signature headers")
    try:
        sent_at = int(timestamp)
    except ValueError as exc:
        raise WebhookRejected("bad timestamp header") from exc
    current = (now or datetime.now(UTC)).timestamp()
    if abs(current - sent_at) > REPLAY_WINDOW:
        raise WebhookRejected("timestamp outside the replay window")
    try:
        valid = EventWebhook(public_key).verify_signature(
            body.decode("utf-8"), signature, timestamp)
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError) as exc:
        raise WebhookRejected("malformed signature or public key") from exc
    if not valid:
        raise WebhookRejected("bad signature")


def _int(value: Any) -> int | None:
    """A database id from an event's custom arg; None if it is not one (absurd ones included)."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        return None
    try:
        number = int(value)
    except (TypeError, ValueError):  # also a string of more than 4300 digits
        return None
    return number if 0 < number <= MAX_ID else None


def _text(value: Any, limit: int) -> str:
    """A string from an event field, cut to its column and without NUL (PostgreSQL refuses it)."""
    return str(value or "").replace("\x00", "")[:limit]


def _suppression(event: dict[str, Any]) -> SubscriberStatus | None:
    kind = str(event.get("event", ""))
    if kind == "bounce" and event.get("type") == "blocked":
        return None  # a temporary block, not a dead address
    if kind == "dropped":
        reason = str(event.get("reason", "")).lower()
        return SubscriberStatus.BOUNCED if any(r in reason for r in _DROP_REASONS) else None
    return _SUPPRESS.get(kind)


def _suppress(session: Session, event: dict[str, Any], status: SubscriberStatus,
              hashes: tuple[str, str] | None, now: datetime) -> bool:
    match = None
    subscriber_id = _int(event.get("subscriber_id"))
    if subscriber_id is not None:
        match = Subscriber.id == subscriber_id
    elif hashes is not None:  # the keyed hash, or the bare sha256 of rows from before it
        match = Subscriber.email_hash.in_(hashes)
    if match is None:
        return False
    reason = _text(f"sendgrid {event.get('event')}: "
                   f"{event.get('reason') or event.get('type') or ''}", 300)
    return lifecycle.suppress(session, match, status, now, reason) > 0


def _edition_exists(session: Session, edition_id: int) -> bool:
    """Whether the edition is known, asked once per request (not its whole rendered body)."""
    known: dict[int, bool] = session.info.setdefault("digest_editions_known", {})
    if edition_id not in known:
        known[edition_id] = session.scalar(
            select(Edition.id).where(Edition.id == edition_id)) is not None
    return known[edition_id]


def _move_delivery(session: Session, event: dict[str, Any], kind: str,
                   edition_id: int | None, now: datetime) -> bool:
    """Move the reader's delivery row for the edition named in the event's custom args."""
    status = _DELIVERY.get(kind)
    subscriber_id = _int(event.get("subscriber_id"))
    if status is None or edition_id is None or subscriber_id is None:
        return False
    if not _edition_exists(session, edition_id):
        return False  # an edition deleted since, or another sender's ids: nothing to move
    message_id = _text(event.get("sg_message_id"), _MESSAGE_ID_LENGTH) or None
    return apply_event(session, edition_id, subscriber_id, status, now, message_id)


def _kind_label(kind: str) -> str:
    """The event's kind as a metric label: SendGrid's kinds, anything else as "other" (a
    label per made-up kind would grow the metric without bound)."""
    return kind if kind in _KINDS else "other"


def _complaint_edition(event: dict[str, Any]) -> set[int]:
    """The edition a spam report names, for the complaint breaker (empty for other events)."""
    edition_id = _int(event.get("edition_id"))
    is_spam = _text(event.get("event"), 40) == "spamreport"
    return {edition_id} if is_spam and edition_id is not None else set()


def apply_events(session: Session, events: list[dict[str, Any]],
                 now: datetime | None = None, *, address_key: bytes) -> WebhookReport:
    """Apply verified events once each; replays of a ``sg_event_id`` are ignored.

    Addresses are kept and matched only as hashes keyed by ``address_key`` (``App.address_key``).
    """
    now = now or datetime.now(UTC)
    applied = duplicates = suppressed = counted = 0
    complained: set[int] = set()
    for event in events:
        # Looked up as stored: a longer id kept whole here would never match its own row.
        event_id = _text(event.get("sg_event_id"), _EVENT_ID_LENGTH)
        if not event_id:
            continue
        if session.get(WebhookEvent, event_id) is not None:
            duplicates += 1
            complained.update(_complaint_edition(event))  # a retry: check the breaker again
            continue
        email = _text(event.get("email"), 1000).strip()
        hashes = email_hashes(email, address_key) if email else None
        hashed = hashes[0] if hashes else None
        edition_id = _int(event.get("edition_id"))
        kind = _text(event.get("event"), 40)
        session.add(WebhookEvent(sg_event_id=event_id, event=kind,
                                 email_hash=hashed, edition_id=edition_id))
        session.flush()
        applied += 1
        on_commit(session, WEBHOOK_EVENTS.labels(_kind_label(kind)))
        _move_delivery(session, event, kind, edition_id, now)
        complained.update(_complaint_edition(event))
        status = _suppression(event)
        if status is not None:
            suppressed += _suppress(session, event, status, hashes, now)
        elif kind in _COUNTERS and edition_id is not None:
            column = _COUNTERS[kind]
            session.execute(update(Edition).where(Edition.id == edition_id)
                            .values({column: column + 1}))
            counted += 1
    return WebhookReport(applied, duplicates, suppressed, counted, complained=frozenset(complained))


def handle_sendgrid_webhook(app: App, body: bytes, signature: str | None,
                            timestamp: str | None, now: datetime | None = None) -> WebhookReport:
    """Verify a webhook request and apply its events (WebhookRejected if not authentic)."""
    verify(app.settings.sendgrid_webhook_public_key, body, signature, timestamp, now)
    try:
        events = json.loads(body)
    except ValueError as exc:
        raise WebhookRejected("the body is not JSON", 400) from exc
    except RecursionError as exc:
        raise WebhookRejected("the body is nested too deeply", 400) from exc
    if not isinstance(events, list) or not all(isinstance(e, dict) for e in events):
        raise WebhookRejected("expected a JSON array of events", 400)
    try:
        with transaction(app.sessions) as session:
            return apply_events(session, events, now, address_key=app.address_key)
    except (SQLAlchemyError, ValueError, OverflowError) as exc:
        log.warning("webhook batch failed (%s); applying its %d events one by one",
                    type(exc).__name__, len(events))
    return _apply_one_by_one(app, events, now)


def _apply_one_by_one(app: App, events: list[dict[str, Any]],
                      now: datetime | None) -> WebhookReport:
    """Each event in its own transaction: a bad one is skipped, the others stay applied."""
    report = WebhookReport(0, 0, 0, 0)
    for event in events:
        try:
            with transaction(app.sessions) as session:
                report += apply_events(session, [event], now, address_key=app.address_key)
        except (SQLAlchemyError, ValueError, OverflowError) as exc:
            log.warning("webhook event %r skipped: %s", _text(event.get("sg_event_id"), 100),
                        type(exc).__name__)
            report += WebhookReport(0, 0, 0, 0, skipped=1)
    return report
