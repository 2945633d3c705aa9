"""Readers' own delivery hours, on an injected clock: beat's release tick runs every five
minutes through weeks that cross daylight-saving changes, and every reader gets each weekly
digest once, at their own local hour. SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, update

from digest.bootstrap import build
from digest.delivery.batch import send_batch
from digest.delivery.ledger import claim_batch
from digest.delivery.pause import pause_edition, resume_edition
from digest.delivery.resend import resend_edition
from digest.delivery.scheduled import RELEASE_INTERVAL, run_tick
from digest.delivery.send import send_digest
from digest.mail.message import OutgoingMail, Recipient
from digest.mail.transports.memory import MemoryTransport
from digest.runtime import App
from digest.slots import Slot, set_slot
from digest.store import migrate as schema
from digest.store.models import Batch, Cadence, Delivery, DeliveryStatus, Subscriber
from digest.store.sessions import transaction
from tests.conftest import _no_sleep, _truncate, make_settings
from tests.delivery_helpers import add_post, add_readers

# Reader -> (zone, local hour) for a Monday digest; the operator is in Europe/London.
READERS = {
    "reader0@example.org": ("Asia/Tokyo", 8),
    "reader1@example.org": ("Europe/Istanbul", 9),
    "reader2@example.org": ("America/Los_Angeles", 7),
    "reader3@example.org": (None, None),  # the operator's own: SCHEDULE in Europe/London
}


@dataclass
class Clock:
    now: datetime


class ClockedTransport(MemoryTransport):
    """Remembers when (on the test's clock) each reader was handed which edition."""

    def __init__(self, clock: Clock) -> None:
        super().__init__()
        self.clock = clock
        self.handed: list[tuple[datetime, str, str]] = []

    def send_batch(self, mail: OutgoingMail, recipients: list[Recipient]) -> None:  # type: ignore[override]
        super().send_batch(mail, recipients)
        edition = str(mail.custom_args.get("edition_id"))
        self.handed.extend((self.clock.now, str(r.email), edition) for r in recipients)


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime(2027, 1, 1, tzinfo=UTC))


@pytest.fixture
def clocked(db_url: str, tmp_path: Path, clock: Clock) -> Iterator[tuple[App, ClockedTransport]]:
    transport = ClockedTransport(clock)
    settings = make_settings(tmp_path, database_url=db_url, timezone="Europe/London",
                             schedule="0 8 * * mon")
    app = build(settings, lambda: transport, sleep=_no_sleep)
    schema.upgrade(app.engine)
    if app.engine.dialect.name == "postgresql":
        _truncate(app)
    yield app, transport
    app.engine.dispose()


def _choose(app: App, email: str, zone: str | None, hour: int | None, now: datetime) -> None:
    with transaction(app.sessions) as s:
        reader = s.scalars(select(Subscriber).where(Subscriber.email == email)).one()
        set_slot(reader, Slot(zone, None, hour), now)


def _busy(at: datetime) -> bool:
    """From Sunday noon to Monday 18:00 UTC: every weekly reader's Monday hour falls in here
    (daily readers' tests tick every five minutes throughout)."""
    return (at.weekday() == 6 and at.hour >= 12) or (at.weekday() == 0 and at.hour < 18)


def _ticks(start: datetime, end: datetime) -> Iterator[datetime]:
    """Beat's ticks: every five minutes while some reader's hour is near, else hourly (a
    release at a wrong hour would still be seen)."""
    at = start
    while at < end:
        yield at
        at += RELEASE_INTERVAL if _busy(at) or _busy(at + timedelta(hours=1)) else (
            timedelta(hours=1) - timedelta(minutes=at.minute))


def _run(app: App, clock: Clock, start: datetime, weeks: int) -> None:
    """Tick for ``weeks`` weeks and a day; a post appears each Thursday noon UTC."""
    posts = [start + timedelta(days=3 + 7 * w, hours=12) for w in range(weeks)]
    for now in _ticks(start, start + timedelta(weeks=weeks, days=1)):
        clock.now = now
        while posts and posts[0] <= now:
            add_post(app, title=f"Post of {posts[0]:%Y-%m-%d}", first_seen=posts.pop(0))
        run_tick(app, now)


@pytest.mark.parametrize("start, changes", [
    # 14 March 2027: Los Angeles moves to PDT; 28 March: London to BST.
    (datetime(2027, 3, 1, 12, tzinfo=UTC), "spring"),
    # 31 October 2027: London back to GMT; 7 November: Los Angeles to PST.
    (datetime(2027, 10, 25, 12, tzinfo=UTC), "autumn"),
])
def test_each_reader_gets_each_weekly_digest_once_at_their_local_hour(
        clocked, clock: Clock, start: datetime, changes: str) -> None:
    app, transport = clocked
    add_readers(app, len(READERS))
    for email, (zone, hour) in READERS.items():
        _choose(app, email, zone, hour, start - timedelta(days=30))
    weeks = 5
    _run(app, clock, start, weeks)

    for email, (zone, hour) in READERS.items():
        times = sorted(at for at, who, _ in transport.handed if who == email)
        local = [at.astimezone(ZoneInfo(zone or "Europe/London")) for at in times]
        # One digest a week: each Monday after a Thursday's post.
        assert len(times) == weeks, (email, local)
        for at in local:
            assert (at.weekday(), at.hour, at.minute) == (0, hour or 8, 0), (email, local)
    # Each edition reached each reader once, whatever the clocks did.
    pairs = [(who, edition) for _, who, edition in transport.handed]
    assert len(pairs) == len(set(pairs)) == weeks * len(READERS)


def test_the_edition_starts_with_the_earliest_reader_and_is_claimed_once(clocked,
                                                                          clock: Clock) -> None:
    app, transport = clocked
    add_readers(app, len(READERS))
    monday = datetime(2027, 3, 1, tzinfo=UTC)
    for email, (zone, hour) in READERS.items():
        _choose(app, email, zone, hour, monday - timedelta(days=30))
    add_post(app, first_seen=monday - timedelta(days=2))
    for now in _ticks(monday - timedelta(hours=12), monday + timedelta(hours=18)):
        clock.now = now
        run_tick(app, now)
    editions = {edition for _, _, edition in transport.handed}
    assert len(editions) == 1  # one claim, one rendering, four hours
    tokyo = [at for at, who, _ in transport.handed if who == "reader0@example.org"]
    # 08:00 in Tokyo on Monday is 23:00 UTC on Sunday, before the operator's Monday begins.
    assert tokyo == [datetime(2027, 2, 28, 23, 0, tzinfo=UTC)]
    with app.sessions() as s:
        slots = {(b.slot, b.release_at) for b in s.scalars(select(Batch))}
    assert len(slots) == len(READERS)


def test_a_reader_who_changes_their_hour_after_their_batch_went_out_gets_no_second_copy(
        clocked, clock: Clock) -> None:
    app, transport = clocked
    add_readers(app, 3)
    monday = datetime(2027, 3, 1, tzinfo=UTC)
    before = monday - timedelta(days=30)
    _choose(app, "reader0@example.org", "Asia/Tokyo", 8, before)
    _choose(app, "reader1@example.org", "Asia/Tokyo", 20, before)  # the evening batch exists
    _choose(app, "reader2@example.org", "Asia/Tokyo", 20, before)
    add_post(app, first_seen=monday - timedelta(days=2))
    morning = datetime(2027, 2, 28, 23, 0, tzinfo=UTC)  # Monday 08:00 in Tokyo
    for now in _ticks(morning - timedelta(hours=1), morning + timedelta(minutes=30)):
        clock.now = now
        run_tick(app, now)
    assert [who for _, who, _ in transport.handed] == ["reader0@example.org"]
    # Reader 0 now wants the evening; reader 2 wants the morning, which has passed today.
    _choose(app, "reader0@example.org", "Asia/Tokyo", 20, morning + timedelta(hours=1))
    _choose(app, "reader2@example.org", "Asia/Tokyo", 8, morning + timedelta(hours=1))
    for now in _ticks(morning + timedelta(minutes=30), morning + timedelta(days=1)):
        clock.now = now
        run_tick(app, now)
    handed = [(at, who) for at, who, _ in transport.handed]
    evening = morning + timedelta(hours=12)
    # Nobody twice; reader 2 still gets this week's at the hour it was planned for.
    assert sorted(handed) == [(morning, "reader0@example.org"), (evening, "reader1@example.org"),
                              (evening, "reader2@example.org")]
    # From the next edition on, the new hours hold.
    add_post(app, first_seen=monday + timedelta(days=3))
    for now in _ticks(monday + timedelta(days=6), monday + timedelta(days=8)):
        clock.now = now
        run_tick(app, now)
    nxt = sorted((at, who) for at, who, _ in transport.handed[3:])
    assert nxt == [(morning + timedelta(days=7), "reader2@example.org"),
                   (evening + timedelta(days=7), "reader0@example.org"),
                   (evening + timedelta(days=7), "reader1@example.org")]


def test_daily_readers_get_one_digest_a_day_at_their_hour_across_a_dst_change(
        clocked, clock: Clock) -> None:
    app, transport = clocked
    add_readers(app, 3, cadence=Cadence.DAILY)
    for email, zone, hour in (("reader0@example.org", "America/Los_Angeles", 7),
                              ("reader1@example.org", "Asia/Tokyo", 21),
                              ("reader2@example.org", None, None)):  # London, 08:00
        _choose(app, email, zone, hour, datetime(2027, 1, 1, tzinfo=UTC))
    start = datetime(2027, 3, 12, tzinfo=UTC)  # LA springs forward on Sunday 14 March
    days = 4
    for now in _ticks(start, start + timedelta(days=days)):
        clock.now = now
        if now.minute == 0 and now.hour == 0:  # a post each midnight UTC
            add_post(app, title=f"Post of {now:%Y-%m-%d}", first_seen=now)
        run_tick(app, now)
    expected = {"reader0@example.org": ("America/Los_Angeles", 7),
                "reader1@example.org": ("Asia/Tokyo", 21),
                "reader2@example.org": ("Europe/London", 8)}
    for email, (zone, hour) in expected.items():
        local = sorted(at.astimezone(ZoneInfo(zone)) for at, who, _ in transport.handed
                       if who == email)
        assert [(at.hour, at.minute) for at in local] == [(hour, 0)] * len(local), local
        days_seen = [at.date() for at in local]
        assert len(days_seen) == len(set(days_seen)) >= days - 1, local  # one a day, no gap
        assert all((b - a).days == 1 for a, b in pairwise(days_seen))
    pairs = [(who, edition) for _, who, edition in transport.handed]
    assert len(pairs) == len(set(pairs))


def test_a_resumed_edition_queues_only_the_batches_whose_hour_has_come(clocked,
                                                                        clock: Clock) -> None:
    app, _transport = clocked
    add_readers(app, 2)
    before = datetime(2027, 1, 1, tzinfo=UTC)
    _choose(app, "reader0@example.org", "Asia/Tokyo", 8, before)
    _choose(app, "reader1@example.org", "America/Los_Angeles", 7, before)
    add_post(app, first_seen=datetime(2027, 2, 26, tzinfo=UTC))
    tokyo = datetime(2027, 2, 28, 23, 0, tzinfo=UTC)
    queued: list[str] = []
    report = run_tick(app, tokyo, dispatch=queued.extend)  # claimed; Tokyo's batch queued
    (edition_id,) = {r.edition_id for r in report.claimed}
    assert len(queued) == 1
    assert pause_edition(app, edition_id, reason="checking a link", now=tokyo)
    resumed: list[str] = []
    assert resume_edition(app, edition_id, now=tokyo + timedelta(hours=1),
                          dispatch=resumed.extend) == 1
    assert resumed == queued  # Los Angeles' batch still waits for 07:00 there
    assert run_tick(app, tokyo + timedelta(hours=2), dispatch=resumed.extend).released == []
    los_angeles = datetime(2027, 3, 1, 15, 0, tzinfo=UTC)
    late = run_tick(app, los_angeles, dispatch=resumed.extend).released
    assert len(late) == 1 and late != queued


def test_a_claim_that_fails_does_not_hold_back_the_releases(clocked, clock: Clock,
                                                             monkeypatch) -> None:
    app, transport = clocked
    add_readers(app, 2)
    before = datetime(2027, 1, 1, tzinfo=UTC)
    _choose(app, "reader0@example.org", "Asia/Tokyo", 8, before)
    _choose(app, "reader1@example.org", "America/Los_Angeles", 7, before)
    add_post(app, first_seen=datetime(2027, 2, 26, tzinfo=UTC))
    run_tick(app, datetime(2027, 2, 28, 23, 0, tzinfo=UTC))  # claimed; Tokyo's batch sent

    def broken() -> None:
        raise RuntimeError("the template is broken")

    add_readers(app, 1, start=2, cadence=Cadence.DAILY)  # a daily claim is due and fails
    _choose(app, "reader2@example.org", None, 15, before)  # 15:00 in London: now
    calls: list[str] = []
    monkeypatch.setattr("digest.delivery.scheduled.send_digest",
                        lambda *a, **k: calls.append("claim") or broken())
    los_angeles = datetime(2027, 3, 1, 15, 0, tzinfo=UTC)
    clock.now = los_angeles
    report = run_tick(app, los_angeles)
    assert calls == ["claim"]  # the daily period was due, and its claim failed
    assert report.claimed == [] and len(report.released) == 1
    assert sorted(transport.recipients) == ["reader0@example.org", "reader1@example.org"]


def test_batches_handed_over_at_once_are_not_released_again_by_the_tick(clocked,
                                                                        clock: Clock) -> None:
    app, _transport = clocked
    add_readers(app, 3)
    add_post(app, first_seen=datetime(2027, 2, 26, tzinfo=UTC))
    monday = datetime(2027, 3, 1, 8, 0, tzinfo=UTC)  # 08:00 in London
    queued: list[str] = []
    sent = send_digest(app, queue=True, dispatch=queued.extend, now=monday)
    assert len(queued) == 1 and sent.edition_id is not None
    assert run_tick(app, monday + timedelta(minutes=5), dispatch=queued.extend).released == []
    for batch_id in queued:  # the workers send it, and one reader's copy bounces
        send_batch(app, batch_id, now=monday + timedelta(minutes=5))
    with transaction(app.sessions) as s:
        s.execute(update(Delivery).where(Delivery.subscriber_id == 1)
                  .values(status=int(DeliveryStatus.FAILED)))
    resent: list[str] = []
    resend_edition(app, sent.edition_id, queue=True, dispatch=resent.extend)
    assert len(resent) == 1
    later = run_tick(app, monday + timedelta(minutes=10), dispatch=resent.extend).released
    assert later == [] and len(resent) == 1  # handed over once, by the resend


def test_a_reader_who_changes_their_hour_twice_still_gets_each_edition_once(
        clocked, clock: Clock) -> None:
    app, transport = clocked
    add_readers(app, 2, cadence=Cadence.DAILY)
    monday = datetime(2027, 3, 1, tzinfo=UTC)
    _choose(app, "reader1@example.org", None, 18, monday + timedelta(hours=9))  # signs up
    add_post(app, first_seen=monday + timedelta(hours=20))
    tuesday = monday + timedelta(days=1)
    for now in _ticks(tuesday + timedelta(hours=7), tuesday + timedelta(hours=9)):
        clock.now = now
        run_tick(app, now)  # Tuesday's edition is claimed at 08:00, reader 1 planned at 18:00
    _choose(app, "reader1@example.org", None, 20, tuesday + timedelta(hours=12))  # and again
    for now in _ticks(tuesday + timedelta(hours=9), tuesday + timedelta(hours=23)):
        clock.now = now
        run_tick(app, now)
    handed = sorted((at, who) for at, who, _ in transport.handed)
    assert handed == [(tuesday + timedelta(hours=8), "reader0@example.org"),
                      (tuesday + timedelta(hours=18), "reader1@example.org")]


def test_a_released_batch_is_claimed_by_a_worker_whose_clock_is_a_little_behind(
        clocked, clock: Clock) -> None:
    app, _transport = clocked
    add_readers(app, 1)
    _choose(app, "reader0@example.org", "Asia/Tokyo", 8, datetime(2027, 1, 1, tzinfo=UTC))
    add_post(app, first_seen=datetime(2027, 2, 26, tzinfo=UTC))
    tokyo = datetime(2027, 2, 28, 23, 0, tzinfo=UTC)
    queued: list[str] = []
    run_tick(app, tokyo, dispatch=queued.extend)
    assert len(queued) == 1
    # The tick released it at 23:00:00 by its clock; the worker's reads 22:59:57.
    assert claim_batch(app, queued[0], tokyo - timedelta(seconds=3))
