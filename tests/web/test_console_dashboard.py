"""The dashboard's figures (service, on SQLite and PostgreSQL) and the page that shows them."""

from __future__ import annotations

import hashlib
import re
import threading
from datetime import UTC, datetime, timedelta

from digest.bootstrap import build
from digest.delivery.dashboard import dashboard, edition_outcomes
from digest.readers.census import census, reader_weeks, week_starts
from digest.store import migrate as schema
from digest.store.models import (
    Batch,
    BatchStatus,
    Cadence,
    Delivery,
    DeliveryStatus,
    Edition,
    EditionStatus,
    Feed,
    FeedStatus,
    Post,
    Subscriber,
    SubscriberStatus,
)
from digest.web.console.snapshot import Snapshot
from tests.conftest import make_settings
from tests.web.console_client import signed_in_client

S = SubscriberStatus
# Wednesday 2 December 2026, 12:00 UTC = 15:00 in Istanbul (UTC+3, the test settings' zone).
NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
THIS_MONDAY = datetime(2026, 11, 29, 21, 0, tzinfo=UTC)  # Monday 30 Nov, 00:00 in Istanbul


def _reader(n: int, status: S = S.ACTIVE, cadence: Cadence = Cadence.WEEKLY, *,
            created: datetime, confirmed: datetime | None = None,
            left: datetime | None = None, paused: bool = False) -> Subscriber:
    address = f"reader{n}@example.org"
    return Subscriber(email=address, email_hash=hashlib.sha256(address.encode()).hexdigest(),
                      status=status, cadence=cadence, paused=paused, created_at=created,
                      confirmed_at=confirmed, unsubscribed_at=left)


def _seed_readers(app) -> None:
    long_ago = NOW - timedelta(days=400)
    with app.sessions() as session, session.begin():
        session.add_all([
            # This week (just after local midnight on Monday, still Sunday in UTC).
            _reader(1, created=THIS_MONDAY + timedelta(hours=1),
                    confirmed=THIS_MONDAY + timedelta(hours=2)),
            _reader(2, S.PENDING, created=THIS_MONDAY + timedelta(hours=3)),
            # Last week: just before local midnight (Sunday 23:00 in Istanbul).
            _reader(3, S.ACTIVE, Cadence.DAILY,
                    created=THIS_MONDAY - timedelta(hours=1),
                    confirmed=THIS_MONDAY + timedelta(minutes=30)),
            _reader(4, S.ACTIVE, Cadence.DAILY, created=long_ago, confirmed=long_ago,
                    paused=True),
            _reader(5, S.ACTIVE, Cadence.INSTANT, created=long_ago, confirmed=long_ago),
            # Left: one each way, this week and three weeks ago; one long ago (not shown).
            _reader(6, S.UNSUBSCRIBED, created=long_ago, confirmed=long_ago,
                    left=NOW - timedelta(hours=1)),
            _reader(7, S.BOUNCED, created=long_ago, confirmed=long_ago,
                    left=THIS_MONDAY - timedelta(weeks=2, hours=-5)),
            _reader(8, S.COMPLAINED, Cadence.DAILY, created=long_ago, confirmed=long_ago,
                    left=THIS_MONDAY + timedelta(days=1)),
            _reader(9, S.UNSUBSCRIBED, created=long_ago, confirmed=long_ago,
                    left=long_ago + timedelta(days=1)),
        ])


def test_readers_by_status_and_cadence(app) -> None:
    _seed_readers(app)
    with app.sessions() as session:
        found = census(session)
    assert found.total == 9
    assert found.by_status == {"pending": 1, "active": 4, "unsubscribed": 2, "bounced": 1,
                               "complained": 1, "deleted": 0}
    assert found.by_cadence == {"weekly": 1, "daily": 2, "instant": 1}  # active readers only
    assert found.by_status_and_cadence[("complained", "daily")] == 1
    assert found.paused == 1
    assert found.recipients(Cadence.DAILY) == 1 and found.recipients(Cadence.WEEKLY) == 1


def test_weeks_start_on_monday_in_the_operators_time_zone(app) -> None:
    _seed_readers(app)
    with app.sessions() as session:
        weeks = reader_weeks(session, NOW, app.settings.tz)
    assert len(weeks) == 12
    assert [w.start.isoformat() for w in weeks[-2:]] == ["2026-11-23", "2026-11-30"]
    this, last, three_ago = weeks[-1], weeks[-2], weeks[-3]
    assert (this.signups, this.confirmations) == (2, 2)  # readers 1 and 2; 1 and 3
    assert (last.signups, last.confirmations) == (1, 0)  # reader 3 signed up Sunday night
    assert (this.unsubscribes, this.complaints, this.bounces) == (1, 1, 0)
    assert three_ago.bounces == 1 and three_ago.start.isoformat() == "2026-11-16"
    # Nothing older than the first week is counted (the readers from 400 days ago).
    assert sum(w.signups for w in weeks) == 3
    assert sum(w.unsubscribes for w in weeks) == 1


def test_week_starts_across_a_clock_change() -> None:
    from zoneinfo import ZoneInfo

    starts = week_starts(datetime(2026, 11, 4, 12, tzinfo=UTC), ZoneInfo("Europe/Berlin"), 3)
    assert [s.isoformat() for s in starts] == [
        "2026-10-19T00:00:00+02:00", "2026-10-26T00:00:00+01:00", "2026-11-02T00:00:00+01:00"]


def _edition(session, key: str, *, planned: int, delivered: int = 0,
             status: EditionStatus = EditionStatus.SENT, created: datetime = NOW) -> Edition:
    edition = Edition(key=key, cadence=Cadence.WEEKLY, status=status, recipient_count=planned,
                      delivered=delivered, post_ids=[], created_at=created, finished_at=created)
    session.add(edition)
    session.flush()
    return edition


def test_the_last_editions_outcome(app) -> None:
    D = DeliveryStatus
    with app.sessions() as session, session.begin():
        old = _edition(session, "weekly:2026-11-23", planned=4, delivered=2,
                       created=NOW - timedelta(days=9))
        new = _edition(session, "weekly:2026-11-30", planned=6, delivered=3,
                       created=NOW - timedelta(days=2))
        _edition(session, "weekly:empty", planned=0, status=EditionStatus.EMPTY)
        session.add_all([
            Batch(id=f"{new.id}-1", edition_id=new.id, seq=1, after_id=0, upto_id=3, size=3,
                  status=BatchStatus.SENT),
            Batch(id=f"{new.id}-2", edition_id=new.id, seq=2, after_id=3, upto_id=6, size=3,
                  status=BatchStatus.FAILED),
            Batch(id=f"{old.id}-1", edition_id=old.id, seq=1, after_id=0, upto_id=4, size=4,
                  status=BatchStatus.SENT),
        ])
        rows = [(new.id, 1, D.DELIVERED), (new.id, 2, D.BOUNCED), (new.id, 3, D.COMPLAINED),
                (new.id, 4, D.FAILED), (new.id, 5, D.FAILED), (new.id, 6, D.REFUSED),
                (old.id, 1, D.DELIVERED), (old.id, 2, D.DELIVERED), (old.id, 3, D.BOUNCED),
                (old.id, 4, D.HANDED)]
        session.add_all([Delivery(edition_id=e, subscriber_id=s, status=int(st), at=NOW)
                         for e, s, st in rows])
    with app.sessions() as session:
        outcomes = edition_outcomes(session)
    assert [o.key for o in outcomes] == ["weekly:2026-11-30", "weekly:2026-11-23"]  # no EMPTY
    first, second = outcomes
    assert (first.planned, first.sent, first.delivered, first.bounced, first.complained,
            first.failed) == (6, 3, 3, 1, 1, 3)
    assert (second.planned, second.sent, second.delivered, second.bounced, second.complained,
            second.failed) == (4, 4, 2, 1, 0, 0)


def _seed_feeds_and_posts(app) -> None:
    with app.sessions() as session, session.begin():
        good = Feed(url="https://blog.example.org/feed/", configured_url="x", title="The blog",
                    status=FeedStatus.ACTIVE, consecutive_failures=0,
                    last_polled_at=NOW - timedelta(minutes=30),
                    hub_url="https://hub.example.org/",
                    websub_lease_until=NOW + timedelta(days=3))
        bad = Feed(url="https://other.example.org/rss", configured_url="y",
                   status=FeedStatus.FAILING, consecutive_failures=3,
                   last_error="HTTP 503", last_polled_at=NOW - timedelta(minutes=5),
                   next_poll_at=NOW + timedelta(hours=2))
        session.add_all([good, bad])
        session.flush()
        session.add(Post(feed_id=good.id, identity="p1", link="https://blog.example.org/1",
                         title="A post about treaties", content_hash="h",
                         first_seen_at=NOW - timedelta(hours=3)))


def test_the_dashboard_next_digests_and_feed_health(app) -> None:
    _seed_readers(app)
    _seed_feeds_and_posts(app)
    board = dashboard(app, NOW)
    when = {n.cadence.value: n.when.isoformat() for n in board.next_digests}
    assert when == {"weekly": "2026-12-07T08:00:00+03:00", "daily": "2026-12-03T08:00:00+03:00",
                    "instant": "2026-12-02T15:05:00+03:00"}
    for n in board.next_digests:
        assert n.posts == ("A post about treaties",)
    assert {n.cadence.value: n.recipients for n in board.next_digests} == {
        "weekly": 1, "daily": 1, "instant": 1}
    failing, healthy = board.feeds
    assert failing.failures == 3 and failing.backing_off(NOW) and failing.last_success_at is None
    assert healthy.lease_active(NOW) and healthy.last_success_at == NOW - timedelta(minutes=30)
    assert healthy.latest_post_at == NOW - timedelta(hours=3)
    assert board.warnings == []  # the outbox backend: nothing to warn about


def test_the_dashboard_page_shows_the_figures_charts_and_tables(app) -> None:
    _seed_readers(app)
    _seed_feeds_and_posts(app)
    just_now = datetime.now(UTC) - timedelta(minutes=1)  # the page counts at the real time
    with app.sessions() as session, session.begin():
        session.add(_reader(10, created=just_now, confirmed=just_now))
    client, _ = signed_in_client(app)
    page = client.get("/admin")
    assert page.status_code == 200
    html = page.text
    assert 'data-testid="readers-total">10<' in html
    assert re.search(r'data-testid="readers-active">.*?<td class="num">5</td></tr>', html,
                     re.S)
    # Two charts, each an accessible image whose description carries the numbers.
    assert 'aria-labelledby="chart-readers-title chart-readers-desc"' in html
    desc = re.search(r'<desc id="chart-readers-desc">([^<]*)</desc>', html)
    assert desc and desc.group(1).count("Sign-ups") == 12
    assert desc.group(1).endswith(
        "Sign-ups 1, Confirmations 1, Unsubscribes 0, Bounces 0, Complaints 0")  # this week
    assert '<svg viewBox="0 0 640 240" role="img"' in html
    assert "Sign-ups" in html and 'data-testid="weeks-table"' in html
    assert "No edition has gone out yet." in html
    assert "The blog" in html and "HTTP 503" in html and "3 failures in a row" in html
    assert "A post about treaties" in html
    assert "(Europe/Istanbul)" in html
    assert 'aria-current="page"' in html and "<script>" not in html


def test_the_page_lists_the_production_warnings(tmp_path, transport) -> None:
    app = build(make_settings(tmp_path, mail_backend="smtp", postal_address=""),
                lambda: transport)
    schema.upgrade(app.engine)
    client, _ = signed_in_client(app)
    html = client.get("/admin").text
    assert 'data-testid="production-warnings"' in html
    assert "DIGEST_POSTAL_ADDRESS is not set" in html


def test_the_page_keeps_its_figures_for_a_minute_and_counts_again_on_request(app) -> None:
    client, _ = signed_in_client(app)
    assert 'data-testid="readers-total">0<' in client.get("/admin").text
    _seed_readers(app)
    assert 'data-testid="readers-total">0<' in client.get("/admin").text  # kept
    assert 'data-testid="readers-total">9<' in client.get("/admin?refresh=1").text


def test_a_stale_snapshot_is_served_while_a_new_one_is_computed() -> None:
    clock = [0.0]
    calls = []
    done = threading.Event()

    def compute() -> int:
        calls.append(clock[0])
        if len(calls) > 1:
            done.set()
        return len(calls)

    kept = Snapshot(compute, fresh_for=60, clock=lambda: clock[0])
    assert kept.get() == 1
    clock[0] = 30
    assert kept.get() == 1 and len(calls) == 1  # fresh: not computed again
    clock[0] = 61
    assert kept.get() == 1  # stale: served at once...
    assert done.wait(5)  # ...while the next one is computed in the background
    for _ in range(100):
        if kept.get() == 2:
            break
        threading.Event().wait(0.01)
    assert kept.get() == 2
    assert kept.get(refresh=True) == 3


def test_chart_axes_are_round_and_labels_are_escaped() -> None:
    from digest.web.console.charts import Series, bar_chart, nice_max

    assert [nice_max(v) for v in (0, 3, 5, 9, 814_545)] == [4, 4, 8, 12, 1_000_000]
    svg = str(bar_chart("Editions <b>", "c", ["#1", "<script>"], [Series("Sent", [3, 0])]))
    assert "<script>" not in svg and "&lt;script&gt;" in svg and "&lt;b&gt;" in svg
    assert 'role="img"' in svg and "#1: Sent 3; &lt;script&gt;: Sent 0" in svg
