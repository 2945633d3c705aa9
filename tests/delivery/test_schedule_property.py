"""Beat and the period keys read SCHEDULE the same way, for any schedule and any time zone.

Beat is simulated with Celery's own ``crontab.is_due`` (the call ``celery.beat`` makes),
jumping straight to each next due time; every fire must land in its own period, and the
periods must follow one another with none skipped, across daylight-saving changes.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, available_timezones

import pytest
from celery import Celery
from celery.schedules import crontab
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from digest.schedule import (
    Period,
    daily_cron,
    daily_period,
    next_fire,
    parse_schedule,
    weekly_period,
)

ZONES = sorted(z for z in available_timezones() if "/" in z and not z.startswith("Etc/"))
DST_ZONES = ["Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "America/Santiago",
             "Pacific/Chatham", "Europe/London", "America/Havana", "Asia/Tehran"]
WEEKDAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]


def _field(values: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """A cron field: '*' or a comma list of values."""
    return st.one_of(st.just("*"), st.lists(values, min_size=1, max_size=3, unique=True)
                     .map(",".join))


schedules = st.tuples(
    st.integers(0, 59).map(str),
    st.integers(0, 23).map(str),
    _field(st.one_of(st.integers(1, 31).map(str),
                     st.tuples(st.integers(1, 15), st.integers(16, 31))
                     .map(lambda r: f"{r[0]}-{r[1]}"))),
    _field(st.integers(1, 12).map(str)),
    _field(st.one_of(st.sampled_from(WEEKDAYS), st.integers(0, 6).map(str),
                     st.just("mon-fri"))),
).map(" ".join)


def _usable(schedule: str) -> bool:
    try:
        parse_schedule(schedule)
    except ValueError:
        return False
    return True


def beat_fires(cron: crontab, zone: str, start: datetime, days: int) -> list[datetime]:
    """When Celery beat, running from ``start`` in ``zone``, would fire ``cron``."""
    clock = [start]
    app = Celery(set_as_current=False)
    app.conf.update(timezone=zone, enable_utc=True)
    cron.app = app
    cron.nowfun = lambda: clock[0]
    fires: list[datetime] = []
    last_run = start
    while clock[0] < start + timedelta(days=days):
        due, wait = cron.is_due(last_run)
        if due:
            fires.append(clock[0])
            last_run = clock[0]
        clock[0] += timedelta(seconds=max(wait, 1))
    return fires


def _check(fires: list[datetime], period: Callable[[datetime], Period]) -> None:
    periods = [period(fire) for fire in fires]
    keys = [p.key for p in periods]
    assert len(set(keys)) == len(keys), f"two fires in one period: {keys}"
    for fire, p in zip(fires, periods, strict=True):
        assert abs(p.end - fire) < timedelta(minutes=1), f"beat fired {fire}, period {p}"
    for before, after in itertools.pairwise(periods):
        assert after.start == before.end, f"a period was skipped between {before} and {after}"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(schedule=schedules,
       zone=st.one_of(st.sampled_from(DST_ZONES), st.sampled_from(ZONES)),
       start=st.datetimes(datetime(2024, 1, 1), datetime(2032, 1, 1)))
def test_every_beat_fire_has_its_own_period(schedule: str, zone: str, start: datetime) -> None:
    assume(_usable(schedule))
    tz = ZoneInfo(zone)
    start = start.replace(tzinfo=UTC)
    weekly = beat_fires(parse_schedule(schedule), zone, start, days=400)
    _check(weekly, lambda fire: weekly_period(schedule, tz, fire))
    daily = beat_fires(daily_cron(schedule), zone, start, days=60)
    _check(daily, lambda fire: daily_period(schedule, tz, fire))


@pytest.mark.parametrize("schedule, zone, start", [
    ("30 2 * * sun", "Europe/Berlin", datetime(2026, 3, 20, tzinfo=UTC)),  # 02:30 skipped
    ("30 2 * * sun", "Europe/Berlin", datetime(2026, 10, 20, tzinfo=UTC)),  # 02:30 twice
    ("30 1 * * *", "America/New_York", datetime(2026, 10, 25, tzinfo=UTC)),
    ("0 8 1 * mon", "Europe/Istanbul", datetime(2026, 1, 1, tzinfo=UTC)),
])
def test_dst_edges_and_both_day_fields(schedule: str, zone: str, start: datetime) -> None:
    tz = ZoneInfo(zone)
    fires = beat_fires(parse_schedule(schedule), zone, start, days=400)
    assert fires
    _check(fires, lambda fire: weekly_period(schedule, tz, fire))


def test_day_of_month_and_weekday_must_both_match() -> None:
    """``0 8 1 * mon``: 08:00 on a 1st that is a Monday (Celery's reading, not classic OR)."""
    tz = ZoneInfo("Europe/Istanbul")
    fires = beat_fires(parse_schedule("0 8 1 * mon"), "Europe/Istanbul",
                       datetime(2026, 1, 1, tzinfo=UTC), days=800)
    assert [f.astimezone(tz).date().isoformat() for f in fires] == [
        "2026-06-01", "2027-02-01", "2027-03-01", "2027-11-01"]
    period = weekly_period("0 8 1 * mon", tz, datetime(2026, 7, 15, tzinfo=UTC))
    assert period.key == "weekly:2026-06-01"


@pytest.mark.parametrize("schedule", ["0 8 * *", "*/5 8 * * mon", "0 8,20 * * *",
                                      "0 8 31 2 *", "0 25 * * *", "0 8 * * funday"])
def test_unusable_schedules_are_refused(schedule: str) -> None:
    with pytest.raises(ValueError):
        parse_schedule(schedule)


def test_next_fire_is_the_next_beat() -> None:
    """What a new reader is told ("your first digest: ...") is when beat will really fire."""
    tz = ZoneInfo("Europe/Istanbul")
    start = datetime(2026, 1, 1, tzinfo=UTC)
    (first, *_) = beat_fires(parse_schedule("0 8 1 * mon"), "Europe/Istanbul", start, days=200)
    assert next_fire("0 8 1 * mon", tz, start) == first
