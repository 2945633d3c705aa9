"""One reader as the operator looks them up: state, consent record, preferences, the editions
they got and what became of each, and the provider's events about them.

The editions come from the per-reader delivery record (``Delivery`` rows), so they name what
actually happened to each copy, not what was planned. The events are the SendGrid events
stored under the reader's keyed address hash (``readers.events``), which an erased reader
keeps, so their record of bounces and complaints stays readable.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from digest.errors import SubscriberError
from digest.readers.addresses import email_hash, normalise
from digest.readers.choices import describe_choice
from digest.readers.lookup import by_address
from digest.runtime import App
from digest.store.models import (
    MAX_ID,
    Delivery,
    DeliveryStatus,
    Edition,
    Subscriber,
    Topic,
    WebhookEvent,
)

__all__ = ["EditionOutcome", "ProviderEvent", "ReaderProfile", "reader_profile",
           "reader_profile_by_id"]

MAX_SHOWN = 50  # editions and events on a reader's page: the newest


@dataclass(frozen=True)
class EditionOutcome:
    """What became of one edition for this reader."""

    edition_id: int
    key: str
    subject: str
    outcome: str  # a DeliveryStatus name in words: handed, delivered, already received, ...
    handed_at: datetime
    updated_at: datetime | None


@dataclass(frozen=True)
class ProviderEvent:
    """One event the mail provider reported about this reader's address."""

    event: str  # delivered, open, click, bounce, spamreport, unsubscribe, ...
    edition_id: int | None
    received_at: datetime


@dataclass(frozen=True)
class ReaderProfile:
    """Everything ``digest subscribers show`` and the console's reader page show."""

    email: str | None  # None once erased
    name: str | None
    status: str
    cadence: str
    paused: bool
    created_at: datetime
    confirmed_at: datetime | None
    unsubscribed_at: datetime | None
    suppressed_reason: str | None
    consent_at: datetime | None
    consent_ip: str | None
    consent_source: str | None
    editions: list[EditionOutcome]
    id: int = 0
    events: list[ProviderEvent] = dataclasses.field(default_factory=list)
    delivery: str = ""  # when, on their clock: "Mondays at 08:00 (Asia/Tokyo)"
    topics: list[str] = dataclasses.field(default_factory=list)  # chosen; none: everything

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return dataclasses.asdict(self)


def reader_profile(app: App, email: str, editions: int = 10, events: int = 0) -> ReaderProfile:
    """The reader of ``email`` with their last ``editions`` outcomes; raises if unknown."""
    address = normalise(email)
    with app.sessions() as session:
        sub = by_address(session, app, address)
        if sub is None or sub.email is None:
            raise SubscriberError(f"{address} is not on the list (see `digest subscribers "
                                  "list`)")
        return _profile(session, app, sub, editions, events)


def reader_profile_by_id(app: App, reader_id: int, editions: int = MAX_SHOWN,
                         events: int = MAX_SHOWN) -> ReaderProfile | None:
    """Reader ``reader_id`` (erased ones too) with their newest editions and events, or None."""
    if not 0 < reader_id <= MAX_ID:
        return None
    with app.sessions() as session:
        sub = session.get(Subscriber, reader_id)
        if sub is None:
            return None
        return _profile(session, app, sub, editions, events)


def _profile(session: Session, app: App, sub: Subscriber, editions: int,
             events: int) -> ReaderProfile:
    return ReaderProfile(
        email=sub.email, name=sub.name, status=sub.status.value,
        cadence=sub.cadence.value, paused=sub.paused, created_at=sub.created_at,
        confirmed_at=sub.confirmed_at, unsubscribed_at=sub.unsubscribed_at,
        suppressed_reason=sub.suppressed_reason, consent_at=sub.consent_at,
        consent_ip=sub.consent_ip, consent_source=sub.consent_source,
        editions=_last_editions(session, sub.id, editions), id=sub.id,
        events=_last_events(session, app, sub, events),
        delivery=describe_choice(app.settings, sub), topics=_topic_names(session, sub))


def _topic_names(session: Session, sub: Subscriber) -> list[str]:
    """The names of the topics the reader chose (an empty list: they follow everything)."""
    chosen = [i for i in sub.topic_ids or [] if isinstance(i, int)]
    if not chosen:
        return []
    return sorted(str(name) for name in session.scalars(
        select(Topic.name).where(Topic.id.in_(chosen))))


def _last_editions(session: Session, subscriber_id: int, limit: int) -> list[EditionOutcome]:
    if limit <= 0:
        return []
    rows = session.execute(
        select(Edition.id, Edition.key, Edition.subject, Delivery.status, Delivery.at,
               Delivery.updated_at)
        .join(Edition, Edition.id == Delivery.edition_id)
        .where(Delivery.subscriber_id == subscriber_id)
        .order_by(Delivery.edition_id.desc()).limit(limit))
    return [EditionOutcome(int(eid), key, subject, _words(status), at, updated)
            for eid, key, subject, status, at, updated in rows]


def _last_events(session: Session, app: App, sub: Subscriber, limit: int) -> list[ProviderEvent]:
    """Events stored under the reader's hash: the row's own, and the keyed one of the address
    (a row from before keyed hashes still has its legacy hash until it is next looked up)."""
    if limit <= 0:
        return []
    hashes = {sub.email_hash}
    if sub.email is not None:
        hashes.add(email_hash(sub.email, app.address_key))
    rows = session.execute(
        select(WebhookEvent.event, WebhookEvent.edition_id, WebhookEvent.received_at)
        .where(WebhookEvent.email_hash.in_(sorted(hashes)))
        .order_by(WebhookEvent.received_at.desc(), WebhookEvent.sg_event_id.desc())
        .limit(limit))
    return [ProviderEvent(event, int(edition) if edition is not None else None, at)
            for event, edition, at in rows]


def _words(status: int) -> str:
    return DeliveryStatus(status).name.lower().replace("_", " ")
