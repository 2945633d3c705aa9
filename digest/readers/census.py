"""How many readers there are, by status and cadence, and how the list moved week by week.

Both answers are aggregates computed by the database (no reader is loaded into Python), so the
console's dashboard stays fast with a million readers.

The weekly history is derived from the timestamps on the readers' own rows: ``created_at``
(signed up or added), ``confirmed_at`` (confirmed), and ``unsubscribed_at`` split by the
status the reader is in now (unsubscribed or erased, bounced, complained: a suppression sets
``unsubscribed_at``). So it counts each reader's latest move: a reader who left and signed up
again counts as a sign-up, not as a departure. Weeks start on Monday, midnight, in the
operator's time zone, and only the last ``weeks`` of them are read: a bounded range of each
timestamp, through its index (migration 0006), so the readers who did not move are not read.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, case, func, literal, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from digest.store.models import Cadence, Subscriber, SubscriberStatus

__all__ = ["Census", "ReaderWeek", "census", "reader_weeks", "week_starts"]

S = SubscriberStatus
HISTORY_WEEKS = 12


@dataclass(frozen=True)
class Census:
    """Readers by status, by cadence (active readers only: who gets mail), and both."""

    by_status: dict[str, int]
    by_cadence: dict[str, int]
    by_status_and_cadence: dict[tuple[str, str], int]
    paused_by_cadence: dict[str, int]  # active readers who paused their digest

    @property
    def total(self) -> int:
        return sum(self.by_status.values())

    @property
    def paused(self) -> int:
        return sum(self.paused_by_cadence.values())

    def recipients(self, cadence: Cadence) -> int:
        """Active, not paused readers of ``cadence``: who its next edition goes to
        (``plan.eligible``)."""
        return self.by_cadence.get(cadence.value, 0) - self.paused_by_cadence.get(
            cadence.value, 0)


@dataclass(frozen=True)
class ReaderWeek:
    """One week's moves (``start`` is that Monday, local date)."""

    start: date
    signups: int = 0
    confirmations: int = 0
    unsubscribes: int = 0
    bounces: int = 0
    complaints: int = 0


def census(session: Session) -> Census:
    """Readers by status and cadence, and the paused ones, from two grouped counts.

    The totals need only (status, cadence), which ``ix_subscribers_sendable`` holds, so they
    are read from the index alone; the few paused readers have their own partial index
    (``ix_subscribers_paused``) rather than widening every row's count with ``paused``.
    """
    rows = session.execute(
        select(Subscriber.status, Subscriber.cadence, func.count())
        .group_by(Subscriber.status, Subscriber.cadence))
    by_status: dict[str, int] = {s.value: 0 for s in S}
    by_cadence: dict[str, int] = {c.value: 0 for c in Cadence}
    both: dict[tuple[str, str], int] = {}
    for status, cadence, n in rows:
        status_name, cadence_name = S(status).value, Cadence(cadence).value
        by_status[status_name] += int(n)
        both[(status_name, cadence_name)] = both.get((status_name, cadence_name), 0) + int(n)
        if status_name == S.ACTIVE.value:
            by_cadence[cadence_name] += int(n)
    paused = {Cadence(cadence).value: int(n) for cadence, n in session.execute(
        select(Subscriber.cadence, func.count())
        .where(Subscriber.paused, Subscriber.status == S.ACTIVE)
        .group_by(Subscriber.cadence))}
    return Census(by_status, by_cadence, both, paused)


def week_starts(now: datetime, tz: ZoneInfo, weeks: int = HISTORY_WEEKS) -> list[datetime]:
    """The starts (aware, local Monday 00:00) of the last ``weeks`` weeks, oldest first; the
    last one is the week ``now`` is in."""
    today = now.astimezone(tz).date()
    monday = today - timedelta(days=today.weekday())
    return [datetime.combine(monday - timedelta(weeks=back), time(0), tzinfo=tz)
            for back in range(weeks - 1, -1, -1)]


def _bucket(column: InstrumentedAttribute[datetime | None],
            starts: Sequence[datetime]) -> ColumnElement[int]:
    """The index of the week ``column`` falls in (newest first wins), as SQL."""
    return case(*((column >= start, literal(i)) for i, start in reversed(list(
        enumerate(starts)))), else_=literal(-1))


def _moves(session: Session, column: InstrumentedAttribute[datetime | None],
           starts: Sequence[datetime],
           *also: InstrumentedAttribute[Any]) -> list[tuple[Any, ...]]:
    """How many readers' ``column`` falls in each week (and by ``also``): (week, *also, n).

    One range of ``column`` (since the first week began), so an index on it serves the count
    without reading the readers who did not move in that time.
    """
    moved = (select(_bucket(column, starts).label("week"), *also)
             .where(column >= starts[0]).subquery())
    keys = [moved.c.week, *(moved.c[c.key] for c in also)]
    return [tuple(row) for row in session.execute(
        select(*keys, func.count()).group_by(*keys))]


def reader_weeks(session: Session, now: datetime, tz: ZoneInfo,
                 weeks: int = HISTORY_WEEKS) -> list[ReaderWeek]:
    """Sign-ups, confirmations, unsubscribes, bounces and complaints per week, oldest first.

    Three range-bounded counts, one per timestamp, each read from its own index (0006):
    ``created_at``, ``confirmed_at``, and ``unsubscribed_at`` with the reader's status.
    """
    starts = week_starts(now, tz, weeks)
    counts = [dict.fromkeys(("signups", "confirmations", "unsubscribes", "bounces",
                             "complaints"), 0) for _ in starts]
    for week, n in _moves(session, Subscriber.created_at, starts):
        counts[week]["signups"] += int(n)
    for week, n in _moves(session, Subscriber.confirmed_at, starts):
        counts[week]["confirmations"] += int(n)
    departures = {S.UNSUBSCRIBED: "unsubscribes", S.DELETED: "unsubscribes",
                  S.BOUNCED: "bounces", S.COMPLAINED: "complaints"}
    for week, status, n in _moves(session, Subscriber.unsubscribed_at, starts,
                                  Subscriber.status):
        kind = departures.get(S(status))
        if kind is not None:
            counts[week][kind] += int(n)
    return [ReaderWeek(start=start.date(), **counts[i]) for i, start in enumerate(starts)]
