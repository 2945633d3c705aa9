"""How many readers there are, by status and cadence, and how the list moved week by week.

Both answers are aggregates computed by the database (no reader is loaded into Python), so the
console's dashboard stays fast with a million readers.

The weekly history is derived from the timestamps on the readers' own rows: ``created_at``
(signed up or added), ``confirmed_at`` (confirmed), and ``unsubscribed_at`` split by the
status the reader is in now (unsubscribed or erased, bounced, complained: a suppression sets
``unsubscribed_at``). So it counts each reader's latest move: a reader who left and signed up
again counts as a sign-up, not as a departure. Weeks start on Monday, midnight, in the
operator's time zone, and only the last ``weeks`` of them are read (a bounded range of each
timestamp).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, case, func, literal, or_, select
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
    """Readers by status and cadence (and paused), from one grouped count."""
    rows = session.execute(
        select(Subscriber.status, Subscriber.cadence, Subscriber.paused, func.count())
        .group_by(Subscriber.status, Subscriber.cadence, Subscriber.paused))
    by_status: dict[str, int] = {s.value: 0 for s in S}
    by_cadence: dict[str, int] = {c.value: 0 for c in Cadence}
    both: dict[tuple[str, str], int] = {}
    paused: dict[str, int] = {}
    for status, cadence, is_paused, n in rows:
        status_name, cadence_name = S(status).value, Cadence(cadence).value
        by_status[status_name] += int(n)
        both[(status_name, cadence_name)] = both.get((status_name, cadence_name), 0) + int(n)
        if status_name == S.ACTIVE.value:
            by_cadence[cadence_name] += int(n)
            if is_paused:
                paused[cadence_name] = paused.get(cadence_name, 0) + int(n)
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


def reader_weeks(session: Session, now: datetime, tz: ZoneInfo,
                 weeks: int = HISTORY_WEEKS) -> list[ReaderWeek]:
    """Sign-ups, confirmations, unsubscribes, bounces and complaints per week, oldest first.

    One pass over the readers who moved since the first week began: each row is put in the
    week of each of its three timestamps, and the database counts the combinations.
    """
    starts = week_starts(now, tz, weeks)
    first = starts[0]
    joined = _bucket(Subscriber.created_at, starts).label("joined")
    confirmed = _bucket(Subscriber.confirmed_at, starts).label("confirmed")
    left = _bucket(Subscriber.unsubscribed_at, starts).label("left")
    moved = (select(joined, confirmed, left, Subscriber.status.label("status"))
             .where(or_(Subscriber.created_at >= first, Subscriber.confirmed_at >= first,
                        Subscriber.unsubscribed_at >= first))
             .subquery())
    rows = session.execute(
        select(moved.c.joined, moved.c.confirmed, moved.c.left, moved.c.status, func.count())
        .group_by(moved.c.joined, moved.c.confirmed, moved.c.left, moved.c.status))
    counts = [dict.fromkeys(("signups", "confirmations", "unsubscribes", "bounces",
                             "complaints"), 0) for _ in starts]
    departures = {S.UNSUBSCRIBED: "unsubscribes", S.DELETED: "unsubscribes",
                  S.BOUNCED: "bounces", S.COMPLAINED: "complaints"}
    for joined_in, confirmed_in, left_in, status, n in rows:
        if joined_in >= 0:
            counts[joined_in]["signups"] += int(n)
        if confirmed_in >= 0:
            counts[confirmed_in]["confirmations"] += int(n)
        kind = departures.get(S(status))
        if left_in >= 0 and kind is not None:
            counts[left_in][kind] += int(n)
    return [ReaderWeek(start=start.date(), **counts[i]) for i, start in enumerate(starts)]
