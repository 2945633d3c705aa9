"""Provider events move each reader's delivery row; the welcome mail's digest is recorded.

Runs on SQLite and PostgreSQL, through the signed webhook endpoint as SendGrid calls it.
"""

from __future__ import annotations

import json

from fastapi.testclient import TestClient
from sqlalchemy import select, update

from digest.delivery.batch import outgoing_mail
from digest.delivery.send import send_digest
from digest.mail.personalize import RecipientFactory
from digest.mail.transports.sendgrid import request_body
from digest.readers.optin import send_welcome
from digest.store.models import (
    Cadence,
    Delivery,
    DeliveryStatus,
    Edition,
    Subscriber,
    SubscriberStatus,
)
from digest.store.sessions import transaction
from tests.delivery_helpers import add_post, add_readers
from tests.webhook_signing import signed_headers


def _post(client: TestClient, events: list[dict]) -> None:
    body = json.dumps(events).encode()
    response = client.post("/webhooks/sendgrid", content=body, headers=signed_headers(body))
    assert response.status_code == 200, response.text


def _row(app, edition_id: int, subscriber_id: int) -> tuple[DeliveryStatus, str | None] | None:
    with app.sessions() as s:
        row = s.get(Delivery, (edition_id, subscriber_id))
        return None if row is None else (DeliveryStatus(row.status), row.message_id)


def _event(n: int, kind: str, edition_id: int, subscriber_id: int, **extra) -> dict:
    return {"sg_event_id": f"e{n}", "event": kind,
            "email": f"reader{subscriber_id - 1}@example.org",
            "edition_id": str(edition_id), "subscriber_id": str(subscriber_id),
            "sg_message_id": f"msg-{subscriber_id}.filter", **extra}


def test_events_move_rows_forward_and_never_back(app, client) -> None:
    add_post(app)
    add_readers(app, 3)
    edition_id = send_digest(app).edition_id
    assert _row(app, edition_id, 1) == (DeliveryStatus.HANDED, None)

    _post(client, [_event(1, "processed", edition_id, 1)])
    assert _row(app, edition_id, 1) == (DeliveryStatus.PROCESSED, "msg-1.filter")
    _post(client, [_event(2, "delivered", edition_id, 1), _event(3, "deferred", edition_id, 2)])
    assert _row(app, edition_id, 1) == (DeliveryStatus.DELIVERED, "msg-1.filter")
    assert _row(app, edition_id, 2) == (DeliveryStatus.DEFERRED, "msg-2.filter")
    _post(client, [_event(4, "processed", edition_id, 1)])  # late: changes nothing
    assert _row(app, edition_id, 1) == (DeliveryStatus.DELIVERED, "msg-1.filter")

    _post(client, [_event(5, "spamreport", edition_id, 3)])
    assert _row(app, edition_id, 3) == (DeliveryStatus.COMPLAINED, "msg-3.filter")
    _post(client, [_event(6, "bounce", edition_id, 2, type="bounce", reason="550 gone")])
    assert _row(app, edition_id, 2) == (DeliveryStatus.BOUNCED, "msg-2.filter")
    with app.sessions() as s:  # the reader-level suppression still happens too
        status = {int(i): st for i, st in s.execute(select(Subscriber.id, Subscriber.status))}
        assert s.get(Edition, edition_id).delivered == 1
    assert status == {1: SubscriberStatus.ACTIVE, 2: SubscriberStatus.BOUNCED,
                      3: SubscriberStatus.COMPLAINED}


def test_events_for_an_unknown_edition_or_reader_move_nothing_else(app, client) -> None:
    add_post(app)
    add_readers(app, 2)
    edition_id = send_digest(app).edition_id
    _post(client, [
        _event(1, "processed", edition_id + 100, 1),  # no such edition
        {"sg_event_id": "e2", "event": "delivered", "edition_id": str(edition_id)},  # no reader
        _event(3, "spamreport", edition_id, 2),
    ])
    with app.sessions() as s:
        assert s.scalars(select(Delivery.edition_id).distinct()).all() == [edition_id]
    assert _row(app, edition_id, 1) == (DeliveryStatus.HANDED, None)
    assert _row(app, edition_id, 2) == (DeliveryStatus.COMPLAINED, "msg-2.filter")


def test_every_sendgrid_personalization_names_its_edition_and_reader(app) -> None:
    add_post(app)
    add_readers(app, 2)
    edition_id = send_digest(app).edition_id
    with app.sessions() as s:
        edition = s.get(Edition, edition_id)
        mail = outgoing_mail(app.settings, edition, f"{edition_id}-1")
    make = RecipientFactory(app.settings)
    body = request_body(mail, [make(7, "a@example.org", None, "k"),
                               make(8, "b@example.org", None, "k")])
    assert [p["custom_args"] for p in body["personalizations"]] == [
        {"kind": "digest", "edition_id": str(edition_id), "batch_id": f"{edition_id}-1",
         "subscriber_id": sid} for sid in ("7", "8")]


def test_the_welcome_mails_digest_is_not_sent_again(app, transport) -> None:
    add_post(app, "Alpha talks open")
    add_readers(app, 1)  # reader0, weekly
    weekly = send_digest(app, cadence=Cadence.WEEKLY).edition_id
    add_readers(app, 1, start=1, cadence=Cadence.DAILY)  # reader1 confirms and is welcomed
    assert send_welcome(app, 2)
    assert _row(app, weekly, 2) == (DeliveryStatus.HANDED, None)
    transport.sent.clear()
    with transaction(app.sessions) as s:  # a second daily reader, never welcomed
        s.execute(update(Subscriber).where(Subscriber.id == 1).values(cadence=Cadence.DAILY))
    add_readers(app, 1, start=2, cadence=Cadence.DAILY)

    send_digest(app, cadence=Cadence.DAILY)
    # reader0 had it in the weekly digest, reader1 in the welcome mail: only reader2 gets it
    assert transport.recipients == ["reader2@example.org"]
