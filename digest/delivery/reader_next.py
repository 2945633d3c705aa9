"""What one reader gets next, and when, on their own clock: ``digest preview --reader`` and
the console's reader page.

Either an edition already claimed whose batch holding this reader still waits for their hour
(or is being sent), or else the next period of their cadence not yet claimed: its draft
(``editions.draft`` for that period) at the time their slot gives that period
(``digest.slots``). Either way the posts are chosen for them as the batch send chooses
(``topicfilter.posts_for_reader``: their topics; ``received.still_new``: nothing they
already received elsewhere), and rendered the same way. Nothing is written.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from digest.config import Settings
from digest.delivery.editions import draft, render_posts
from digest.delivery.ledger import OPEN
from digest.delivery.nextdigest import MailView, mail_view
from digest.delivery.received import still_new
from digest.delivery.topicfilter import posts_for_reader
from digest.errors import SubscriberError
from digest.readers.choices import describe_choice
from digest.readers.lookup import by_address
from digest.runtime import App
from digest.schedule import EARLY_TOLERANCE, Period, period_for
from digest.slots import local_time, period_date, release_at, slot_at, slot_of
from digest.store.models import (
    Batch,
    Cadence,
    Delivery,
    Edition,
    EditionStatus,
    Post,
    Subscriber,
    SubscriberStatus,
    utcnow,
)

# A scheduled edition's batches are all released within about eight days of its claim.
_OPEN_FOR = timedelta(days=9)


@dataclass(frozen=True)
class ReaderNext:
    """A reader's next digest: when (UTC, and on their clock), what, and in words why not."""

    email: str
    cadence: Cadence
    schedule: str  # their slot in words, e.g. "Mondays at 08:00 (Asia/Tokyo)"
    when: datetime | None  # None: the instant cadence, with the next post
    local_when: datetime | None
    posts: tuple[str, ...]
    mail: MailView | None
    reason: str | None  # why nothing is shown, or a note (paused)
    edition_id: int | None = None  # set when the edition is already claimed


def next_for_reader(app: App, address: str, now: datetime | None = None) -> ReaderNext:
    """What the reader of ``address`` gets next; SubscriberError if they get nothing at all."""
    now = now or utcnow()
    settings = app.settings
    with app.sessions() as session:
        reader = by_address(session, app, address)
        if reader is None or reader.email is None:
            raise SubscriberError(f"no reader with the address {address!r}")
        if reader.status is not SubscriberStatus.ACTIVE:
            raise SubscriberError(f"{reader.email} is {reader.status.value}: they get no digest")
        slot = slot_of(reader)
        words = describe_choice(settings, reader)
        when: datetime | None = None
        edition_id = None
        waiting = _waiting_edition(session, reader, now)
        if waiting is not None:
            edition, when = waiting
            edition_id = edition.id
            posts = _posts(session, edition.post_ids or [])
        elif reader.cadence is Cadence.INSTANT:
            posts = draft(session, settings, reader.cadence, now).posts
        else:
            period, when = _next_period(session, settings, reader, now)
            posts = draft(session, settings, reader.cadence, now, period).posts
        chosen = _for_reader(session, reader, posts)
        local = local_time(settings, slot, when) if when else None
        base = ReaderNext(reader.email, reader.cadence, words, when, local,
                          tuple(p.title for p in chosen), None, None, edition_id)
        if reader.paused:
            return replace(base, reason="paused: nothing is sent until they resume")
        if not chosen:
            return replace(base, reason="nothing new for this reader yet (their topics, or "
                                         "posts they already received)")
        rendered = render_posts(session, settings, chosen)
    shown = Edition(id=edition_id or 0, cadence=reader.cadence, subject=rendered.subject,
                    html=rendered.html, text=rendered.text, post_ids=[])  # never added
    return replace(base, mail=mail_view(app, shown))


def _posts(session: Session, ids: Sequence[int]) -> list[Post]:
    order = {pid: i for i, pid in enumerate(ids)}
    found = session.scalars(select(Post).where(Post.id.in_(list(ids))))
    return sorted(found, key=lambda post: order.get(post.id, len(order)))


def _for_reader(session: Session, reader: Subscriber, posts: list[Post]) -> list[Post]:
    """The posts the batch send would give this reader: their topics, none received."""
    if not posts:
        return []
    ids = posts_for_reader(session, [p.id for p in posts], reader.topic_ids)
    probe = Edition(id=0, cadence=reader.cadence, post_ids=[p.id for p in posts])
    new = still_new(session, probe, reader.id - 1, reader.id).get(reader.id)
    keep = set(ids) if new is None else set(ids) & set(new)
    return [p for p in posts if p.id in keep]


def _waiting_edition(session: Session, reader: Subscriber,
                     now: datetime) -> tuple[Edition, datetime] | None:
    """A claimed edition whose batch holding ``reader`` has not gone out yet, and when it is
    due (the oldest such edition)."""
    editions = session.scalars(
        select(Edition).where(Edition.cadence == reader.cadence,
                              Edition.status == EditionStatus.SENDING,
                              Edition.max_subscriber_id >= reader.id,
                              Edition.created_at >= now - _OPEN_FOR)
        .order_by(Edition.created_at, Edition.id))
    for edition in editions:
        received = session.scalar(select(Delivery.status).where(
            Delivery.edition_id == edition.id, Delivery.subscriber_id == reader.id))
        if received is not None:
            continue
        slot = slot_at(reader.slot, reader.slot_changed_at, reader.slot_history,
                       edition.created_at)
        batch = session.scalars(select(Batch).where(
            Batch.edition_id == edition.id, Batch.status.in_(OPEN),
            Batch.after_id < reader.id, Batch.upto_id >= reader.id,
            (Batch.slot.is_(None)) | (Batch.slot == slot))).first()
        if batch is not None:
            return edition, batch.release_at or edition.created_at
    return None


def _next_period(session: Session, settings: Settings, reader: Subscriber,
                 now: datetime) -> tuple[Period, datetime]:
    """The first period of the reader's cadence not yet claimed whose release for their slot
    is still ahead (give or take the tick's tolerance), and that release."""
    slot = slot_of(reader)
    seen: set[str] = set()
    for days in range(0, 16):
        period = period_for(reader.cadence, settings.schedule, settings.tz,
                            now + timedelta(days=days))
        if period.key in seen:
            continue
        seen.add(period.key)
        at = release_at(settings, reader.cadence, period_date(settings, period.end), slot)
        if at < now - EARLY_TOLERANCE:
            continue
        claimed = session.scalar(select(Edition.id).where(
            Edition.key == period.key, Edition.status != EditionStatus.EMPTY))
        if claimed is None:
            return period, at
    raise SubscriberError("no scheduled digest within two weeks: check DIGEST_SCHEDULE")
