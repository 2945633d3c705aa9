"""Which scheduled period is due now, once readers keep their own delivery hours.

Readers' slots (``digest.slots``) spread one period's edition over a day (hours in every
time zone) or a week (weekdays). The edition of period ``D`` is claimed, and rendered, once:
when its first slot comes due, the earliest release of any confirmed reader of the cadence
(the operator's own fire time when every reader keeps the schedule's). A reader far east of
the operator (Asia/Tokyo beside Europe/Istanbul) thus starts period ``D`` hours before the
operator's own clock reaches it; its other readers' batches wait for their hour.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from digest.config import Settings
from digest.delivery.plan import eligible
from digest.schedule import EARLY_TOLERANCE, Period, period_for
from digest.slots import parse_slot, period_date, release_at
from digest.store.models import Cadence, Subscriber

# How far ahead of the operator's fire a reader's slot can come due: midnight of the
# period's date in UTC+14 is 49 hours before 23:00 of it in UTC-12 (a reader's weekday only
# ever moves their day later: ``slots.release_at``). Three days covers any pair.
LOOKAHEAD = timedelta(days=3)
# A scheduled tick claims a period only this soon after its first slot came due: a beat or
# database down at that hour still sends it when it is back (the slots whose hour passed at
# once, the others at theirs); later than this the period is left to a send by hand.
CLAIM_GRACE = timedelta(hours=6)


def reader_slots(session: Session, cadence: Cadence) -> list[str]:
    """The distinct slot keys of the readers an edition of ``cadence`` would go to now.

    One index probe per slot (``ix_subscribers_slot``: a loose index scan written as a
    recursive query), not a pass over every reader: beat asks every five minutes."""
    def first_after(previous: Any) -> Any:
        return (select(func.min(Subscriber.slot)).where(*eligible(cadence),
                                                        Subscriber.slot > previous)
                .scalar_subquery())

    start = select(func.min(Subscriber.slot).label("slot")).where(*eligible(cadence))
    walk = start.cte("slots", recursive=True)
    walk = walk.union_all(select(first_after(walk.c.slot)).where(walk.c.slot.is_not(None)))
    return [str(key) for key in session.scalars(
        select(walk.c.slot).where(walk.c.slot.is_not(None)))]


def claim_time(settings: Settings, cadence: Cadence, period: Period,
               slots: list[str]) -> datetime:
    """When period's edition is claimed: its earliest reader's release (its fire when it has
    no reader)."""
    day = period_date(settings, period.end)
    times = [release_at(settings, cadence, day, parse_slot(key)) for key in slots]
    return min(times, default=period.end)


def upcoming_periods(settings: Settings, cadence: Cadence, now: datetime) -> list[Period]:
    """The latest period already fired and those whose fire is within ``LOOKAHEAD``, oldest
    first."""
    found: list[Period] = []
    period = period_for(cadence, settings.schedule, settings.tz, now + LOOKAHEAD)
    while True:
        found.append(period)
        if period.end <= now + EARLY_TOLERANCE:
            break
        period = period_for(cadence, settings.schedule, settings.tz, period.start)
    return found[::-1]


def due_periods(session: Session, settings: Settings, cadence: Cadence, now: datetime,
                *, grace: timedelta | None = CLAIM_GRACE,
                slots: list[str] | None = None) -> list[Period]:
    """Periods of ``cadence`` whose first slot is due at ``now`` (and, with ``grace``, came
    due no longer ago than that), oldest first. ``slots``: the readers' (read if None)."""
    if slots is None:
        slots = reader_slots(session, cadence)
    if not slots:
        return []
    due = []
    for period in upcoming_periods(settings, cadence, now):
        starts = claim_time(settings, cadence, period, slots)
        if starts <= now + EARLY_TOLERANCE and (grace is None or now < starts + grace):
            due.append(period)
    return due


def scheduled_period(session: Session, settings: Settings, cadence: Cadence,
                     now: datetime) -> Period:
    """The period a scheduled send of ``cadence`` at ``now`` claims: the newest one due
    (the latest fired one when no reader's slot starts the next one early)."""
    due = due_periods(session, settings, cadence, now, grace=None)
    if due:
        return due[-1]
    return period_for(cadence, settings.schedule, settings.tz, now)
