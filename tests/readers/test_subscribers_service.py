"""The subscriber service on SQLite and PostgreSQL with an in-memory transport."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from digest.errors import InvalidEmailError, InvalidTokenError, SubscriberError
from digest.mail.message import build_mime
from digest.readers import addresses, optin, preferences, roster
from digest.store.models import (
    Cadence,
    Edition,
    EditionStatus,
    Subscriber,
    SubscriberStatus,
    utcnow,
)
from digest.tokens import Purpose, Tokens

CONFIRM = re.compile(r"/confirm/([A-Za-z0-9_.\-]+)")


def _row(app, email):
    with app.sessions() as s:
        key = addresses.email_hash(email, app.address_key)
        query = select(Subscriber).where(Subscriber.email_hash == key)
        return s.scalars(query).first()


def _count(app):
    with app.sessions() as s:
        return s.scalar(select(func.count()).select_from(Subscriber))


def _confirm_token(transport, index=-1):
    mail, _ = transport.sent[index]
    return CONFIRM.search(mail.text).group(1)


def _token(app, purpose, email):
    row = _row(app, email)
    return app.tokens.make(purpose, row.id, row.link_key)


def test_new_address_becomes_pending_with_one_confirmation(app, transport):
    optin.subscribe(app, "Reader@Example.org", ip="203.0.113.9", source="web")
    sub = _row(app, "reader@example.org")
    assert sub.status is SubscriberStatus.PENDING
    assert sub.email == "Reader@example.org"
    assert (sub.consent_ip, sub.consent_source) == ("203.0.113.9", "web")
    assert sub.consent_at is not None
    assert transport.recipients == ["Reader@example.org"]
    mail, _ = transport.sent[0]
    assert "confirm" in mail.subject.lower()
    assert CONFIRM.search(mail.html) and CONFIRM.search(mail.text)


def test_confirmation_mail_carries_a_working_unsubscribe(app, transport):
    """Issue 4: List-Unsubscribe on the confirmation mail too, and "Never email me again"
    must be the reader's own one-click link, not the signup page."""
    optin.subscribe(app, "r@example.org", ip=None, source="web")
    mail, recipients = transport.sent[0]
    raw = build_mime(mail, recipients[0], "news.example.org")
    assert raw["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    target = raw["List-Unsubscribe"].strip().strip("<>")
    assert target.startswith("https://news.example.org/unsubscribe/")
    text = raw.get_body(("plain",)).get_content()
    assert f"Never email me again: {target}" in text
    preferences.unsubscribe(app, target.rsplit("/", 1)[1])
    assert _row(app, "r@example.org").status is SubscriberStatus.UNSUBSCRIBED


def test_resending_is_throttled(app, transport):
    now = utcnow()
    optin.subscribe(app, "r@example.org", ip=None, source="web", now=now)
    optin.subscribe(app, "r@example.org", ip=None, source="web", now=now + timedelta(minutes=1))
    assert len(transport.sent) == 1
    optin.subscribe(app, "R@example.org", ip=None, source="web",
                  now=now + optin.RESEND_AFTER + timedelta(seconds=1))
    assert len(transport.sent) == 2
    assert _count(app) == 1


def test_confirm_activates_and_sends_the_welcome_once(app, transport):
    optin.subscribe(app, "r@example.org", ip=None, source="web")
    token = _confirm_token(transport)
    assert optin.confirm(app, token) is True
    sub = _row(app, "r@example.org")
    assert sub.status is SubscriberStatus.ACTIVE and sub.confirmed_at is not None
    welcome, (recipient,) = transport.sent[-1]
    assert "welcome" in welcome.subject.lower()
    message = build_mime(welcome, recipient, "example.org")
    assert "/unsubscribe/" in message["List-Unsubscribe"]
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert "[%" not in message.as_string()
    assert optin.confirm(app, token) is False
    assert len(transport.sent) == 2


def test_welcome_includes_the_latest_sent_digest(app, transport):
    with app.sessions.begin() as s:
        s.add(Edition(key="weekly:old", cadence=Cadence.WEEKLY, status=EditionStatus.SENT,
                      subject="Old", html="<!-- posts --><p>Older post</p><!-- /posts -->",
                      text="=" * 20 + "\nOlder post\n" + "_" * 20, post_ids=[1]))
        s.add(Edition(key="weekly:new", cadence=Cadence.WEEKLY, status=EditionStatus.SENT,
                      subject="New",
                      html="<!-- posts --><p>Russia-West Negotiations Start</p><!-- /posts -->",
                      text="=" * 20 + "\nRussia-West Negotiations Start\n" + "_" * 20,
                      post_ids=[2]))
        s.add(Edition(key="weekly:failed", cadence=Cadence.WEEKLY, status=EditionStatus.FAILED,
                      subject="Failed", html="<!-- posts --><p>Never sent</p><!-- /posts -->"))
    optin.subscribe(app, "r@example.org", ip=None, source="web")
    optin.confirm(app, _confirm_token(transport))
    welcome, _ = transport.sent[-1]
    assert "Russia-West Negotiations Start" in welcome.html
    assert "Russia-West Negotiations Start" in welcome.text
    assert "Never sent" not in welcome.html and "Older post" not in welcome.html


def test_welcome_without_latest_when_switched_off(app, transport):
    app.settings.welcome_with_latest = False
    with app.sessions.begin() as s:
        s.add(Edition(key="weekly:new", cadence=Cadence.WEEKLY, status=EditionStatus.SENT,
                      subject="New", html="<!-- posts --><p>Latest post</p><!-- /posts -->"))
    optin.subscribe(app, "r@example.org", ip=None, source="web")
    optin.confirm(app, _confirm_token(transport))
    assert "Latest post" not in transport.sent[-1][0].html


def test_same_outcome_for_every_status(app, transport):
    for status in ("new", "pending", "active", "unsubscribed"):
        optin.subscribe(app, f"{status}@example.org", ip=None, source="web")
    optin.confirm(app, _confirm_token(transport, 2))
    optin.confirm(app, _confirm_token(transport, 3))
    preferences.unsubscribe(app, _token(app, Purpose.UNSUBSCRIBE, "unsubscribed@example.org"))
    for status in ("new", "pending", "active", "unsubscribed"):
        assert optin.subscribe(app, f"{status}@example.org", ip=None, source="web") is None


def test_unsubscribe_is_immediate_idempotent_and_returning_needs_confirmation(app, transport):
    optin.subscribe(app, "r@example.org", ip=None, source="web")
    optin.confirm(app, _confirm_token(transport))
    token = _token(app, Purpose.UNSUBSCRIBE, "r@example.org")
    preferences.unsubscribe(app, token)
    first = _row(app, "r@example.org")
    assert first.status is SubscriberStatus.UNSUBSCRIBED
    preferences.unsubscribe(app, token)
    assert _row(app, "r@example.org").unsubscribed_at == first.unsubscribed_at
    sent = len(transport.sent)
    optin.subscribe(app, "r@example.org", ip="198.51.100.1", source="web")
    assert _row(app, "r@example.org").status is SubscriberStatus.PENDING
    assert len(transport.sent) == sent + 1


def test_unsubscribe_tokens_never_expire(app, transport):
    optin.subscribe(app, "r@example.org", ip=None, source="web")
    token = _token(app, Purpose.UNSUBSCRIBE, "r@example.org")
    app.tokens = Tokens("test-secret", confirm_max_age_seconds=-1)
    preferences.unsubscribe(app, token)
    assert _row(app, "r@example.org").status is SubscriberStatus.UNSUBSCRIBED


def test_expired_confirmation_changes_nothing(app, transport):
    optin.subscribe(app, "r@example.org", ip=None, source="web")
    token = _confirm_token(transport)
    app.tokens = Tokens("test-secret", confirm_max_age_seconds=-1)
    with pytest.raises(InvalidTokenError, match="expired"):
        optin.confirm(app, token)
    assert _row(app, "r@example.org").status is SubscriberStatus.PENDING


@pytest.mark.parametrize("mangle", [
    lambda t: t[:-2] + ("AA" if not t.endswith("AA") else "BB"),
    lambda t: "9" + t,  # another payload under the same signature
    lambda t: "garbage",
])
def test_forged_or_tampered_tokens_change_nothing(app, transport, mangle):
    optin.subscribe(app, "r@example.org", ip=None, source="web")
    token = _confirm_token(transport)
    with pytest.raises(InvalidTokenError):
        optin.confirm(app, mangle(token))
    with pytest.raises(InvalidTokenError):
        preferences.unsubscribe(app, mangle(_token(app, Purpose.UNSUBSCRIBE, "r@example.org")))
    with pytest.raises(InvalidTokenError):  # a token for another purpose
        preferences.unsubscribe(app, token)
    row = _row(app, "r@example.org")
    other = Tokens("another-secret").make(Purpose.CONFIRM, row.id, row.link_key)
    with pytest.raises(InvalidTokenError):
        optin.confirm(app, other)
    assert _row(app, "r@example.org").status is SubscriberStatus.PENDING


def test_preferences_and_my_data(app, transport):
    roster.add(app, "r@example.org", name="Reader")
    token = _token(app, Purpose.PREFERENCES, "r@example.org")
    assert preferences.get_preferences(app, token).cadence is Cadence.WEEKLY
    prefs = preferences.update_preferences(app, token, "daily", paused=True)
    assert (prefs.cadence, prefs.paused) == (Cadence.DAILY, True)
    with pytest.raises(SubscriberError, match="unknown frequency"):
        preferences.update_preferences(app, token, "hourly", paused=False)
    data = preferences.export_my_data(app, token)
    assert data["email"] == "r@example.org" and data["cadence"] == "daily"
    assert data["consent"]["source"] == "operator"


def test_delete_me_keeps_only_the_hash(app, transport):
    optin.subscribe(app, "r@example.org", ip="203.0.113.9", source="web")
    optin.confirm(app, _confirm_token(transport))
    token = _token(app, Purpose.PREFERENCES, "r@example.org")
    preferences.delete_me(app, token)
    sub = _row(app, "r@example.org")
    assert sub.status is SubscriberStatus.DELETED
    assert (sub.email, sub.name, sub.consent_ip) == (None, None, None)
    assert sub.email_hash == addresses.email_hash("r@example.org", app.address_key)
    with pytest.raises(InvalidTokenError):
        preferences.export_my_data(app, token)
    with pytest.raises(InvalidTokenError):  # the erased reader's links are dead
        preferences.delete_me(app, token)
    with pytest.raises(SubscriberError, match="deleted"):
        roster.add(app, "r@example.org")
    # The reader may sign up again on their own.
    optin.subscribe(app, "r@example.org", ip=None, source="web")
    assert _row(app, "r@example.org").status is SubscriberStatus.PENDING


def test_operator_add_list_remove(app, transport):
    sub = roster.add(app, "Op@Example.org", name="Op")
    assert sub.status is SubscriberStatus.ACTIVE and sub.email == "Op@example.org"
    assert roster.add(app, "op@example.org").id == sub.id
    optin.subscribe(app, "pending@example.org", ip=None, source="web")
    listed = [s.email for s in roster.list_subscribers(app)]
    assert listed == ["Op@example.org", "pending@example.org"]
    pending = [s.email for s in roster.list_subscribers(app, status="pending")]
    assert pending == ["pending@example.org"]
    assert roster.remove(app, "OP@example.org").removed is True
    assert roster.remove(app, "nobody@example.org") == roster.Removal(False, None)
    assert _row(app, "op@example.org").status is SubscriberStatus.UNSUBSCRIBED
    with pytest.raises(SubscriberError, match="unsubscribed"):
        roster.add(app, "op@example.org")
    with pytest.raises(InvalidEmailError):
        roster.add(app, "nope")
    assert not transport.sent[1:]  # operator adds send nothing; only the one sign-up mailed


def test_expire_pending(app, transport):
    old = utcnow() - timedelta(hours=app.settings.confirm_max_age_hours + 1)
    optin.subscribe(app, "stale@example.org", ip=None, source="web", now=old)
    optin.subscribe(app, "fresh@example.org", ip=None, source="web")
    roster.add(app, "back@example.org")
    roster.remove(app, "back@example.org")
    optin.subscribe(app, "back@example.org", ip=None, source="web", now=old)
    assert roster.expire_pending(app) == 2
    assert _row(app, "stale@example.org") is None
    assert _row(app, "fresh@example.org").status is SubscriberStatus.PENDING
    assert _row(app, "back@example.org").status is SubscriberStatus.UNSUBSCRIBED


def test_a_failed_confirmation_mail_can_be_retried_at_once(app, transport):
    from digest.errors import TransientDeliveryError

    transport.fail_with.append(TransientDeliveryError("provider down", 503))
    optin.subscribe(app, "r@example.org", ip=None, source="web")
    assert _row(app, "r@example.org").confirmation_sent_at is None
    optin.subscribe(app, "r@example.org", ip=None, source="web")
    assert transport.recipients == ["r@example.org"]
