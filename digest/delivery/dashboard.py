"""The console dashboard's figures, read from the database in a few aggregate queries.

- The next digest per cadence: when beat sends it (the one cron interpreter, in
  DIGEST_TIMEZONE), what it holds now (``editions.draft``, as the preview and the send read it)
  and to how many readers (``plan.eligible``, counted from the census).
- Readers by status and cadence, and their moves per week (``readers.census``).
- The last editions' outcome: planned and sent from the ledger (one row per batch),
  delivered from the provider's counter on the edition, and bounced, complained and failed
  from the per-reader record through ``ix_deliveries_outcome``, which holds only the rows
  with such an outcome, so a million delivered copies are never counted one by one.
- Feed health: each feed's last poll, failures and backoff, WebSub lease, latest post.
- The production warnings ``digest send`` prints.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnClause, func, literal_column, select
from sqlalchemy.orm import Session

from digest.config import Settings
from digest.delivery.editions import draft
from digest.delivery.readercounts import FAILED
from digest.readers.census import Census, ReaderWeek, census, reader_weeks
from digest.runtime import App
from digest.schedule import next_fire, parse_schedule
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
)

__all__ = ["Dashboard", "EditionOutcome", "FeedHealth", "NextDigest", "dashboard",
           "edition_outcomes", "feed_health", "next_digests"]

EDITIONS_SHOWN = 8
INSTANT_MINUTE = 5  # beat's instant send, just after each hourly poll (digest.tasks)
# ix_deliveries_outcome holds the statuses from here up (0006). Written into the SQL as a
# literal, not a parameter: a plan PostgreSQL reuses for any value could not use the index.
_OUTCOME_FLOOR: ColumnClause[int] = literal_column(str(int(DeliveryStatus.BOUNCED)))


@dataclass(frozen=True)
class NextDigest:
    """The next edition of one cadence, as it stands now."""

    cadence: Cadence
    when: datetime  # in the operator's time zone
    posts: tuple[str, ...]
    recipients: int
    # Why new posts are not in it yet (the minimum, the hold window), or what it carries over.
    note: str | None = None


@dataclass(frozen=True)
class EditionOutcome:
    """What became of one edition, reader by reader, as far as is known."""

    id: int
    key: str
    cadence: str
    status: str
    created_at: datetime
    paused: bool
    planned: int
    sent: int  # readers in the batches sent (the ledger)
    delivered: int
    bounced: int
    complained: int
    failed: int


@dataclass(frozen=True)
class FeedHealth:
    """One stored feed's state."""

    id: int
    url: str
    title: str | None
    status: str
    last_polled_at: datetime | None
    last_success_at: datetime | None  # the last poll, when it did not fail
    failures: int
    last_error: str | None
    next_poll_at: datetime | None  # set while backing off after failures
    websub_hub: str | None
    websub_lease_until: datetime | None
    latest_post_at: datetime | None

    def backing_off(self, now: datetime) -> bool:
        return self.next_poll_at is not None and self.next_poll_at > now

    def lease_active(self, now: datetime) -> bool:
        return self.websub_lease_until is not None and self.websub_lease_until > now


@dataclass(frozen=True)
class Dashboard:
    """Everything the dashboard shows, at ``now``."""

    now: datetime
    timezone: str
    next_digests: list[NextDigest]
    census: Census
    weeks: list[ReaderWeek]
    editions: list[EditionOutcome]
    feeds: list[FeedHealth]
    warnings: list[str]


def _next_instant(now: datetime, tz: ZoneInfo) -> datetime:
    local = now.astimezone(tz).replace(second=0, microsecond=0)
    candidate = local.replace(minute=INSTANT_MINUTE)
    if candidate <= local:
        candidate = (candidate + timedelta(hours=1)).astimezone(tz)
    return candidate


def _daily_schedule(schedule: str) -> str:
    """SCHEDULE's time of day, every day (``schedule.daily_cron`` as an expression)."""
    cron = parse_schedule(schedule)
    (minute,), (hour,) = cron.minute, cron.hour
    return f"{minute} {hour} * * *"


def next_digests(session: Session, settings: Settings, counts: Census,
                 now: datetime) -> list[NextDigest]:
    """Per cadence: when it goes out next, the posts it would hold now, and its readers."""
    tz = settings.tz
    found = []
    for cadence in Cadence:
        upcoming = draft(session, settings, cadence, now)
        if cadence is Cadence.WEEKLY:
            when = next_fire(settings.schedule, tz, now)
        elif cadence is Cadence.DAILY:
            when = next_fire(_daily_schedule(settings.schedule), tz, now)
        else:
            when = _next_instant(now, tz)
        left = upcoming.left
        note = (upcoming.reason if not upcoming.posts and (left.waiting or left.held)
                else left.carried_note())
        found.append(NextDigest(cadence, when, tuple(p.title for p in upcoming.posts),
                                counts.recipients(cadence), note))
    return found


def edition_outcomes(session: Session, limit: int = EDITIONS_SHOWN) -> list[EditionOutcome]:
    """The last ``limit`` editions that were sent or tried (newest first) with their outcome."""
    editions = list(session.scalars(
        select(Edition).where(Edition.status != EditionStatus.EMPTY)
        .order_by(Edition.id.desc()).limit(limit)))
    ids = [e.id for e in editions]
    if not ids:
        return []
    handed = {int(edition_id): int(readers) for edition_id, readers in session.execute(
        select(Batch.edition_id, func.coalesce(func.sum(Batch.size), 0))
        .where(Batch.edition_id.in_(ids), Batch.status == BatchStatus.SENT)
        .group_by(Batch.edition_id))}
    outcome: dict[tuple[int, int], int] = {}
    for edition_id, status, n in session.execute(
            select(Delivery.edition_id, Delivery.status, func.count())
            .where(Delivery.edition_id.in_(ids), Delivery.status >= _OUTCOME_FLOOR)
            .group_by(Delivery.edition_id, Delivery.status)):
        outcome[(int(edition_id), int(status))] = int(n)

    def count(edition_id: int, statuses: Sequence[DeliveryStatus]) -> int:
        return sum(outcome.get((edition_id, int(s)), 0) for s in statuses)

    rows = []
    for e in editions:
        rows.append(EditionOutcome(
            id=e.id, key=e.key, cadence=e.cadence.value, status=e.status.value,
            created_at=e.created_at, paused=e.paused_at is not None,
            planned=e.recipient_count, sent=handed.get(e.id, 0), delivered=e.delivered,
            bounced=count(e.id, [DeliveryStatus.BOUNCED]),
            complained=count(e.id, [DeliveryStatus.COMPLAINED]),
            failed=count(e.id, sorted(FAILED))))
    return rows


def feed_health(session: Session) -> list[FeedHealth]:
    """Every stored feed, failing ones first."""
    latest = dict(session.execute(
        select(Post.feed_id, func.max(Post.first_seen_at)).group_by(Post.feed_id)).all())
    feeds = session.scalars(select(Feed).order_by(Feed.status == FeedStatus.ACTIVE,
                                                  Feed.consecutive_failures.desc(), Feed.id))
    return [FeedHealth(
        id=f.id, url=f.url, title=f.title, status=f.status.value,
        last_polled_at=f.last_polled_at,
        last_success_at=f.last_polled_at if not f.consecutive_failures else None,
        failures=f.consecutive_failures or 0, last_error=f.last_error,
        next_poll_at=f.next_poll_at, websub_hub=f.hub_url,
        websub_lease_until=f.websub_lease_until,
        latest_post_at=_aware(latest.get(f.id))) for f in feeds]


def _aware(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def dashboard(app: App, now: datetime) -> Dashboard:
    """The dashboard at ``now``."""
    settings = app.settings
    with app.sessions() as session:
        counts = census(session)
        return Dashboard(
            now=now, timezone=settings.timezone,
            next_digests=next_digests(session, settings, counts, now),
            census=counts,
            weeks=reader_weeks(session, now, settings.tz),
            editions=edition_outcomes(session),
            feeds=feed_health(session),
            warnings=settings.production_warnings(),
        )
