"""A reader's delivery slot: the time zone, weekday and hour they want the digest at.

A slot is kept on the reader as three columns (each NULL: the operator's own, from
``DIGEST_TIMEZONE`` and ``SCHEDULE``) and as one key, ``Subscriber.slot`` ("" when all three
are the operator's; else ``"<zone>|<weekday>|<hour>"`` with empty parts for the operator's),
which the ledger groups and filters readers by.

When an edition of period ``D`` (the operator's local date of the schedule's fire, as in
``digest.schedule``) reaches a reader: on their own calendar, at their hour (minute 0; the
operator's default keeps SCHEDULE's minute), on local date ``D`` for the daily cadence and,
for the weekly one, on the first day from ``D`` that is their weekday. A wall time that a
daylight-saving change skips is read with the offset in force before the change (02:30 becomes
03:30), one that happens twice is taken the first time, exactly as ``digest.schedule`` reads the
operator's own: so a DST week neither skips nor doubles a reader, and each reader is in exactly
one ledger batch of each edition anyway.

A reader who changes their slot keeps, for every edition planned before the change, the slot
they had when it was planned (``slot_at``: ``slot_changed_at`` and the ``slot_history`` of the
last ``CHANGE_MEMORY``): a batch already sent cannot be followed by a second copy at the new
hour, and a batch not yet sent still comes at the hour it was planned for, however often they
change meanwhile. The new slot applies from the next edition.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from celery.schedules import crontab

from digest.config import Settings
from digest.schedule import fire_time, parsed, parsed_daily
from digest.store.models import Cadence, Subscriber

log = logging.getLogger(__name__)

# How long a reader's earlier slots are remembered: an edition planned that long ago may
# still be releasing (a weekly one spans up to eight days).
CHANGE_MEMORY = timedelta(days=9)
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


@dataclass(frozen=True)
class Slot:
    """A reader's choice; None where they keep the operator's."""

    timezone: str | None = None
    weekday: int | None = None  # 0 Monday .. 6 Sunday
    hour: int | None = None  # 0..23

    @property
    def key(self) -> str:
        return slot_key(self.timezone, self.weekday, self.hour)


def slot_key(timezone: str | None, weekday: int | None, hour: int | None) -> str:
    """The key of a slot: "" for the operator's, else ``zone|weekday|hour``."""
    if timezone is None and weekday is None and hour is None:
        return ""
    return "|".join("" if part is None else str(part) for part in (timezone, weekday, hour))


def parse_slot(key: str | None) -> Slot:
    """The slot of a key written by :func:`slot_key` (unreadable parts: the operator's)."""
    if not key:
        return Slot()
    zone, _, rest = key.partition("|")
    weekday, _, hour = rest.partition("|")
    return Slot(zone or None, _small(weekday, 6), _small(hour, 23))


def _small(text: str, top: int) -> int | None:
    return int(text) if text.isascii() and text.isdigit() and int(text) <= top else None


def slot_of(reader: Subscriber) -> Slot:
    """The reader's slot as chosen."""
    return Slot(reader.timezone, reader.delivery_weekday, reader.delivery_hour)


def set_slot(reader: Subscriber, slot: Slot, now: datetime) -> bool:
    """Give ``reader`` a new slot (validated by the caller); False when it is the same one.

    The slot it replaces goes into ``slot_history`` with the time it began, for editions
    planned while it held (see the module docstring); slots that ended longer than
    ``CHANGE_MEMORY`` ago are forgotten.
    """
    key = slot.key
    reader.timezone, reader.delivery_weekday, reader.delivery_hour = (
        slot.timezone, slot.weekday, slot.hour)
    if key == (reader.slot or ""):
        return False
    began = reader.slot_changed_at
    history = [*_history(reader.slot_history),
               (reader.slot or "", began.isoformat() if began else None)]
    ends = [since for _, since in history[1:]] + [now.isoformat()]
    cutoff = now - CHANGE_MEMORY
    kept = [[k, since] for (k, since), end in zip(history, ends, strict=True)
            if end is None or datetime.fromisoformat(end) >= cutoff]
    reader.slot_history = kept or None
    reader.slot = key
    reader.slot_changed_at = now
    return True


def _history(value: object) -> list[tuple[str, str | None]]:
    """``slot_history`` as (key, began) pairs, oldest first; anything unreadable is dropped."""
    if not isinstance(value, list):
        return []
    return [(str(item[0]), item[1] if isinstance(item[1], str) else None) for item in value
            if isinstance(item, list) and len(item) == 2 and isinstance(item[0], str)]


def slot_at(slot: str, changed_at: datetime | None, history: object,
            when: datetime) -> str | None:
    """The slot key a reader had at ``when`` (None: they had none remembered, as when the
    change came before ``CHANGE_MEMORY``)."""
    if changed_at is None or changed_at <= when:
        return slot or ""
    found: str | None = None
    for key, began in _history(history):
        if began is None or datetime.fromisoformat(began) <= when:
            found = key
    return found


def _cron(settings: Settings, cadence: Cadence) -> crontab:
    if cadence is Cadence.DAILY:
        return parsed_daily(settings.schedule)
    return parsed(settings.schedule)


def weekday_choosable(settings: Settings) -> bool:
    """Whether a weekly reader's weekday counts: only when SCHEDULE fires on one weekday and
    on any day of the month (``0 8 * * mon``). With two weekly fires (``mon,thu``) each
    period would land on the same chosen day: two digests at once; so there it is ignored."""
    cron = parsed(settings.schedule)
    return len(cron.day_of_week) == 1 and len(cron.day_of_month) == 31 and \
        len(cron.month_of_year) == 12


def period_date(settings: Settings, period_end: datetime) -> date:
    """``D``: the operator's local date of a period's scheduled fire."""
    return period_end.astimezone(settings.tz).date()


def release_at(settings: Settings, cadence: Cadence, day: date, slot: Slot) -> datetime:
    """When the edition of period ``day`` (``D``) reaches a reader with ``slot`` (UTC)."""
    cron = _cron(settings, cadence)
    zone = _zone(settings, slot.timezone)
    at = fire_time(cron) if slot.hour is None else time(slot.hour)
    local_day = day
    if cadence is Cadence.WEEKLY and slot.weekday is not None and weekday_choosable(settings):
        local_day = day + timedelta(days=(slot.weekday - day.weekday()) % 7)
    return datetime.combine(local_day, at, tzinfo=zone).astimezone(UTC)


def local_time(settings: Settings, slot: Slot, instant: datetime) -> datetime:
    """``instant`` on the reader's own clock."""
    return instant.astimezone(_zone(settings, slot.timezone))


def _zone(settings: Settings, name: str | None) -> ZoneInfo:
    """The reader's zone; the operator's when they keep it, or when this machine's time zone
    database does not know it (a host older than the one that accepted it): logged, and the
    digest still goes, on the operator's clock, rather than the whole tick failing."""
    if not name:
        return settings.tz
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        log.error("time zone %r is unknown on this host; using %s", name, settings.timezone)
        return settings.tz


def describe(settings: Settings, cadence: Cadence, slot: Slot) -> str:
    """The slot in words, e.g. "Mondays at 08:00 (Asia/Tokyo)"."""
    cron = _cron(settings, cadence)
    zone = slot.timezone or settings.timezone
    at = fire_time(cron) if slot.hour is None else time(slot.hour)
    hour, minute = at.hour, at.minute
    when = f"{hour:02d}:{minute:02d} ({zone})"
    if cadence is Cadence.DAILY:
        return f"every day at {when}"
    if cadence is Cadence.WEEKLY and slot.weekday is not None and weekday_choosable(settings):
        return f"{WEEKDAYS[slot.weekday]}s at {when}"
    if cadence is Cadence.WEEKLY:
        return f"on the schedule's day at {when}"
    return "as soon as a post is out"
