"""What the operator reads per edition in `digest stats` and `GET /admin/stats`."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from digest.delivery import record
from digest.delivery.send import send_digest
from digest.delivery.stats import stats
from digest.store.models import DeliveryStatus, Subscriber
from digest.store.sessions import transaction
from digest.web.admin import router
from tests.delivery_helpers import add_post, add_readers


class RefusesFirst:
    """An SMTP-like transport that refuses the first reader of each request, alone."""

    max_batch = 1000

    def __init__(self, transport) -> None:
        self.inner = transport

    def send_batch(self, mail, recipients):
        self.inner.send_batch(mail, recipients[1:])
        return [f"{recipients[0].email}: 550 5.1.1 no such user"]

    def close(self) -> None:
        pass


def _ids(app) -> dict[str, int]:
    with app.sessions() as s:
        return {str(e): int(i) for e, i in s.execute(select(Subscriber.email, Subscriber.id))}


def test_stats_count_each_edition_s_readers_by_outcome(app, transport) -> None:
    add_post(app)
    add_readers(app, 4)
    refusing = RefusesFirst(transport)
    app.transport = lambda: refusing  # type: ignore[method-assign]
    result = send_digest(app)
    assert result.status == "sent"
    ids = _ids(app)
    later = datetime.now(UTC)
    with transaction(app.sessions) as s:  # what the Event Webhook would report
        record.apply_event(s, result.edition_id, ids["reader1@example.org"],
                           DeliveryStatus.BOUNCED, later)
        record.apply_event(s, result.edition_id, ids["reader2@example.org"],
                           DeliveryStatus.DELIVERED, later)
        record.apply_event(s, result.edition_id, ids["reader3@example.org"],
                           DeliveryStatus.COMPLAINED, later)

    report = stats(app)
    edition = report.as_dict()["editions"][0]
    assert edition["readers"] == {
        "planned": 4, "handed_over": 3, "delivered": 2, "bounced": 1, "complained": 1,
        "failed": 1, "in_doubt": 0, "already_received": 0,
        "by_status": {"delivered": 1, "bounced": 1, "complained": 1, "refused": 1}}
    text = report.describe()
    assert "4 readers: 4 active" in text
    assert "1 batch (1 sent, 0 failed, 0 pending)" in text
    assert ("readers: 4 planned, 3 handed over, 2 delivered, 1 bounced, 1 complained, "
            "1 failed, 0 in doubt") in text
    assert "no such user" in text

    api = FastAPI()
    api.include_router(router)
    api.state.digest = app
    with TestClient(api) as client:
        shown = client.get("/admin/stats", headers={"Authorization": "Bearer test-admin-token"})
    assert shown.json()["editions"][0]["readers"] == edition["readers"]


def test_stats_say_which_readers_are_in_doubt(app, transport) -> None:
    from digest.store.models import Batch, BatchStatus

    in_doubt = BatchStatus.__members__.get("IN_DOUBT")
    if in_doubt is None:
        return  # the ledger has no in-doubt state yet: nothing to count
    add_post(app)
    add_readers(app, 5)
    queued: list[str] = []
    app.dispatch = queued.extend  # type: ignore[method-assign]
    result = send_digest(app, queue=True)
    ids = _ids(app)
    with transaction(app.sessions) as s:  # the worker died after the request went out
        s.get(Batch, queued[0]).status = in_doubt
        record.apply_event(s, result.edition_id, ids["reader0@example.org"],
                           DeliveryStatus.PROCESSED, datetime.now(UTC))
    readers = stats(app).editions[0].readers
    assert (readers.planned, readers.handed_over, readers.in_doubt) == (5, 1, 4)


def test_stats_count_readers_who_had_every_post_already(app) -> None:
    from digest.store.models import Cadence, Edition, EditionStatus

    with transaction(app.sessions) as s:
        edition = Edition(key="daily:2026-11-24", cadence=Cadence.DAILY,
                          status=EditionStatus.SENT, recipient_count=3)
        s.add(edition)
        s.flush()
        at = datetime.now(UTC)
        record.record_handed(s, edition.id, [1, 2], at)
        record.record_handed(s, edition.id, [3], at, DeliveryStatus.ALREADY_RECEIVED)
    readers = stats(app).editions[0].readers
    assert (readers.planned, readers.handed_over, readers.already_received) == (3, 2, 1)
    assert readers.describe().endswith("0 in doubt, 1 had every post already")


def test_stats_count_a_resent_reader_once(app, transport) -> None:
    from digest.delivery.resend import resend_edition

    add_post(app)
    add_readers(app, 3)
    refusing = RefusesFirst(transport)
    app.transport = lambda: refusing  # type: ignore[method-assign]
    first = send_digest(app)
    app.transport = lambda: transport  # type: ignore[method-assign]
    add_readers(app, 1, start=3)  # joined after the edition went out
    again = resend_edition(app, first.edition_id)
    assert again.recipients == 2  # the refused reader and the newcomer
    readers = stats(app).editions[0].readers
    assert (readers.planned, readers.handed_over) == (4, 4)
    assert "4 planned, 4 handed over" in stats(app).describe()


def test_stats_show_batches_in_doubt(app, transport) -> None:
    from digest.store.models import Batch, BatchStatus

    add_post(app)
    add_readers(app, 3)
    queued: list[str] = []
    app.dispatch = queued.extend  # type: ignore[method-assign]
    send_digest(app, queue=True)
    with transaction(app.sessions) as s:  # the worker died after the request went out
        s.get(Batch, queued[0]).status = BatchStatus.IN_DOUBT
    report = stats(app)
    (shown,) = report.editions
    assert (shown.batches, shown.sent, shown.failed, shown.pending, shown.in_doubt) == (
        1, 0, 0, 0, 1)
    assert "1 batch (0 sent, 0 failed, 0 pending, 1 in doubt)" in report.describe()
