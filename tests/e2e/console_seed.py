"""Demo-like data for the console's browser test: a list that has been running for a while.

Readers of every status and cadence who signed up over the last twelve weeks, four weekly
editions already sent with what became of each copy, and the bundled sample feed polled, so
the dashboard, the editions and a reader's page look like a real list's rather than empty.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from digest.feeds.poll import poll_feeds
from digest.readers.addresses import email_hash
from digest.runtime import App
from digest.store.models import (
    Batch,
    BatchStatus,
    Cadence,
    Delivery,
    DeliveryStatus,
    Edition,
    EditionStatus,
    Subscriber,
    SubscriberStatus,
)
from digest.store.sessions import transaction

__all__ = ["NAMES", "Seeded", "seed"]

S = SubscriberStatus
NAMES = ("Amara Okafor", "Björn Lindqvist", "Chen Wei", "Dilara Yılmaz", "Élodie Martin",  # noqa: RUF001
         "Farid Haddad", "Grace Mensah", "Hiroshi Tanaka", "Inés García", "Jonas Weber",
         "Kavya Iyer", "Leila Ahmadi", "Mateo Rossi", "Nadia Petrova", "Oskar Nowak",
         "Priya Nair", "Quentin Dubois", "Rosa Silva", "Sven Olsen", "Tamar Cohen")
SUBJECTS = ("Sanctions, summits and a quiet week in Vienna", "What the G20 communiqué left out",
            "The Black Sea grain corridor, one year on", "Mediators, money and the Caucasus")


@dataclass(frozen=True)
class Seeded:
    """What the test needs to know about the seeded list."""

    weekly: list[str]  # active weekly readers' addresses
    daily: list[str]  # active daily readers' addresses


def _address(name: str, n: int, domain: str) -> str:
    plain = unicodedata.normalize("NFKD", name.lower().replace("ı", "i"))  # noqa: RUF001
    first, last = plain.encode("ascii", "ignore").decode().split(" ", 1)
    return f"{first}.{last}{n}@{domain}"


def _row(app: App, address: str, name: str, status: S, cadence: Cadence, created: datetime,
         left: datetime | None = None) -> dict[str, object]:
    confirmed = None if status is S.PENDING else created + timedelta(minutes=7)
    return {"email": address, "email_hash": email_hash(address, app.address_key), "name": name,
            "status": status, "cadence": cadence, "paused": False, "created_at": created,
            "confirmed_at": confirmed, "unsubscribed_at": left, "consent_at": created,
            "consent_ip": "203.0.113.7", "consent_source": "signup-form"}


def seed(app: App, now: datetime, *, weekly: int, daily: int) -> Seeded:
    """Poll the configured feeds; add readers and four sent weekly editions; return the
    addresses."""
    poll_feeds(app)
    rows: list[dict[str, object]] = []
    plan = ((S.ACTIVE, Cadence.WEEKLY, weekly, "example.org"),
            (S.ACTIVE, Cadence.DAILY, daily, "example.net"),
            (S.ACTIVE, Cadence.INSTANT, 12, "example.com"),
            (S.PENDING, Cadence.WEEKLY, 9, "example.com"),
            (S.UNSUBSCRIBED, Cadence.WEEKLY, 17, "example.com"),
            (S.BOUNCED, Cadence.WEEKLY, 5, "example.com"),
            (S.COMPLAINED, Cadence.DAILY, 2, "example.com"))
    seeded: dict[tuple[S, Cadence], list[str]] = {}
    n = 0
    for status, cadence, count, domain in plan:
        for _ in range(count):
            n += 1
            name = NAMES[n % len(NAMES)]
            address = _address(name, n, domain)
            # Sign-ups over twelve weeks, more of them lately, as a list that is growing.
            created = now - timedelta(days=(n * 37) % 84 * ((n % 3) + 1) // 3, hours=n % 17)
            left = None
            if status in (S.UNSUBSCRIBED, S.BOUNCED, S.COMPLAINED):
                left = created + (now - created) * 0.6
            rows.append(_row(app, address, name, status, cadence, created, left))
            seeded.setdefault((status, cadence), []).append(address)
    with transaction(app.sessions) as session:
        session.execute(insert(Subscriber), rows)
        ids = list(session.scalars(select(Subscriber.id).where(
            Subscriber.status.in_((S.ACTIVE, S.BOUNCED, S.UNSUBSCRIBED)),
            Subscriber.cadence == Cadence.WEEKLY).order_by(Subscriber.id)))
        _past_editions(session, now, ids)
    return Seeded(weekly=seeded[(S.ACTIVE, Cadence.WEEKLY)],
                  daily=seeded[(S.ACTIVE, Cadence.DAILY)])


def _past_editions(session: Session, now: datetime, ids: list[int]) -> None:
    """Four weekly editions, a week apart, each with one delivery row per weekly reader."""
    D = DeliveryStatus
    for week, subject in enumerate(SUBJECTS):
        sent_at = now - timedelta(weeks=4 - week, hours=3)
        edition = Edition(key=f"weekly:seed-{week}", cadence=Cadence.WEEKLY,
                          status=EditionStatus.SENT, subject=subject, post_ids=[],
                          recipient_count=len(ids), batch_count=1, created_at=sent_at,
                          finished_at=sent_at + timedelta(minutes=2), opens=len(ids) // 2,
                          clicks=len(ids) // 5)
        session.add(edition)
        session.flush()
        outcomes = [D.BOUNCED if (i + week) % 23 == 0 else D.COMPLAINED if i == 7 + week
                    else D.FAILED if (i + week) % 31 == 5 else D.DELIVERED
                    for i in range(len(ids))]
        edition.delivered = outcomes.count(D.DELIVERED)
        session.add(Batch(id=f"{edition.id}-1", edition_id=edition.id, seq=1, after_id=0,
                          upto_id=max(ids), size=len(ids), status=BatchStatus.SENT,
                          sent_at=sent_at))
        session.execute(insert(Delivery), [
            {"edition_id": edition.id, "subscriber_id": sid, "status": int(outcome),
             "at": sent_at, "updated_at": sent_at + timedelta(minutes=30)}
            for sid, outcome in zip(ids, outcomes, strict=True)])
