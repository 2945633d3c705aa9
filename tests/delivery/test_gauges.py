"""The scrape-time gauges read the database and beat's heartbeat, cached for a few seconds."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from digest.bootstrap import build
from digest.delivery.gauges import Gauges
from digest.delivery.heartbeat import HEARTBEAT_KEY, record_tick
from digest.metrics import registry
from digest.runtime import App
from digest.store.models import Edition, EditionStatus, Feed, FeedStatus, SubscriberStatus
from digest.store.sessions import transaction
from tests.conftest import make_settings
from tests.delivery_helpers import add_readers
from tests.smtp_server import free_port

pytestmark = pytest.mark.redis
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def _values(families: list) -> dict[tuple[str, tuple[str, ...]], float]:
    text = generate_latest(registry(families)).decode()
    return {(s.name, tuple(s.labels.values())): s.value
            for f in text_string_to_metric_families(text) for s in f.samples
            if s.name.startswith(("digest_readers", "digest_editions", "digest_feeds",
                                  "digest_last", "digest_beat"))}


def _seed(app: App) -> None:
    add_readers(app, 3)
    add_readers(app, 2, start=3, status=SubscriberStatus.PENDING)
    add_readers(app, 1, start=5, status=SubscriberStatus.COMPLAINED)
    with transaction(app.sessions) as s:
        s.add_all([
            Feed(url="https://a.example/feed", configured_url="https://a.example/feed",
                 status=FeedStatus.ACTIVE, consecutive_failures=0,
                 last_polled_at=NOW - timedelta(minutes=30)),
            Feed(url="https://b.example/feed", configured_url="https://b.example/feed",
                 status=FeedStatus.ACTIVE, consecutive_failures=0,
                 last_polled_at=NOW - timedelta(minutes=90)),
            # failing: its last poll was a failure, not a success
            Feed(url="https://c.example/feed", configured_url="https://c.example/feed",
                 status=FeedStatus.FAILING, consecutive_failures=4,
                 last_polled_at=NOW - timedelta(minutes=1)),
            Edition(key="weekly:1", cadence="weekly", status=EditionStatus.SENT),
            Edition(key="weekly:2", cadence="weekly", status=EditionStatus.SENDING),
            Edition(key="weekly:3", cadence="weekly", status=EditionStatus.SENDING,
                    paused_at=NOW, pause_reason="complaints"),
        ])


def test_gauges_show_the_database_and_the_heartbeat(app: App, redis_url: str) -> None:
    _seed(app)
    record_tick(app, now=NOW - timedelta(seconds=90))
    got = _values(Gauges(app).families(now=NOW, clock=0.0))
    assert got[("digest_readers", ("active",))] == 3
    assert got[("digest_readers", ("pending",))] == 2
    assert got[("digest_readers", ("complained",))] == 1
    assert got[("digest_editions", ("sent",))] == 1
    assert got[("digest_editions", ("sending",))] == 2
    assert got[("digest_editions_paused", ())] == 1
    assert got[("digest_feeds", ("active",))] == 2
    assert got[("digest_feeds", ("failing",))] == 1
    assert got[("digest_last_successful_poll_age_seconds", ())] == 30 * 60
    assert got[("digest_beat_last_tick_age_seconds", ())] == 90


def test_a_scrape_within_the_cache_reads_nothing_again(app: App, redis_url: str) -> None:
    _seed(app)
    record_tick(app, now=NOW)
    gauges = Gauges(app, max_age=10)
    gauges.families(now=NOW, clock=100.0)
    add_readers(app, 4, start=10)
    cached = _values(gauges.families(now=NOW + timedelta(seconds=5), clock=105.0))
    assert cached[("digest_readers", ("active",))] == 3
    assert cached[("digest_beat_last_tick_age_seconds", ())] == 5  # ages still grow
    fresh = _values(gauges.families(now=NOW, clock=110.0))
    assert fresh[("digest_readers", ("active",))] == 7


def test_never_is_infinitely_old(app: App, redis_url: str) -> None:
    redis.Redis.from_url(app.settings.rate_limit_url).delete(HEARTBEAT_KEY)
    got = _values(Gauges(app).families(now=NOW, clock=0.0))
    assert math.isinf(got[("digest_last_successful_poll_age_seconds", ())])
    assert math.isinf(got[("digest_beat_last_tick_age_seconds", ())])
    assert not any(name == "digest_readers" for name, _ in got)  # no reader, no status


def test_redis_down_leaves_the_beat_gauge_out(tmp_path: Path) -> None:
    from digest.store import migrate as schema

    app = build(make_settings(tmp_path, redis_url=f"redis://127.0.0.1:{free_port()}/0"))
    schema.upgrade(app.engine)
    add_readers(app, 2)
    got = _values(Gauges(app).families(now=NOW, clock=0.0))
    assert got[("digest_readers", ("active",))] == 2
    assert not any(name == "digest_beat_last_tick_age_seconds" for name, _ in got)
    app.engine.dispose()
