"""The complaint breaker: spam reports past the threshold pause a running send; it waits for
a resume, and after one it does not trip again on the complaints already seen. SQLite and
PostgreSQL; the webhook route runs the breaker after applying the events."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from digest.delivery.batch import send_batch
from digest.delivery.breaker import check_editions
from digest.delivery.pause import BREAKER_PREFIX, resume_edition
from digest.delivery.send import send_digest
from digest.readers.events import apply_events
from digest.store.models import Edition, Subscriber
from digest.store.sessions import transaction
from digest.web.admin import router
from tests.delivery_helpers import add_post, add_readers
from tests.webhook_signing import PUBLIC, signed_headers

READERS = 1000
SIZE = 100
_ids = itertools.count(1)


@pytest.fixture
def small(app):
    app.settings = app.settings.model_copy(update={"batch_size": SIZE,
                                                   "sendgrid_webhook_public_key": PUBLIC})
    return app


def _half_sent(app) -> tuple[int, list[str]]:
    """1000 readers in ten batches, the first five sent: 500 readers handed over."""
    add_post(app)
    add_readers(app, READERS)
    queued: list[str] = []
    edition_id = int(send_digest(app, queue=True, dispatch=queued.extend).edition_id)
    for batch_id in queued[:5]:
        assert send_batch(app, batch_id).status == "sent"
    return edition_id, queued


def _spam(app, edition_id: int, count: int) -> list[dict[str, object]]:
    """Spam reports from the next ``count`` readers who have not complained yet."""
    with app.sessions() as s:
        ids = s.scalars(select(Subscriber.id).where(Subscriber.status == "active")
                        .order_by(Subscriber.id).limit(count)).all()
    return [{"sg_event_id": f"spam-{next(_ids)}", "event": "spamreport",
             "email": f"reader{sid - 1}@example.org", "edition_id": str(edition_id),
             "subscriber_id": str(sid)} for sid in ids]


def _complain(app, edition_id: int, count: int) -> list[int]:
    with transaction(app.sessions) as s:
        report = apply_events(s, _spam(app, edition_id, count), address_key=app.address_key)
    assert report.complained == frozenset({edition_id})
    return check_editions(app, report.complained, now=datetime.now(UTC))


def _paused(app, edition_id: int) -> tuple[bool, str | None]:
    with app.sessions() as s:
        edition = s.get(Edition, edition_id)
        return edition.paused_at is not None, edition.pause_reason


def test_complaints_past_the_rate_pause_the_send(small, transport):
    edition_id, batches = _half_sent(small)
    assert _complain(small, edition_id, 1) == []  # 0.2% and below the minimum of 3
    assert _complain(small, edition_id, 1) == []  # 0.4%, still only 2 complaints
    assert _complain(small, edition_id, 1) == [edition_id]  # 3 of 500: 0.6%
    paused, reason = _paused(small, edition_id)
    assert paused
    assert reason == "complaints: 3 of 500 readers handed over (0.60%) passed 0.30%"
    assert reason.startswith(BREAKER_PREFIX)
    assert send_batch(small, batches[5]).status == "paused"
    assert len(transport.recipients) == 500
    assert _complain(small, edition_id, 1) == []  # already paused: the first reason stays
    assert _paused(small, edition_id)[1] == reason


def test_a_finished_edition_is_left_as_it_is(small, transport):
    edition_id, batches = _half_sent(small)
    for batch_id in batches[5:]:
        send_batch(small, batch_id)
    assert _complain(small, edition_id, 5) == []  # sent already: nothing to pause
    assert _paused(small, edition_id) == (False, None)


def test_below_the_threshold_it_keeps_sending(small, transport):
    edition_id, _ = _half_sent(small)
    small.settings = small.settings.model_copy(update={"complaint_breaker_rate": 0.01})
    assert _complain(small, edition_id, 4) == []  # 0.8% < 1%
    assert _complain(small, edition_id, 1) == []  # 1.0%, not past 1%
    assert _complain(small, edition_id, 1) == [edition_id]  # 1.2%


def test_rate_zero_turns_it_off(small, transport):
    edition_id, _ = _half_sent(small)
    small.settings = small.settings.model_copy(update={"complaint_breaker_rate": 0.0})
    assert _complain(small, edition_id, 50) == []
    assert _paused(small, edition_id) == (False, None)


def test_after_a_resume_it_trips_only_on_new_complaints(small, transport):
    edition_id, batches = _half_sent(small)
    assert _complain(small, edition_id, 4) == [edition_id]
    handed: list[str] = []
    assert resume_edition(small, edition_id, now=datetime.now(UTC),
                          dispatch=handed.extend) == 5
    assert handed == batches[5:]
    assert _paused(small, edition_id)[0] is False
    # The same four complaints, checked again (a webhook retry, the next event): no trip.
    assert check_editions(small, [edition_id], now=datetime.now(UTC)) == []
    assert _complain(small, edition_id, 2) == []  # 6 in all, 2 since the resume
    assert _complain(small, edition_id, 1) == [edition_id]  # 3 since the resume, 1.4%
    assert _paused(small, edition_id)[1] == ("complaints: 7 of 500 readers handed over "
                                             "(1.40%) passed 0.30%")


def test_the_webhook_runs_the_breaker(small, transport):
    edition_id, batches = _half_sent(small)
    api = FastAPI()
    api.include_router(router)
    api.state.digest = small
    delivered = {"sg_event_id": "d-1", "event": "delivered", "email": "reader9@example.org",
                 "edition_id": str(edition_id), "subscriber_id": "10"}
    events = [*_spam(small, edition_id, 3), delivered]
    body = json.dumps(events).encode()
    with TestClient(api) as client:
        answer = client.post("/webhooks/sendgrid", content=body, headers=signed_headers(body))
        assert answer.status_code == 200 and answer.json()["applied"] == 4
        paused, reason = _paused(small, edition_id)
        assert paused and reason.startswith("complaints: 3 of 500")
        stats = client.get("/admin/stats",
                           headers={"Authorization": "Bearer test-admin-token"}).json()
    shown = next(e for e in stats["editions"] if e["id"] == edition_id)
    assert shown["pause_reason"] == reason and shown["paused_at"] is not None
    assert send_batch(small, batches[5]).status == "paused"


def test_a_retried_webhook_still_runs_the_breaker(small, transport):
    """The events were applied but the check never ran (the process died): SendGrid posts
    them again, and the replay, applying nothing, still checks the edition."""
    edition_id, _ = _half_sent(small)
    events = _spam(small, edition_id, 3)
    with transaction(small.sessions) as s:
        apply_events(s, events, address_key=small.address_key)
    assert _paused(small, edition_id) == (False, None)
    api = FastAPI()
    api.include_router(router)
    api.state.digest = small
    body = json.dumps(events).encode()
    with TestClient(api) as client:
        answer = client.post("/webhooks/sendgrid", content=body, headers=signed_headers(body))
    assert answer.json()["duplicates"] == 3
    assert _paused(small, edition_id)[0] is True
