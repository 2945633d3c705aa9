"""A signed Event Webhook with hostile or odd events: each event is applied or skipped alone.

Runs on SQLite and PostgreSQL (an id over 2^63 is an error only PostgreSQL raises).
"""

from __future__ import annotations

import json

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from digest.store.models import Edition, Subscriber, SubscriberStatus, WebhookEvent
from digest.web.admin import router
from tests.delivery_helpers import add_post, add_readers
from tests.webhook_signing import signed_headers


def _post(client: TestClient, body: bytes):
    return client.post("/webhooks/sendgrid", content=body, headers=signed_headers(body))


def _statuses(app) -> dict[str, SubscriberStatus]:
    with app.sessions() as s:
        return {sub.email: sub.status for sub in s.scalars(select(Subscriber))}


@pytest.mark.parametrize("bad_event", [
    {"sg_event_id": "bad1", "event": "delivered", "edition_id": str(2**64)},
    {"sg_event_id": "bad2", "event": "open", "edition_id": -(2**70)},
    {"sg_event_id": "bad3", "event": "bounce", "subscriber_id": 10**30, "type": "bounce"},
    {"sg_event_id": "bad4\x00nul", "event": "click\x00", "email": "a\x00@b"},
    {"sg_event_id": "bad5", "event": "delivered", "edition_id": 1e300},
])
def test_one_bad_event_never_undoes_the_others(app, client, bad_event) -> None:
    add_post(app)
    add_readers(app, 3)
    from digest.delivery.send import send_digest

    edition_id = send_digest(app).edition_id
    events = [
        {"sg_event_id": "ok1", "event": "spamreport", "email": "reader0@example.org"},
        bad_event,
        {"sg_event_id": "ok2", "event": "delivered", "edition_id": edition_id},
        {"sg_event_id": "ok3", "event": "bounce", "email": "reader1@example.org",
         "type": "bounce"},
    ]
    response = _post(client, json.dumps(events).encode())
    assert response.status_code == 200, response.text
    statuses = _statuses(app)
    assert statuses["reader0@example.org"] is SubscriberStatus.COMPLAINED  # the spam report
    assert statuses["reader1@example.org"] is SubscriberStatus.BOUNCED
    assert statuses["reader2@example.org"] is SubscriberStatus.ACTIVE
    with app.sessions() as s:
        assert s.get(Edition, edition_id).delivered == 1
        seen = set(s.scalars(select(WebhookEvent.sg_event_id)))
    assert {"ok1", "ok2", "ok3"} <= seen
    assert response.json()["applied"] >= 3


def test_deeply_nested_webhook_body_is_a_400(app, client) -> None:
    response = _post(client, b"[" * 100_000 + b"]" * 100_000)
    assert response.status_code == 400
    nested = [{"sg_event_id": "n1", "event": "open", "edition_id": json.loads(
        "[" * 50 + "]" * 50)}]
    assert _post(client, json.dumps(nested).encode()).status_code == 200


def test_an_unconfigured_webhook_is_absent_not_a_server_error(app) -> None:
    api = FastAPI()
    api.include_router(router)
    api.state.digest = app  # no DIGEST_SENDGRID_WEBHOOK_PUBLIC_KEY
    response = TestClient(api).post("/webhooks/sendgrid", content=b"[]")
    assert response.status_code == 404
    assert "DIGEST_SENDGRID_WEBHOOK_PUBLIC_KEY" in response.json()["detail"]
