"""A reader's page data, and the operator's unsubscribe and erase by id (both databases)."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from digest.errors import InvalidTokenError
from digest.readers import preferences, roster
from digest.readers.addresses import email_hash
from digest.readers.csvio import import_csv
from digest.readers.profile import reader_profile_by_id
from digest.store.models import (
    Cadence,
    Delivery,
    DeliveryStatus,
    Edition,
    EditionStatus,
    Subscriber,
    SubscriberStatus,
    WebhookEvent,
)
from digest.tokens import Purpose

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def _history(app, reader_id, address, editions=3, events=60):
    key = email_hash(address, app.address_key)
    with app.sessions.begin() as s:
        for n in range(1, editions + 1):
            s.add(Edition(id=n, key=f"weekly:{n}", cadence=Cadence.WEEKLY,
                          status=EditionStatus.SENT, subject=f"Issue {n}"))
        s.flush()
        outcomes = [DeliveryStatus.DELIVERED, DeliveryStatus.BOUNCED, DeliveryStatus.HANDED]
        for n in range(1, editions + 1):
            s.add(Delivery(edition_id=n, subscriber_id=reader_id, status=int(outcomes[n - 1]),
                           at=T0 + timedelta(days=n)))
        s.add(Delivery(edition_id=1, subscriber_id=reader_id + 1000, status=1, at=T0))
        for n in range(events):
            s.add(WebhookEvent(sg_event_id=f"ev{n}", event="open" if n % 2 else "delivered",
                               email_hash=key, edition_id=1, received_at=T0 + timedelta(minutes=n)))
        s.add(WebhookEvent(sg_event_id="other", event="bounce", email_hash="h1:someone-else",
                           received_at=T0 + timedelta(days=9)))


def test_profile_by_id_has_consent_editions_and_newest_events(app):
    import_csv(app, io.StringIO('"Email Address","OPTIN_TIME","OPTIN_IP"\n'
                                '"Ann@example.org","2021-03-04 10:11:12","203.0.113.7"\n'),
               name="mailchimp.csv")
    with app.sessions() as s:
        reader_id = s.scalar(select(Subscriber.id))
    _history(app, reader_id, "Ann@example.org")
    p = reader_profile_by_id(app, reader_id)
    assert p is not None
    assert (p.id, p.email, p.status, p.cadence) == (reader_id, "Ann@example.org", "active",
                                                    "weekly")
    assert (p.consent_at, p.consent_ip, p.consent_source) == (
        datetime(2021, 3, 4, 10, 11, 12, tzinfo=UTC), "203.0.113.7", "import:mailchimp.csv")
    assert [(e.edition_id, e.subject, e.outcome) for e in p.editions] == [
        (3, "Issue 3", "handed"), (2, "Issue 2", "bounced"), (1, "Issue 1", "delivered")]
    assert len(p.events) == 50  # the newest 50 of 60
    assert p.events[0].received_at == T0 + timedelta(minutes=59)
    assert p.events[-1].received_at == T0 + timedelta(minutes=10)
    assert {e.event for e in p.events} == {"open", "delivered"}
    assert reader_profile_by_id(app, reader_id + 1) is None
    assert reader_profile_by_id(app, 2**70) is None


def test_unsubscribe_and_erase_by_id(app):
    roster.add(app, "bob@example.org", name="Bob")
    with app.sessions() as s:
        bob = s.scalars(select(Subscriber)).one()
    token = app.tokens.make(Purpose.PREFERENCES, bob.id, bob.link_key)
    _history(app, bob.id, "bob@example.org", editions=1, events=2)

    assert roster.remove(app, bob.id) == roster.Removal(True, SubscriberStatus.UNSUBSCRIBED)
    assert roster.remove(app, bob.id) == roster.Removal(False, SubscriberStatus.UNSUBSCRIBED)
    assert roster.erase(app, bob.id) == roster.Removal(True, SubscriberStatus.DELETED)
    assert roster.erase(app, bob.id) == roster.Removal(False, SubscriberStatus.DELETED)
    assert roster.erase(app, bob.id + 1) == roster.Removal(False, None)

    p = reader_profile_by_id(app, bob.id)
    assert p is not None
    assert (p.email, p.name, p.consent_ip, p.status) == (None, None, None, "deleted")
    assert p.suppressed_reason == roster.ERASED_BY_OPERATOR
    assert len(p.events) == 2  # the provider's record stays under the keyed hash
    with pytest.raises(InvalidTokenError):  # the links mailed to Bob act on nobody now
        preferences.export_my_data(app, token)
    assert import_csv(app, io.StringIO("bob@example.org\n"), name="again.csv").imported == 0
