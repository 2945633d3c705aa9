"""SendGrid Event Webhook: verify first, then dedupe, then suppress or count.

Nothing in a request is trusted before its ECDSA P-256 signature over ``timestamp + raw body``
checks out with the configured public key (``sendgrid.helpers.eventwebhook.EventWebhook``), and
the timestamp is within ``REPLAY_WINDOW`` of now. Each event is applied once (``sg_event_id``
is the primary key of ``WebhookEvent``). Bounces, drops for bounced or invalid addresses, spam
reports and unsubscribes suppress the reader at once; delivered, open and click are counted on
the edition named in the event's custom args.
"""

from __future__ import annotations

import binascii
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sendgrid.helpers.eventwebhook import EventWebhook
from sqlalchemy import update
from sqlalchemy.orm import Session

from digest.db import transaction
from digest.errors import DigestError
from digest.models import Edition, Subscriber, SubscriberStatus, WebhookEvent
from digest.subscribers import email_hash
from digest.wiring import App

SIGNATURE_HEADER = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP_HEADER = "X-Twilio-Email-Event-Webhook-Timestamp"
REPLAY_WINDOW = 600  # seconds either side of now

_SUPPRESS = {
    "bounce": SubscriberStatus.BOUNCED,
    "spamreport": SubscriberStatus.COMPLAINED,
    "unsubscribe": SubscriberStatus.UNSUBSCRIBED,
    "group_unsubscribe": SubscriberStatus.UNSUBSCRIBED,
}
_DROP_REASONS = ("bounce", "invalid")
_EVENT_ID_LENGTH = 100  # WebhookEvent.sg_event_id
_COUNTERS = {"delivered": Edition.delivered, "open": Edition.opens, "click": Edition.clicks}


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


def verify(public_key: str | None, body: bytes, signature: str | None,
           timestamp: str | None, now: datetime | None = None) -> None:
    """Raise WebhookRejected unless the signature is valid and the timestamp is fresh."""
    if not public_key:
        raise WebhookRejected("DIGEST_SENDGRID_WEBHOOK_PUBLIC_KEY is not configured", 503)
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
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _suppression(event: dict[str, Any]) -> SubscriberStatus | None:
    kind = str(event.get("event", ""))
    if kind == "bounce" and event.get("type") == "blocked":
        return None  # a temporary block, not a dead address
    if kind == "dropped":
        reason = str(event.get("reason", "")).lower()
        return SubscriberStatus.BOUNCED if any(r in reason for r in _DROP_REASONS) else None
    return _SUPPRESS.get(kind)


def _suppress(session: Session, event: dict[str, Any], status: SubscriberStatus,
              hashed: str | None, now: datetime) -> bool:
    match = None
    subscriber_id = _int(event.get("subscriber_id"))
    if subscriber_id is not None:
        match = Subscriber.id == subscriber_id
    elif hashed is not None:
        match = Subscriber.email_hash == hashed
    if match is None:
        return False
    result = session.execute(
        update(Subscriber)
        .where(match, Subscriber.status.in_([SubscriberStatus.ACTIVE, SubscriberStatus.PENDING]))
        .values(status=status, unsubscribed_at=now,
                suppressed_reason=f"sendgrid {event.get('event')}: "
                                  f"{event.get('reason') or event.get('type') or ''}"[:300])
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0))


def apply_events(session: Session, events: list[dict[str, Any]],
                 now: datetime | None = None) -> WebhookReport:
    """Apply verified events once each; replays of a ``sg_event_id`` are ignored."""
    now = now or datetime.now(UTC)
    applied = duplicates = suppressed = counted = 0
    for event in events:
        # Looked up as stored: a longer id kept whole here would never match its own row.
        event_id = str(event.get("sg_event_id") or "")[:_EVENT_ID_LENGTH]
        if not event_id:
            continue
        if session.get(WebhookEvent, event_id) is not None:
            duplicates += 1
            continue
        email = str(event.get("email") or "").strip()
        hashed = email_hash(email) if email else None
        edition_id = _int(event.get("edition_id"))
        kind = str(event.get("event", ""))[:40]
        session.add(WebhookEvent(sg_event_id=event_id, event=kind,
                                 email_hash=hashed, edition_id=edition_id))
        session.flush()
        applied += 1
        status = _suppression(event)
        if status is not None:
            suppressed += _suppress(session, event, status, hashed, now)
        elif kind in _COUNTERS and edition_id is not None:
            column = _COUNTERS[kind]
            session.execute(update(Edition).where(Edition.id == edition_id)
                            .values({column: column + 1}))
            counted += 1
    return WebhookReport(applied, duplicates, suppressed, counted)


def handle_sendgrid_webhook(app: App, body: bytes, signature: str | None,
                            timestamp: str | None, now: datetime | None = None) -> WebhookReport:
    """Verify a webhook request and apply its events (WebhookRejected if not authentic)."""
    verify(app.settings.sendgrid_webhook_public_key, body, signature, timestamp, now)
    try:
        events = json.loads(body)
    except ValueError as exc:
        raise WebhookRejected("the body is not JSON", 400) from exc
    if not isinstance(events, list) or not all(isinstance(e, dict) for e in events):
        raise WebhookRejected("expected a JSON array of events", 400)
    with transaction(app.sessions) as session:
        return apply_events(session, events, now)
