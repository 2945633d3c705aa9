"""The operator hears once per episode, by mail to DIGEST_OPERATOR_EMAIL, when something needs
a person: a feed failing for a day, an edition with failed batches, beat silent for two hours,
batches in doubt for an hour, the complaint breaker tripped. Each mail says what to do.

Time is injected; feeds fail for real (a local feed server answering 500), beat's heartbeat is
the one in the test Redis, and the mail goes through the app's transport. Every test runs on
SQLite and on PostgreSQL; two runners checking at once are tested on PostgreSQL.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis

from digest.bootstrap import build
from digest.config import SAMPLE_FEED
from digest.delivery.alerts import check_alerts, open_alerts
from digest.delivery.heartbeat import HEARTBEAT_KEY, record_tick
from digest.delivery.send import send_digest
from digest.errors import PermanentDeliveryError, TransientDeliveryError
from digest.feeds.poll import poll_feeds
from digest.mail.message import OutgoingMail
from digest.mail.transports.memory import MemoryTransport
from digest.runtime import App
from digest.store import migrate as schema
from digest.store.models import Batch, BatchStatus, Cadence, Edition, EditionStatus
from digest.store.sessions import transaction
from tests.conftest import _truncate, make_settings
from tests.delivery_helpers import add_post, add_readers
from tests.feedserver import FeedServer, Route

pytestmark = pytest.mark.redis
OPERATOR = "ops@example.org"
T0 = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)


@pytest.fixture
def ops(app: App, redis_url: str) -> Iterator[App]:
    """The ``app`` fixture with an operator to mail, and beat's heartbeat cleared."""
    app.settings = app.settings.model_copy(update={"operator_email": OPERATOR})
    client = redis.Redis.from_url(app.settings.rate_limit_url)
    client.delete(HEARTBEAT_KEY)
    yield app
    client.delete(HEARTBEAT_KEY)
    client.close()


def _alerts(transport: MemoryTransport) -> list[OutgoingMail]:
    """The mails that went to the operator."""
    return [mail for mail, to in transport.sent if [r.email for r in to] == [OPERATOR]]


def _check(app: App, now: datetime) -> list[str]:
    """One check with beat alive (its heartbeat just written), as beat's task runs it."""
    record_tick(app, now=now)
    return check_alerts(app, now)


def test_a_failing_feed_produces_one_alert_mail_per_failure_episode(ops, transport) -> None:
    with FeedServer() as server:
        server.routes["/feed/"] = Route(status=500)
        url = server.url("/feed/")
        ops.settings = ops.settings.model_copy(update={"feed_url": [url]})
        now = T0
        for half in range(2 * 30):  # 30 hours: an hourly poll, a check every half hour
            now = T0 + timedelta(minutes=30 * half)
            if half % 2 == 0:
                assert poll_feeds(ops, now=now)[0].outcome in ("failed", "skipped")
            _check(ops, now)
            if now < T0 + timedelta(hours=24):
                assert _alerts(transport) == [], f"mailed too early, at {now}"
        mails = _alerts(transport)
        assert len(mails) == 1, [m.subject for m in mails]
        assert url in mails[0].subject and "failing for over a day" in mails[0].subject
        assert "500" in mails[0].text and "digest poll --force" in mails[0].text
        assert "digest feeds list" in mails[0].text
        assert [a.key for a in open_alerts(ops)] == ["feed:1"]

        server.routes["/feed/"] = Route(body=SAMPLE_FEED.read_bytes())  # it recovers
        now += timedelta(hours=1)
        assert poll_feeds(ops, now=now, force=True)[0].outcome == "new"
        _check(ops, now)
        assert open_alerts(ops) == [] and len(_alerts(transport)) == 1

        server.routes["/feed/"] = Route(status=500)  # and fails again, another episode
        start = now + timedelta(hours=1)
        for hour in range(26):
            now = start + timedelta(hours=hour)
            poll_feeds(ops, now=now)
            _check(ops, now)
    assert len(_alerts(transport)) == 2


def test_a_feed_failing_for_an_hour_is_never_mailed(ops, transport) -> None:
    with FeedServer() as server:
        server.routes["/feed/"] = Route(status=503)
        ops.settings = ops.settings.model_copy(update={"feed_url": [server.url("/feed/")]})
        poll_feeds(ops, now=T0)
        _check(ops, T0)
        assert [a.notified_at for a in open_alerts(ops)] == [None]  # watched, not told
        server.routes["/feed/"] = Route(body=SAMPLE_FEED.read_bytes())
        poll_feeds(ops, now=T0 + timedelta(hours=1), force=True)
        for hour in range(1, 30):
            _check(ops, T0 + timedelta(hours=hour))
    assert _alerts(transport) == [] and open_alerts(ops) == []


def test_an_edition_with_failed_batches_is_mailed_once_with_what_to_do(ops, transport) -> None:
    add_post(ops)
    add_readers(ops, 3)
    transport.fail_with = [PermanentDeliveryError("SendGrid 401 Unauthorized: bad key", 401)]
    result = send_digest(ops)
    with ops.sessions() as s:
        edition = s.get(Edition, result.edition_id)
        assert edition.reason == "1 of 1 batches failed"
    now = datetime.now(UTC)
    told = _check(ops, now)
    _check(ops, now + timedelta(minutes=5))
    mails = _alerts(transport)
    assert len(mails) == 1 and told == [mails[0].subject.split("] ", 1)[1]]
    assert "1 of 1 batches failed" in mails[0].subject
    assert f"digest resend {result.edition_id}" in mails[0].text
    assert "SENDGRID_API_KEY" in mails[0].text and "401" in mails[0].text


def test_beat_silent_for_two_hours_is_mailed_once_per_silence(ops, transport) -> None:
    record_tick(ops, now=T0)
    check_alerts(ops, T0 + timedelta(hours=1, minutes=55))
    assert _alerts(transport) == []
    for minutes in (125, 130, 180):
        check_alerts(ops, T0 + timedelta(minutes=minutes))
    mails = _alerts(transport)
    assert len(mails) == 1 and "beat has been silent" in mails[0].subject
    assert "celery -A worker beat" in mails[0].text and "08:00 UTC" in mails[0].text

    back = T0 + timedelta(hours=4)
    _check(ops, back)  # beat is back: the episode closes
    assert open_alerts(ops) == []
    record_tick(ops, now=back)
    check_alerts(ops, back + timedelta(hours=3))  # and falls silent again
    assert len(_alerts(transport)) == 2


def test_beat_never_seen_is_mailed_only_after_two_hours(ops, transport) -> None:
    for minutes in range(0, 120, 30):
        check_alerts(ops, T0 + timedelta(minutes=minutes))
    assert _alerts(transport) == []
    check_alerts(ops, T0 + timedelta(minutes=125))
    assert len(_alerts(transport)) == 1


def _edition(app: App, key: str = f"weekly:{T0:%Y-%m-%d}", **values: object) -> int:
    with transaction(app.sessions) as s:
        edition = Edition(key=key, cadence=Cadence.WEEKLY,
                          status=EditionStatus.SENDING, subject="Russia-West Talks", **values)
        s.add(edition)
        s.flush()
        return edition.id


def test_batches_in_doubt_for_over_an_hour_are_mailed(ops, transport) -> None:
    edition_id = _edition(ops)
    with transaction(ops.sessions) as s:
        s.add_all([Batch(id=f"{edition_id}-{n}", edition_id=edition_id, seq=n, after_id=n * 10,
                         upto_id=n * 10 + 10, size=10, status=BatchStatus.IN_DOUBT,
                         claimed_at=T0) for n in (1, 2)])
    _check(ops, T0 + timedelta(minutes=59))
    assert _alerts(transport) == []
    _check(ops, T0 + timedelta(minutes=61))
    _check(ops, T0 + timedelta(minutes=66))
    mails = _alerts(transport)
    assert len(mails) == 1 and "2 batch(es) in doubt" in mails[0].subject
    assert "/webhooks/sendgrid" in mails[0].text and "DIGEST_SENDGRID_WEBHOOK_PUBLIC_KEY" in \
        mails[0].text


def test_the_complaint_breaker_is_mailed_and_an_operator_pause_is_not(ops, transport) -> None:
    tripped = _edition(ops, paused_at=T0, pause_reason="complaints: 9 of 2000 readers "
                                                       "handed over (0.45%) complained")
    with transaction(ops.sessions) as s:
        s.add(Edition(key="daily:2026-12-01", cadence=Cadence.DAILY,
                      status=EditionStatus.SENDING, paused_at=T0, pause_reason="operator"))
    _check(ops, T0 + timedelta(minutes=1))
    _check(ops, T0 + timedelta(minutes=6))
    mails = _alerts(transport)
    assert len(mails) == 1 and "spam complaints" in mails[0].subject
    assert f"digest resume {tripped}" in mails[0].text and "0.45%" in mails[0].text


def test_without_an_operator_address_alerts_are_logged_once(ops, transport, caplog) -> None:
    ops.settings = ops.settings.model_copy(update={"operator_email": None})
    _edition(ops, paused_at=T0, pause_reason="complaints: too many")
    with caplog.at_level(logging.WARNING, logger="digest.delivery.alerts"):
        _check(ops, T0)
        _check(ops, T0 + timedelta(minutes=5))
    logged = [r for r in caplog.records if "spam complaints" in r.getMessage()]
    assert len(logged) == 1 and "digest resume" in logged[0].getMessage()
    assert transport.sent == []


def test_a_mail_that_fails_is_tried_again_at_the_next_check(ops, transport) -> None:
    _edition(ops, paused_at=T0, pause_reason="complaints: too many")
    transport.fail_with = [TransientDeliveryError("SendGrid 503", 503)]
    assert _check(ops, T0) == []
    assert [a.notified_at for a in open_alerts(ops)] == [None]
    assert len(_check(ops, T0 + timedelta(minutes=5))) == 1
    assert len(_alerts(transport)) == 1


@pytest.fixture
def pg_ops(pg_database: str, redis_url: str, tmp_path: Path,
           transport: MemoryTransport) -> Iterator[App]:
    built = build(make_settings(tmp_path, database_url=pg_database, operator_email=OPERATOR),
                  lambda: transport)
    schema.upgrade(built.engine)
    _truncate(built)
    yield built
    built.engine.dispose()


def test_two_runners_at_once_mail_each_episode_exactly_once(pg_ops, transport) -> None:
    """Beat's task and the web process may check at the same moment (PostgreSQL)."""
    record_tick(pg_ops, now=T0)
    for round_ in range(8):
        _edition(pg_ops, key=f"weekly:manual:{round_}", paused_at=T0,
                 pause_reason="complaints: too many")
        start = threading.Barrier(3)
        told: list[list[str]] = []

        def run() -> None:
            start.wait()
            told.append(check_alerts(pg_ops, T0 + timedelta(minutes=1)))

        threads = [threading.Thread(target=run) for _ in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert sum(len(t) for t in told) == 1, told
    assert len(_alerts(transport)) == 8


def test_the_web_process_checks_too_when_asked(ops, transport) -> None:
    """`digest serve` checks every five minutes in its own thread: a dead beat cannot report."""
    from fastapi.testclient import TestClient

    from digest.web.app import create_app

    _edition(ops, paused_at=datetime.now(UTC), pause_reason="complaints: too many")
    record_tick(ops, now=datetime.now(UTC))
    with TestClient(create_app(ops, limiter=None)):
        pass
    assert _alerts(transport) == []  # off unless asked (tests, embedded uses)
    with TestClient(create_app(ops, watch_alerts=True)):
        deadline = datetime.now(UTC) + timedelta(seconds=10)
        while not _alerts(transport) and datetime.now(UTC) < deadline:
            threading.Event().wait(0.05)
    assert len(_alerts(transport)) == 1
