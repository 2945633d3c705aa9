"""Periods: weekly keys from SCHEDULE in TIMEZONE survive daylight-saving changes."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from digest.delivery.retry import MAX_DELAY, backoff
from digest.schedule import daily_period, period_for, weekly_period
from digest.store.models import Cadence

MONDAY_8 = "0 8 * * mon"


def _weekly_keys(zone: str, start: datetime, weeks: int) -> list[str]:
    """Walk every hour for ``weeks`` weeks and collect the distinct weekly keys seen."""
    tz = ZoneInfo(zone)
    keys: list[str] = []
    t = start
    while t < start + timedelta(weeks=weeks):
        key = weekly_period(MONDAY_8, tz, t).key
        if not keys or keys[-1] != key:
            keys.append(key)
        t += timedelta(hours=1)
    return keys


@pytest.mark.parametrize("zone, start", [
    ("Europe/Berlin", datetime(2026, 3, 16, tzinfo=UTC)),      # DST starts 29 March
    ("Europe/Berlin", datetime(2026, 10, 12, tzinfo=UTC)),     # DST ends 25 October
    ("America/New_York", datetime(2026, 3, 2, tzinfo=UTC)),    # DST starts 8 March
    ("America/New_York", datetime(2026, 10, 26, tzinfo=UTC)),  # DST ends 1 November
    ("Europe/Istanbul", datetime(2026, 3, 16, tzinfo=UTC)),    # no DST (UTC+3 all year)
])
def test_one_key_per_week_across_dst(zone: str, start: datetime) -> None:
    keys = _weekly_keys(zone, start, 5)
    dates = [datetime.fromisoformat(k.split(":")[1]) for k in keys]
    assert len(set(keys)) == len(keys)
    assert all((b - a).days == 7 for a, b in itertools.pairwise(dates))
    assert all(d.weekday() == 0 for d in dates)


@pytest.mark.parametrize("zone", ["Europe/Berlin", "America/New_York", "Europe/Istanbul"])
def test_period_starts_at_local_eight(zone: str) -> None:
    tz = ZoneInfo(zone)
    # Monday 30 March 2026 08:00 local: just after Berlin's DST change.
    fire = datetime(2026, 3, 30, 8, 0, tzinfo=tz)
    period = weekly_period(MONDAY_8, tz, fire.astimezone(UTC))
    assert period.key == "weekly:2026-03-30"
    assert period.end == fire.astimezone(UTC)
    # A beat firing a second early still names this week; a minute before the window, last week.
    assert weekly_period(MONDAY_8, tz, fire - timedelta(seconds=1)).key == "weekly:2026-03-30"
    assert weekly_period(MONDAY_8, tz, fire - timedelta(hours=1)).key == "weekly:2026-03-23"


def test_daily_and_instant_periods() -> None:
    tz = ZoneInfo("Europe/Istanbul")
    late = datetime(2026, 3, 29, 22, 30, tzinfo=UTC)  # 01:30 on the 30th in Istanbul
    # Before the 08:00 send of the 30th, the day still belongs to the 29th's send.
    assert daily_period(MONDAY_8, tz, late).key == "daily:2026-03-29"
    eight = datetime(2026, 3, 30, 5, 0, tzinfo=UTC)  # 08:00 Istanbul
    assert daily_period(MONDAY_8, tz, eight).key == "daily:2026-03-30"
    # A beat that fires a moment early still claims its own day, not the day before.
    assert daily_period(MONDAY_8, tz, eight - timedelta(seconds=30)).key == "daily:2026-03-30"
    # A manual send in the evening belongs to that morning's send: it cannot double it.
    evening = datetime(2026, 3, 30, 19, 0, tzinfo=UTC)
    assert daily_period(MONDAY_8, tz, evening).key == "daily:2026-03-30"
    assert period_for(Cadence.INSTANT, MONDAY_8, tz, late,
                      after_edition_id=42).key == "instant:after:42"


def test_backoff_is_jittered_capped_and_honours_retry_after() -> None:
    assert backoff(1, rand=lambda: 1.0) == 1.0
    assert backoff(4, rand=lambda: 1.0) == 8.0
    assert backoff(4, rand=lambda: 0.5) == 4.0
    assert backoff(30, rand=lambda: 1.0) == MAX_DELAY
    assert backoff(1, retry_after=12, rand=lambda: 0.0) == 12
    assert backoff(1, retry_after=10_000, rand=lambda: 0.0) == MAX_DELAY


def test_beat_runs_every_periodic_job_once() -> None:
    import tempfile
    from pathlib import Path

    from digest.tasks import beat_schedule
    from tests.conftest import make_settings

    schedule = beat_schedule(make_settings(Path(tempfile.gettempdir()), schedule="0 8 * * mon"))
    tasks = {entry["task"] for entry in schedule.values()}
    assert {"digest.tasks.poll_feeds_task", "digest.tasks.send_scheduled_task",
            "digest.tasks.release_task", "digest.tasks.reconcile_task",
            "digest.tasks.expire_pending_task"} <= tasks
    # The weekly and daily digests: a tick on each fifth minute of the clock claims what is
    # due (SCHEDULE for readers who keep the operator's hour) and releases what has come.
    release = schedule["release"]["schedule"]
    assert release.minute == set(range(0, 60, 5)) and release.hour == set(range(24))
