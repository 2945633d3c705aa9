"""Readers' pages at their edges: old or skewed form stamps, a full job queue, a broker that
is down, and unsubscribe links checked when the page opens."""

from __future__ import annotations

import re
import time

import pytest
from fastapi.testclient import TestClient
from kombu.exceptions import OperationalError
from sqlalchemy import select

from digest.delivery.dispatch import CeleryDispatch
from digest.delivery.send import send_digest
from digest.readers.addresses import email_hash
from digest.readers.optin import subscribe
from digest.readers.roster import add
from digest.readers.signup import form_stamp
from digest.store.deliveries import apply_event
from digest.store.models import (
    Batch,
    Cadence,
    DeliveryStatus,
    Subscriber,
    SubscriberStatus,
    utcnow,
)
from digest.store.sessions import transaction
from digest.tokens import Purpose
from digest.web.app import create_app
from digest.web.jobs import InlineJobs
from tests.delivery_helpers import add_post, add_readers

CONFIRM = re.compile(r"/confirm/([A-Za-z0-9_.\-]+)")
AUTH = {"Authorization": "Bearer test-admin-token"}


@pytest.fixture
def client(sqlite_app, limiter):
    with TestClient(create_app(sqlite_app, limiter=limiter),
                    raise_server_exceptions=False) as made:
        yield made


def _row(app, email):
    with app.sessions() as s:
        query = select(Subscriber).where(Subscriber.email_hash == email_hash(email,
                                                                           app.address_key))
        return s.scalars(query).first()


@pytest.mark.parametrize("offset", [-25 * 3600, +60], ids=["25-hours-old", "a-minute-ahead"])
def test_a_signed_but_old_or_future_stamp_is_asked_to_press_again(
        client, sqlite_app, transport, offset):
    stamp = form_stamp(sqlite_app.settings, time.time() + offset)
    first = client.post("/subscribe", data={"email": "old@example.org", "stamp": stamp})
    assert first.status_code == 200
    assert "Check your inbox" not in first.text and "press Subscribe again" in first.text
    assert transport.sent == [] and _row(sqlite_app, "old@example.org") is None
    again_stamp = re.search(r'name="stamp" value="([^"]+)"', first.text).group(1)
    again = client.post("/subscribe", data={"email": "old@example.org", "stamp": again_stamp})
    assert again.status_code == 200 and "Check your inbox" in again.text
    assert transport.recipients == ["old@example.org"]
    assert CONFIRM.search(transport.sent[0][0].text)


def test_an_old_stamp_in_json_gets_409_not_silence(client, sqlite_app, transport):
    stamp = form_stamp(sqlite_app.settings, time.time() - 25 * 3600)
    r = client.post("/subscribe", json={"email": "old@example.org", "stamp": stamp})
    assert r.status_code == 409 and "press Subscribe again" in r.json()["detail"]
    assert transport.sent == []


def test_a_forged_stamp_and_a_honeypot_still_get_silence(client, sqlite_app, transport):
    forged = client.post("/subscribe", data={"email": "f@example.org", "stamp": "1.0.bad"})
    bot = client.post("/subscribe", data={"email": "b@example.org", "website": "x"})
    assert "Check your inbox" in forged.text and "Check your inbox" in bot.text
    assert transport.sent == []


def test_confirm_with_a_full_job_queue_still_says_subscribed(sqlite_app, limiter, transport):
    subscribe(sqlite_app, "r@example.org", ip=None, source="web")
    token = CONFIRM.search(transport.sent[0][0].text).group(1)
    jobs = InlineJobs(sqlite_app, backlog=0)
    with TestClient(create_app(sqlite_app, limiter=limiter, jobs=jobs),
                    raise_server_exceptions=False) as client:
        done = client.post(f"/confirm/{token}")
    assert done.status_code == 200 and "You are subscribed" in done.text
    assert _row(sqlite_app, "r@example.org").status is SubscriberStatus.ACTIVE
    assert len(transport.sent) == 1  # the confirmation only: the welcome was skipped


def _refused(name, args):
    raise OperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")


_broker_down = CeleryDispatch(send_task=_refused)  # the real port, its broker refusing


def test_admin_send_answers_503_when_the_broker_is_down(client, sqlite_app):
    add_post(sqlite_app, "Russia-West Negotiations Start")
    add_readers(sqlite_app, 2)
    sqlite_app.dispatch = _broker_down
    sent = client.post("/admin/send", headers=AUTH)
    assert sent.status_code == 503
    detail = sent.json()["detail"]
    assert "recorded" in detail and "reconcile" in detail and "broker" in detail
    with sqlite_app.sessions() as s:
        assert s.scalars(select(Batch.id)).all()  # the plan is kept for reconcile


def test_admin_resend_answers_503_when_the_broker_is_down(client, sqlite_app, transport):
    add_post(sqlite_app, "Russia-West Negotiations Start")
    add_readers(sqlite_app, 2)
    edition_id = send_digest(sqlite_app, cadence=Cadence.WEEKLY).edition_id
    with transaction(sqlite_app.sessions) as s:
        reader = s.scalars(select(Subscriber.id).order_by(Subscriber.id)).first()
        apply_event(s, edition_id, reader, DeliveryStatus.BOUNCED, utcnow())
    sqlite_app.dispatch = _broker_down
    resent = client.post(f"/admin/resend?edition={edition_id}", headers=AUTH)
    assert resent.status_code == 503
    assert "reconcile" in resent.json()["detail"]


def test_unsubscribe_page_checks_the_link_when_opened(client, sqlite_app):
    add(sqlite_app, "r@example.org")
    row = _row(sqlite_app, "r@example.org")
    token = sqlite_app.tokens.make(Purpose.UNSUBSCRIBE, row.id, row.link_key)
    good = client.get(f"/unsubscribe/{token}")
    assert good.status_code == 200 and ">Unsubscribe</button>" in good.text
    for bad in (f"{token[:-2]}zz", "forged", sqlite_app.tokens.make(Purpose.UNSUBSCRIBE,
                                                                       row.id, "old-key")):
        page = client.get(f"/unsubscribe/{bad}")
        assert page.status_code == 400, bad
        assert ">Unsubscribe</button>" not in page.text
        assert "This link does not work" in page.text
    assert _row(sqlite_app, "r@example.org").status is SubscriberStatus.ACTIVE
