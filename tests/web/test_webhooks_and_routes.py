"""Event Webhook verification and effects, and the admin delivery routes."""

from __future__ import annotations

import base64
import json
import time

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from digest.bootstrap import build
from digest.readers.events import SIGNATURE_HEADER, TIMESTAMP_HEADER
from digest.store import migrate as schema
from digest.store.models import Edition, Subscriber, SubscriberStatus, WebhookEvent
from digest.web.admin import router
from tests.conftest import make_settings
from tests.delivery_helpers import add_post, add_readers

KEY = ec.generate_private_key(ec.SECP256R1())
PUBLIC = base64.b64encode(KEY.public_key().public_bytes(
    serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)).decode()


@pytest.fixture
def web(tmp_path, transport):
    app = build(make_settings(tmp_path, sendgrid_webhook_public_key=PUBLIC), lambda: transport)
    schema.upgrade(app.engine)
    api = FastAPI()
    api.include_router(router)
    api.state.digest = app
    with TestClient(api) as client:
        yield app, client
    app.engine.dispose()


def _signed(events, *, ts: int | None = None, key=KEY) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(events).encode()
    stamp = str(ts if ts is not None else int(time.time()))
    sig = key.sign(stamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    return body, {SIGNATURE_HEADER: base64.b64encode(sig).decode(), TIMESTAMP_HEADER: stamp,
                  "Content-Type": "application/json"}


def _state(app):
    with app.sessions() as s:
        statuses = {sub.email: sub.status for sub in s.scalars(select(Subscriber))}
        edition = s.scalars(select(Edition)).first()
        seen = len(list(s.scalars(select(WebhookEvent.sg_event_id))))
    counts = (edition.delivered, edition.opens, edition.clicks) if edition else None
    return statuses, counts, seen


def _events(edition_id: int):
    return [
        {"sg_event_id": "e1", "event": "bounce", "email": "reader0@example.org", "type": "bounce"},
        {"sg_event_id": "e2", "event": "spamreport", "email": "x@y", "subscriber_id": "2"},
        {"sg_event_id": "e3", "event": "dropped", "email": "READER2@example.org",
         "reason": "Bounced Address"},
        {"sg_event_id": "e4", "event": "unsubscribe", "email": "reader3@example.org"},
        {"sg_event_id": "e5", "event": "delivered", "email": "reader4@example.org",
         "edition_id": str(edition_id)},
        {"sg_event_id": "e6", "event": "open", "edition_id": str(edition_id)},
        {"sg_event_id": "e7", "event": "click", "edition_id": str(edition_id)},
        {"sg_event_id": "e8", "event": "dropped", "email": "reader4@example.org",
         "reason": "Spam Content"},
    ]


def test_valid_webhook_is_applied_once_and_forgeries_change_nothing(web) -> None:
    app, client = web
    add_post(app)
    add_readers(app, 5)
    from digest.delivery.send import send_digest

    edition_id = send_digest(app).edition_id
    before = _state(app)
    body, headers = _signed(_events(edition_id))
    other = ec.generate_private_key(ec.SECP256R1())
    for bad_body, bad_headers in [
        _signed(_events(edition_id), key=other),                       # bad signature
        _signed(_events(edition_id), ts=int(time.time()) - 3600),      # stale timestamp
        (body + b" ", headers),                                        # body altered
        (body, {"Content-Type": "application/json"}),                  # unsigned
    ]:
        assert client.post("/webhooks/sendgrid", content=bad_body,
                           headers=bad_headers).status_code == 403
    assert _state(app) == before

    response = client.post("/webhooks/sendgrid", content=body, headers=headers)
    assert response.status_code == 200 and response.json()["applied"] == 8
    statuses, counts, seen = _state(app)
    assert statuses["reader0@example.org"] is SubscriberStatus.BOUNCED
    assert statuses["reader1@example.org"] is SubscriberStatus.COMPLAINED  # by subscriber id
    assert statuses["reader2@example.org"] is SubscriberStatus.BOUNCED
    assert statuses["reader3@example.org"] is SubscriberStatus.UNSUBSCRIBED
    assert statuses["reader4@example.org"] is SubscriberStatus.ACTIVE
    assert counts == (1, 1, 1) and seen == 8

    replay = client.post("/webhooks/sendgrid", content=body, headers=headers)
    assert replay.json() == {"applied": 0, "duplicates": 8, "skipped": 0}
    assert _state(app) == (statuses, counts, seen)


def test_admin_routes(web) -> None:
    app, client = web
    auth = {"Authorization": "Bearer test-admin-token"}
    assert client.get("/admin/stats").status_code == 401
    assert "Nothing new" in client.get("/admin/preview", headers=auth).text
    add_post(app, "Russia-West Negotiations Start")
    add_readers(app, 3)
    assert "Russia-West Negotiations Start" in client.get("/admin/preview", headers=auth).text
    queued = []
    app.dispatch = queued.extend  # the port a queued send goes through
    forced = client.post("/admin/send?force=true", headers=auth)
    assert forced.status_code == 400 and "force=true" in forced.json()["detail"]
    assert "--" not in forced.json()["detail"] and "/admin/resend" in forced.json()["detail"]
    sent = client.post("/admin/send", headers=auth)
    again = client.post("/admin/send", headers=auth)
    assert sent.status_code == 200 and sent.json()["status"] == "queued"
    assert sent.json()["posts"] == ["Russia-West Negotiations Start"]
    assert queued == [f"{sent.json()['edition_id']}-1"]
    assert again.status_code == 200  # nothing new: said so, nothing queued
    assert again.json()["status"] == "empty" and "nothing new" in again.json()["reason"]
    assert len(queued) == 1
    missing = client.post("/admin/resend?edition=99", headers=auth)
    assert missing.status_code == 404 and "GET /admin/stats" in missing.json()["detail"]
    busy = client.post(f"/admin/resend?edition={sent.json()['edition_id']}", headers=auth)
    assert busy.status_code == 400 and "still being sent" in busy.json()["detail"]
    assert "digest " not in busy.json()["detail"]
    report = client.get("/admin/stats", headers=auth).json()
    assert report["subscribers"] == {"active": 3}
    assert report["editions"][0]["pending"] == 1


def test_long_event_id_replay_is_a_duplicate(web) -> None:
    _app, client = web
    long_id = "x" * 150
    body, headers = _signed([{"sg_event_id": long_id, "event": "open", "edition_id": "1"}])
    assert client.post("/webhooks/sendgrid", content=body, headers=headers).json() == {
        "applied": 1, "duplicates": 0, "skipped": 0}
    replay = client.post("/webhooks/sendgrid", content=body, headers=headers)
    assert replay.status_code == 200
    assert replay.json() == {"applied": 0, "duplicates": 1, "skipped": 0}
