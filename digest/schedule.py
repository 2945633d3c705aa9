"""SCHEDULE, read once by Celery's ``crontab``, and which period a send belongs to.

One interpreter: :func:`parse_schedule` turns the ``SCHEDULE`` string into Celery's
``crontab``; beat fires from that object (``digest.tasks.beat_schedule``) and the periods
below walk the same object's parsed fields, so beat and the period keys cannot disagree on a
day. Celery's reading is the one that holds: when both day of month and day of week are
restricted, a day must match **both** (``0 8 1 * mon`` is 08:00 on a 1st that is a Monday),
unlike classic cron, which takes either. SCHEDULE fires at most once a day (one minute, one
hour): it is also the time of day of the daily digest.

The weekly period is named after the local date of the most recent fire time in ``TIMEZONE``.
Naming periods by local wall-clock date means a daylight-saving change can neither skip a week
nor produce two keys for one week. A fire time that does not exist on the clock (skipped by a
spring-forward change) happens at the same instant as it does for beat: the wall time read
with the offset in force before the change (02:30 in Berlin becomes 03:30 CEST). Daily periods
are keyed the same way by SCHEDULE's time of day. The instant cadence has no calendar: each
edition is keyed by the edition before it (``instant:after:<id>``), so two beats that race a
poll collide on one key instead of claiming overlapping sets of posts under two keys.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from zoneinfo import ZoneInfo

from celery.schedules import ParseException, crontab

from digest.store.models import Cadence

__all__ = ["Period", "daily_period", "next_fire", "parse_schedule", "period_for",
           "weekly_period"]

# A beat that fires a moment early still belongs to the period it was meant for.
EARLY_TOLERANCE = timedelta(minutes=5)
# How far to look for two fire times: 29 February on a Monday comes round every 28 years.
_SEARCH_DAYS = 57 * 366

_EXAMPLE = "expected five cron fields (minute hour day month weekday), e.g. '0 8 * * mon'"


@dataclass(frozen=True)
class Period:
    """A cadence's period: its unique key and its bounds (UTC)."""

    cadence: Cadence
    key: str
    start: datetime
    end: datetime


def parse_schedule(expression: str) -> crontab:
    """``SCHEDULE`` as Celery's crontab; ValueError naming the problem if it cannot be used."""
    fields = expression.split()
    if len(fields) != 5:
        raise ValueError(f"{_EXAMPLE}; got {expression!r}")
    minute, hour, day_of_month, month, day_of_week = fields
    try:
        cron = crontab(minute=minute, hour=hour, day_of_month=day_of_month,
                       month_of_year=month, day_of_week=day_of_week)
    except (ValueError, ParseException) as exc:
        raise ValueError(f"{_EXAMPLE} (weekdays 0-6, Sunday is 0, or sun-sat); "
                         f"got {expression!r}: {exc}") from exc
    if len(cron.minute) != 1 or len(cron.hour) != 1:
        raise ValueError("the digest is sent at most once a day: give one minute and one hour, "
                         f"e.g. '0 8 * * mon'; got {expression!r}")
    if next(_fire_days(cron, date(2000, 1, 1), step=1), None) is None:
        raise ValueError(f"{expression!r} never fires (no day matches both its day of month "
                         "and its day of week)")
    return cron


def daily_cron(expression: str) -> crontab:
    """Every day at SCHEDULE's time of day: the daily digest's crontab."""
    cron = parse_schedule(expression)
    return crontab(minute=_only(cron.minute), hour=_only(cron.hour))


@cache
def parsed(expression: str) -> crontab:
    """:func:`parse_schedule`, read once per expression, for reading only: the periods below
    and ``digest.slots`` ask on every release tick. Beat gets a crontab of its own."""
    return parse_schedule(expression)


@cache
def parsed_daily(expression: str) -> crontab:
    """:func:`daily_cron`, read once per expression, for reading only (see :func:`parsed`)."""
    return daily_cron(expression)


def fire_time(cron: crontab) -> time:
    """The one time of day a SCHEDULE crontab fires at (``parse_schedule`` allows one)."""
    return time(_only(cron.hour), _only(cron.minute))


def _only(values: set[int]) -> int:
    (value,) = values
    return value


def _fires_on(cron: crontab, day: date) -> bool:
    """Celery's own day test (``crontab.remaining_delta``): month, day and weekday all match."""
    return (day.month in cron.month_of_year and day.day in cron.day_of_month
            and day.isoweekday() % 7 in cron.day_of_week)


def _fire_days(cron: crontab, start: date, step: int) -> Iterator[date]:
    """Days from ``start`` (onwards for step 1, backwards for -1) on which ``cron`` fires."""
    day = start
    for _ in range(_SEARCH_DAYS):
        if _fires_on(cron, day):
            yield day
        day += timedelta(days=step)


def _fire_at(cron: crontab, day: date, tz: ZoneInfo) -> datetime:
    """The instant of ``cron``'s fire on local ``day`` (a skipped wall time: see the module)."""
    local = datetime.combine(day, fire_time(cron), tzinfo=tz)
    return local.astimezone(UTC)


def _utc(now: datetime | None) -> datetime:
    now = now or datetime.now(UTC)
    return now.replace(tzinfo=UTC) if now.tzinfo is None else now.astimezone(UTC)


def _latest_fires(cron: crontab, tz: ZoneInfo, now: datetime | None) -> tuple[datetime, datetime]:
    """The latest fire at or before ``now`` (give or take EARLY_TOLERANCE) and the one before."""
    limit = _utc(now) + EARLY_TOLERANCE
    start = limit.astimezone(tz).date() + timedelta(days=1)
    fires = (_fire_at(cron, day, tz) for day in _fire_days(cron, start, step=-1))
    past = (fire for fire in fires if fire <= limit)
    return next(past), next(past)


def next_fire(schedule: str, tz: ZoneInfo, now: datetime | None = None) -> datetime:
    """The first fire of ``schedule`` after ``now``, in ``tz`` (when a new reader's is due)."""
    cron = parsed(schedule)
    after = _utc(now)
    start = after.astimezone(tz).date() - timedelta(days=1)
    fires = (_fire_at(cron, day, tz) for day in _fire_days(cron, start, step=1))
    return next(fire for fire in fires if fire > after).astimezone(tz)


def _period(cadence: Cadence, cron: crontab, tz: ZoneInfo, now: datetime | None) -> Period:
    fire, previous = _latest_fires(cron, tz, now)
    key = f"{cadence.value}:{fire.astimezone(tz).date().isoformat()}"
    return Period(cadence, key, previous, fire)


def weekly_period(schedule: str, tz: ZoneInfo, now: datetime | None = None) -> Period:
    """The period whose scheduled fire time is the latest one at or before ``now``."""
    return _period(Cadence.WEEKLY, parsed(schedule), tz, now)


def daily_period(schedule: str, tz: ZoneInfo, now: datetime | None = None) -> Period:
    """The day whose daily send (SCHEDULE's time of day) is the latest at or before ``now``.

    Keyed like the weekly period, by the local date of that fire time, so a beat firing a
    moment early, a manual send late in the evening and a daylight-saving change all land on
    the same key as the scheduled send they belong to.
    """
    return _period(Cadence.DAILY, parsed_daily(schedule), tz, now)


def instant_period(after_edition_id: int, now: datetime | None = None) -> Period:
    """The one instant edition that may follow edition ``after_edition_id`` (0: the first)."""
    now = now or datetime.now(UTC)
    return Period(Cadence.INSTANT, f"instant:after:{after_edition_id}", now, now)


def period_for(
    cadence: Cadence,
    schedule: str,
    tz: ZoneInfo,
    now: datetime | None = None,
    after_edition_id: int = 0,
) -> Period:
    """The period ``now`` falls in for ``cadence`` (instant: the one after that edition)."""
    if cadence is Cadence.WEEKLY:
        return weekly_period(schedule, tz, now)
    if cadence is Cadence.DAILY:
        return daily_period(schedule, tz, now)
    return instant_period(after_edition_id, now)
