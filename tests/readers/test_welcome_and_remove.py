"""A returning reader's welcome mail, and what the operator's remove says it did."""

from __future__ import annotations

import re

from digest.mail.message import build_mime
from digest.readers import optin, preferences, roster
from digest.readers.roster import Removal
from digest.store.deliveries import apply_event
from digest.store.models import (
    Cadence,
    DeliveryStatus,
    Edition,
    EditionStatus,
    SubscriberStatus,
    utcnow,
)
from digest.store.sessions import transaction
from digest.tokens import Purpose

CONFIRM = re.compile(r"/confirm/([A-Za-z0-9_.\-]+)")
LATEST = "Russia-West Negotiations Start"


def _latest_edition(app) -> int:
    with app.sessions.begin() as s:
        edition = Edition(key="weekly:new", cadence=Cadence.WEEKLY, status=EditionStatus.SENT,
                          subject="New", html=f"<!-- posts --><p>{LATEST}</p><!-- /posts -->",
                          text="=" * 20 + f"\n{LATEST}\n" + "_" * 20, post_ids=[2])
        s.add(edition)
        s.flush()
        return edition.id


def _sign_up_and_confirm(app, transport) -> tuple[bytes, int]:
    optin.subscribe(app, "r@example.org", ip=None, source="web")
    token = CONFIRM.search(transport.sent[-1][0].text).group(1)
    assert optin.confirm(app, token) is True
    mail, recipients = transport.sent[-1]
    assert "welcome" in mail.subject.lower()
    raw = build_mime(mail, recipients[0], "example.org")
    body = b"".join(part.get_payload(decode=True) or b"" for part in raw.walk()
                    if not part.is_multipart())
    return body, recipients[0].subscriber_id


def _leave(app, subscriber_id: int) -> None:
    with app.sessions() as s:
        from digest.store.models import Subscriber
        sub = s.get(Subscriber, subscriber_id)
        token = app.tokens.make(Purpose.UNSUBSCRIBE, sub.id, sub.link_key)
    preferences.unsubscribe(app, token)


def test_a_returning_reader_is_not_sent_the_digest_they_already_got(app, transport):
    _latest_edition(app)
    first, reader = _sign_up_and_confirm(app, transport)
    assert LATEST.encode() in first
    _leave(app, reader)
    again, same = _sign_up_and_confirm(app, transport)
    assert same == reader  # a re-subscriber keeps their id, and their delivery record
    assert LATEST.encode() not in again
    assert b"welcome" in again.lower()


def test_a_returning_reader_whose_copy_bounced_gets_it_in_the_welcome(app, transport):
    edition_id = _latest_edition(app)
    _, reader = _sign_up_and_confirm(app, transport)
    with transaction(app.sessions) as s:
        apply_event(s, edition_id, reader, DeliveryStatus.BOUNCED, utcnow())
    _leave(app, reader)
    again, _ = _sign_up_and_confirm(app, transport)
    assert LATEST.encode() in again


def test_remove_says_removed_already_unsubscribed_or_not_on_the_list(app):
    roster.add(app, "op@example.org")
    assert roster.remove(app, "OP@example.org") == Removal(True, SubscriberStatus.UNSUBSCRIBED)
    again = roster.remove(app, "op@example.org")
    assert again == Removal(False, SubscriberStatus.UNSUBSCRIBED)
    assert roster.remove(app, "nobody@example.org") == Removal(False, None)
