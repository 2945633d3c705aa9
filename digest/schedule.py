"""Which period a send belongs to, so each cadence sends once per period.

The weekly period is named after the local date of the most recent ``SCHEDULE`` fire time in
``TIMEZONE`` (croniter on zone-aware datetimes). Naming periods by local wall-clock date means
a daylight-saving change can neither skip a week nor produce two keys for one week: the
Monday-08:00 fire is one local date whatever the UTC offset that morning. Daily periods are
local calendar days. The instant cadence has no calendar: each edition is keyed by the
edition before it (``instant:after:<id>``), so two beats that race a poll collide on one key
instead of claiming overlapping sets of posts under two keys.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from croniter import croniter

from digest.models import Cadence

# A beat that fires a moment early still belongs to the period it was meant for.
EARLY_TOLERANCE = timedelta(minutes=5)


@dataclass(frozen=True)
class Period:
    """A cadence's period: its unique key and its bounds (UTC)."""

    cadence: Cadence
    key: str
    start: datetime
    end: datetime


def _local(now: datetime | None, tz: ZoneInfo) -> datetime:
    now = now or datetime.now(UTC)
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    return now.astimezone(tz)


def _latest_fire(cron: str, tz: ZoneInfo, now: datetime | None) -> tuple[datetime, datetime]:
    """The latest fire time of ``cron`` at or before ``now`` (zone-aware), and the one before."""
    local = _local(now, tz) + EARLY_TOLERANCE
    itr = croniter(cron, local)
    fire: datetime = itr.get_prev(datetime)
    previous: datetime = itr.get_prev(datetime)
    return fire, previous


def weekly_period(schedule: str, tz: ZoneInfo, now: datetime | None = None) -> Period:
    """The period whose scheduled fire time is the latest one at or before ``now``."""
    fire, previous = _latest_fire(schedule, tz, now)
    return Period(
        Cadence.WEEKLY,
        f"weekly:{fire.date().isoformat()}",
        previous.astimezone(UTC),
        fire.astimezone(UTC),
    )


def daily_period(schedule: str, tz: ZoneInfo, now: datetime | None = None) -> Period:
    """The day whose daily send (SCHEDULE's time of day) is the latest at or before ``now``.

    Keyed like the weekly period, by the local date of that fire time, so a beat firing a
    moment early, a manual send late in the evening and a daylight-saving change all land on
    the same key as the scheduled send they belong to.
    """
    minute, hour = schedule.split()[:2]
    fire, previous = _latest_fire(f"{minute} {hour} * * *", tz, now)
    return Period(
        Cadence.DAILY,
        f"daily:{fire.date().isoformat()}",
        previous.astimezone(UTC),
        fire.astimezone(UTC),
    )


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
