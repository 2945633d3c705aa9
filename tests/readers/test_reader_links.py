"""A reader's links die with the reader: ids are never reused, erasure retires old tokens."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from itsdangerous import URLSafeTimedSerializer
from sqlalchemy import select, update

from digest.errors import InvalidTokenError
from digest.mail.render import PLACEHOLDERS
from digest.readers import optin, preferences, roster
from digest.readers.csvio import import_csv
from digest.store.models import Subscriber, SubscriberStatus, utcnow


def _row(app, email):
    with app.sessions() as s:
        return s.scalars(select(Subscriber).where(Subscriber.email == email)).first()


def _links(transport, index=-1):
    """The (unsubscribe, preferences) tokens of the last reader mailed."""
    _, recipients = transport.sent[index]
    subs = recipients[-1].substitutions
    return (subs[PLACEHOLDERS["unsubscribe_url"]].rsplit("/", 1)[1],
            subs[PLACEHOLDERS["preferences_url"]].rsplit("/", 1)[1])


def test_token_of_an_expired_signup_never_acts_on_the_next_reader(app, transport):
    long_ago = utcnow() - timedelta(days=30)
    optin.subscribe(app, "gone@example.org", ip=None, source="web", now=long_ago)
    old_id = _row(app, "gone@example.org").id
    unsub, prefs = _links(transport)
    assert roster.expire_pending(app) == 1

    roster.add(app, "next@example.org")
    assert _row(app, "next@example.org").id > old_id  # ids are never handed out twice
    with pytest.raises(InvalidTokenError):
        preferences.unsubscribe(app, unsub)
    with pytest.raises(InvalidTokenError):
        preferences.get_preferences(app, prefs)
    with pytest.raises(InvalidTokenError):
        preferences.delete_me(app, prefs)
    assert _row(app, "next@example.org").status is SubscriberStatus.ACTIVE


def test_erasure_retires_the_readers_old_links_even_if_they_come_back(app, transport):
    optin.subscribe(app, "back@example.org", ip=None, source="web")
    unsub, prefs = _links(transport)
    preferences.delete_me(app, prefs)

    optin.subscribe(app, "back@example.org", ip=None, source="web")  # the same row, pending
    with pytest.raises(InvalidTokenError):
        preferences.unsubscribe(app, unsub)
    with pytest.raises(InvalidTokenError):
        preferences.get_preferences(app, prefs)
    new_unsub, new_prefs = _links(transport)
    assert preferences.get_preferences(app, new_prefs).email == "back@example.org"
    preferences.unsubscribe(app, new_unsub)
    assert _row(app, "back@example.org").status is SubscriberStatus.UNSUBSCRIBED


def test_links_from_before_link_keys_work_until_the_reader_is_erased(app, transport):
    roster.add(app, "old@example.org")
    with app.sessions.begin() as s:  # a reader from before migration 0002
        s.execute(update(Subscriber).values(link_key=None))
    reader_id = _row(app, "old@example.org").id
    old = {p: URLSafeTimedSerializer("test-secret", salt=f"digest.{p}").dumps(reader_id)
           for p in ("unsubscribe", "preferences")}
    assert preferences.get_preferences(app, old["preferences"]).email == "old@example.org"
    preferences.delete_me(app, old["preferences"])
    assert _row(app, "old@example.org") is None  # erased: the address is gone
    with pytest.raises(InvalidTokenError):
        preferences.unsubscribe(app, old["unsubscribe"])


def test_imported_readers_get_their_own_link_keys(app):
    import_csv(app, io.StringIO("email\na@example.org\nb@example.org\n"), name="list.csv")
    with app.sessions() as s:
        keys = list(s.scalars(select(Subscriber.link_key)))
    assert len(keys) == 2 and all(keys) and len(set(keys)) == 2
