"""One reader as the operator looks them up: state, consent record, preferences, last editions.

The last editions come from the per-reader delivery record (``Delivery`` rows), so they name
what actually happened to each copy, not what was planned.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from digest.errors import SubscriberError
from digest.readers.addresses import normalise
from digest.readers.lookup import by_address
from digest.runtime import App
from digest.store.models import Delivery, DeliveryStatus, Edition, Subscriber


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
class ReaderProfile:
    """Everything ``digest subscribers show`` prints about one reader."""

    email: str
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

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return dataclasses.asdict(self)


def reader_profile(app: App, email: str, editions: int = 10) -> ReaderProfile:
    """The reader of ``email`` with their last ``editions`` outcomes; raises if unknown."""
    address = normalise(email)
    with app.sessions() as session:
        sub = by_address(session, app, address)
        if sub is None or sub.email is None:
            raise SubscriberError(f"{address} is not on the list (see `digest subscribers "
                                  "list`)")
        return _profile(sub, _last_editions(session, sub.id, editions))


def _last_editions(session: Session, subscriber_id: int, limit: int) -> list[EditionOutcome]:
    rows = session.execute(
        select(Edition.id, Edition.key, Edition.subject, Delivery.status, Delivery.at,
               Delivery.updated_at)
        .join(Edition, Edition.id == Delivery.edition_id)
        .where(Delivery.subscriber_id == subscriber_id)
        .order_by(Delivery.edition_id.desc()).limit(limit))
    return [EditionOutcome(int(eid), key, subject, _words(status), at, updated)
            for eid, key, subject, status, at, updated in rows]


def _words(status: int) -> str:
    return DeliveryStatus(status).name.lower().replace("_", " ")


def _profile(sub: Subscriber, editions: list[EditionOutcome]) -> ReaderProfile:
    return ReaderProfile(
        email=str(sub.email), name=sub.name, status=sub.status.value,
        cadence=sub.cadence.value, paused=sub.paused, created_at=sub.created_at,
        confirmed_at=sub.confirmed_at, unsubscribed_at=sub.unsubscribed_at,
        suppressed_reason=sub.suppressed_reason, consent_at=sub.consent_at,
        consent_ip=sub.consent_ip, consent_source=sub.consent_source, editions=editions)
