"""Addresses are remembered by a keyed hash (HMAC from DIGEST_SECRET_KEY), never a bare sha256."""

from __future__ import annotations

import hashlib
import io
import uuid

import pytest
import redis
from sqlalchemy import insert, select

from digest.bootstrap import build
from digest.errors import SubscriberError
from digest.mail.render import PLACEHOLDERS
from digest.readers import addresses, optin, preferences, roster
from digest.readers.csvio import import_csv
from digest.readers.events import apply_events
from digest.readers.ratelimit import Limit, RateLimiter
from digest.store.models import Subscriber, SubscriberStatus, WebhookEvent
from tests.conftest import make_settings


def _sha256(address: str) -> str:
    return hashlib.sha256(address.lower().encode()).hexdigest()


def _stored(app, **where):
    with app.sessions() as s:
        return s.scalars(select(Subscriber).filter_by(**where)).one()


def test_erasure_keeps_no_guessable_hash(app, transport):
    optin.subscribe(app, "Erase.Me@example.org", ip=None, source="web")
    _, recipients = transport.sent[-1]
    prefs = recipients[0].substitutions[PLACEHOLDERS["preferences_url"]].rsplit("/", 1)[1]
    preferences.delete_me(app, prefs)
    row = _stored(app, status=SubscriberStatus.DELETED)
    assert row.email is None
    assert row.email_hash != _sha256("erase.me@example.org")
    assert "erase.me" not in row.email_hash
    assert row.email_hash == addresses.email_hash("erase.me@example.org", app.address_key)
    # Another secret gives another hash: knowing the address is not enough to confirm it.
    other = build(make_settings(app.settings.outbox_dir.parent, secret_key="another"))
    assert addresses.email_hash("erase.me@example.org", other.address_key) != row.email_hash
    other.engine.dispose()
    with pytest.raises(SubscriberError, match="deleted"):  # still blocks the address
        roster.add(app, "erase.me@example.org")
    assert import_csv(app, io.StringIO("email\nERASE.ME@example.org\n")).imported == 0


def test_rows_hashed_before_the_upgrade_still_match(app, transport):
    with app.sessions.begin() as s:
        s.execute(insert(Subscriber), [
            {"email": None, "email_hash": _sha256("gone@example.org"),
             "status": SubscriberStatus.DELETED},
            {"email": "kept@example.org", "email_hash": _sha256("kept@example.org"),
             "status": SubscriberStatus.ACTIVE},
        ])
    report = import_csv(app, io.StringIO("email\ngone@example.org\nkept@example.org\n"))
    assert report.imported == 0  # an old erasure still blocks re-imports
    with pytest.raises(SubscriberError, match="deleted"):
        roster.add(app, "gone@example.org")
    assert roster.add(app, "kept@example.org").email == "kept@example.org"
    # When the address comes back, its row moves to the keyed hash.
    optin.subscribe(app, "gone@example.org", ip=None, source="web")
    row = _stored(app, email="gone@example.org")
    assert row.status is SubscriberStatus.PENDING
    assert row.email_hash == addresses.email_hash("gone@example.org", app.address_key)


def test_spam_reports_find_readers_by_keyed_and_old_hashes(app):
    roster.add(app, "new@example.org")
    with app.sessions.begin() as s:
        s.execute(insert(Subscriber), [{"email": "old@example.org", "status": "active",
                                        "email_hash": _sha256("old@example.org")}])
    events = [{"sg_event_id": f"e{i}", "event": "spamreport", "email": address}
              for i, address in enumerate(["new@example.org", "old@example.org"])]
    with app.sessions.begin() as s:
        apply_events(s, events, address_key=app.address_key)
    for address in ("new@example.org", "old@example.org"):
        assert _stored(app, email=address).status is SubscriberStatus.COMPLAINED
    with app.sessions() as s:
        kept = set(s.scalars(select(WebhookEvent.email_hash)))
    assert kept and not kept & {_sha256("new@example.org"), _sha256("old@example.org")}


def test_rate_limit_keys_are_keyed(redis_url):
    prefix = f"test:{uuid.uuid4().hex}"
    limiter = RateLimiter(redis_url, prefix=prefix, key=b"k" * 32,
                          limits={"ip": Limit(5, 60)})
    limiter.hit("ip", "203.0.113.9")
    keys = [k.decode() for k in redis.Redis.from_url(redis_url).keys(f"{prefix}:*")]
    assert len(keys) == 1
    assert hashlib.sha256(b"203.0.113.9").hexdigest()[:32] not in keys[0]
    same = RateLimiter(redis_url, prefix=prefix, key=b"k" * 32, limits={"ip": Limit(5, 60)})
    same.hit("ip", "203.0.113.9")  # another process with the same secret shares the bucket
    assert len(redis.Redis.from_url(redis_url).keys(f"{prefix}:*")) == 1
    limiter.close()
    same.close()
