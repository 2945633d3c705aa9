"""Editions: which posts the next digest holds, and claiming it once per cadence and period.

An edition is claimed by inserting a row under ``Edition.key`` (e.g. ``weekly:2026-11-23``),
which is unique: a beat that fires twice, two beats, or an operator who clicks twice all
collide on the same key and get ``AlreadySentError``. A send by hand (``manual``) does not
take the period's key: it claims ``<cadence>:manual:after-<id>``, keyed by the cadence's latest
edition, so it holds only what no edition of that cadence holds yet, two clicks racing collide,
and the next scheduled digest still goes out with whatever is new by then. The
claim, the rendering and the caller's fan-out plan happen in one transaction, so an edition
never exists without its ledger. No new posts means an EMPTY edition with the reason and no
email; an EMPTY claim does not block a real one later in the same period.

Which posts are new is decided by id, not by time alone: a post is new for a cadence unless
an edition of that cadence that was sent (or is being sent) already holds it. Time only bounds
the search (``LOOKBACK`` before the last edition), so a post that a running poll stamped just
before a claim but committed just after it, or the posts of an edition that FAILED for
everyone, go in the next edition instead of being lost. The instant cadence keys each edition
by the one before it, so two beats racing a poll cannot both claim overlapping posts.

Of the new posts, ``delivery.worthiness`` decides which go now: the operator's minimum (the
edition waits, an EMPTY claim saying why), maximum (the rest carry over) and hold window.
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import false, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from digest.config import Settings
from digest.delivery.periods import scheduled_period
from digest.delivery.worthiness import Leftover, Rules, choose
from digest.errors import AlreadySentError
from digest.mail.links import archive_url
from digest.mail.render import RenderedEdition, render_digest, sections_for
from digest.runtime import App
from digest.schedule import Period, instant_period
from digest.store.bounded import clip
from digest.store.models import Cadence, Edition, EditionStatus, Feed, Post
from digest.store.sessions import transaction

log = logging.getLogger(__name__)

# Editions whose posts count as already announced to that cadence's readers.
_CLAIMED = (EditionStatus.SENDING, EditionStatus.SENT)
# How far before the last edition a post may have been stamped and still be new (a slow poll
# transaction, a retried failed edition, clock skew between hosts).
LOOKBACK = timedelta(days=31)
SUBJECT_MAX = 998  # Edition.subject, and the longest line RFC 5322 allows
NOTHING_NEW = "nothing new to send: every post is already in a digest for these readers"


@dataclass(frozen=True)
class Draft:
    """What the next edition of a cadence would hold."""

    period: Period
    posts: list[Post]
    since: datetime | None
    # New posts left for a later edition: held, carried over, or all waiting (worthiness).
    left: Leftover = field(default_factory=Leftover)

    @property
    def reason(self) -> str:
        """Why the edition holds nothing (when ``posts`` is empty)."""
        held = self.left.held_note()
        if self.left.waiting is not None:
            return self.left.waiting.describe() + (f"; {held}" if held else "")
        since = f" since {self.since:%Y-%m-%d %H:%M} UTC" if self.since else ""
        return f"no new posts ready{since}: {held}" if held else f"no new posts{since}"


def latest_sent_edition(session: Session, cadence: Cadence | None = None) -> Edition | None:
    """The newest edition that was sent (or is being sent), optionally of one cadence."""
    query = select(Edition).where(Edition.status.in_(_CLAIMED))
    if cadence is not None:
        query = query.where(Edition.cadence == cadence)
    return session.scalars(query.order_by(Edition.created_at.desc(), Edition.id.desc())
                           .limit(1)).first()


def new_posts(session: Session, cadence: Cadence, *, now: datetime,
              first_window: timedelta) -> tuple[list[Post], datetime | None]:
    """Posts to announce: in no sent edition of ``cadence``, first seen since shortly before
    the last one (or before its newest post, so posts carried over past ``DIGEST_MAX_POSTS``
    time after time are never dropped). The first edition of a cadence (readers who just
    chose daily, say) holds only posts first seen within ``first_window``, not the blog's
    whole history, and no later one reaches further back than that."""
    previous = latest_sent_edition(session, cadence)
    since = previous.created_at if previous else None
    query = select(Post).where(Post.announce.is_(True), Post.in_feed.is_(True))
    excluded: set[int] = set()
    if previous is None:
        query = query.where(Post.first_seen_at > now - first_window)
    else:
        last = previous.created_at
        floor = min(last, _newest_post(session, previous) or last) - LOOKBACK
        first = session.scalar(select(func.min(Edition.created_at)).where(
            Edition.cadence == cadence, Edition.status.in_(_CLAIMED)))
        floor = max(floor, (first or last) - first_window)
        query = query.where(Post.first_seen_at > floor)
        announced = session.scalars(
            select(Edition.post_ids).where(Edition.cadence == cadence,
                                           Edition.status.in_(_CLAIMED),
                                           Edition.created_at >= floor - LOOKBACK)
        )
        for ids in announced:
            excluded.update(ids or [])
    posts = [p for p in session.scalars(query.order_by(Post.first_seen_at, Post.id))
             if p.id not in excluded]
    return posts, since


def _newest_post(session: Session, edition: Edition) -> datetime | None:
    """When the newest post ``edition`` holds was first seen. An edition takes the oldest
    posts first, so what it carried over to the next one was first seen after this."""
    ids = [int(i) for i in edition.post_ids or []]
    if not ids:
        return None
    return session.scalar(select(func.max(Post.first_seen_at)).where(Post.id.in_(ids)))


def _predecessor(session: Session, cadence: Cadence) -> int:
    """The id of the latest edition of ``cadence``, sent or failed (0 before the first)."""
    latest = session.scalar(
        select(Edition.id).where(Edition.cadence == cadence,
                                 Edition.status != EditionStatus.EMPTY)
        .order_by(Edition.created_at.desc(), Edition.id.desc()).limit(1))
    return int(latest or 0)


def draft(session: Session, settings: Settings, cadence: Cadence,
          now: datetime | None = None, period: Period | None = None, *,
          manual: bool = False) -> Draft:
    """The next edition of ``cadence``: its period and posts (nothing is written).

    The period is ``period`` if given, else the one a scheduled send would claim now
    (``periods.scheduled_period``: readers' own hours may start the next one early).
    The thresholds of ``delivery.worthiness`` apply; ``manual`` (a send by hand) ignores the
    minimum. While a minimum is set, a cadence's first edition also counts posts up to
    ``DIGEST_MAX_WAIT_DAYS`` older than the first window, so it cannot wait forever.
    """
    now = now or datetime.now(UTC)
    rules = Rules.of(settings)
    window = timedelta(days=settings.first_poll_window_days)
    if rules.min_posts > 1:
        window += rules.max_wait
    found, since = new_posts(session, cadence, now=now, first_window=window)
    posts, left = choose(found, cadence, rules, now=now, manual=manual)
    if period is None and cadence is Cadence.INSTANT:
        period = instant_period(_predecessor(session, cadence), now)
    elif period is None:
        period = scheduled_period(session, settings, cadence, now)
    return Draft(period, posts, since, left)


def render_posts(session: Session, settings: Settings, posts: Sequence[Post],
                 edition_id: int | None = None) -> RenderedEdition:
    """Render ``posts`` once (placeholders left for each reader's links).

    The date line spans the posts' own publication dates, not the schedule's period: a digest
    sent by hand mid-week holds everything since the last one, which no period label fits.
    """
    feeds = list(session.scalars(select(Feed).order_by(Feed.id)))
    return render_digest(
        settings,
        sections_for(list(posts), feeds),
        archive_url=archive_url(settings, edition_id) if edition_id else None,
    )


def preview(app: App, cadence: Cadence = Cadence.WEEKLY,
            now: datetime | None = None) -> RenderedEdition | None:
    """The next digest as it would be sent now, or None when there is nothing new."""
    with app.sessions() as session:
        upcoming = draft(session, app.settings, cadence, now)
        if not upcoming.posts:
            return None
        return render_posts(session, app.settings, upcoming.posts)


def manual_key(session: Session, cadence: Cadence) -> str:
    """The key of a send by hand: unique per cadence and the edition it follows."""
    return f"{cadence.value}:manual:after-{_predecessor(session, cadence)}"


def _serialise(session: Session, cadence: Cadence) -> None:
    """Let one claim of ``cadence`` at a time choose its posts, until it commits.

    A send by hand and the scheduled one have different keys, so the unique key does not stop
    both from seeing no claimed edition and claiming the same posts. PostgreSQL: a lock per
    cadence for the transaction. SQLite: its one write lock, taken before the reads (pysqlite
    opens the transaction only at the first write).
    """
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        lock_id = zlib.crc32(f"digest.edition.claim:{cadence.value}".encode())
        session.execute(select(func.pg_advisory_xact_lock(lock_id)))
    elif dialect == "sqlite":
        session.execute(update(Edition).where(false()).values(key=Edition.key)
                        .execution_options(synchronize_session=False))


def _claim(
    session: Session,
    settings: Settings,
    cadence: Cadence,
    manual: bool,
    now: datetime,
    plan: Callable[[Session, Edition], None] | None,
    attempted: list[str],
    period: Period | None = None,
) -> Edition | None:
    _serialise(session, cadence)
    upcoming = draft(session, settings, cadence, now, period, manual=manual)
    period, posts = upcoming.period, upcoming.posts
    if (manual or cadence is Cadence.INSTANT) and not posts:
        return None  # nothing new: a send by hand, like instant, has no period to mark
    key = manual_key(session, cadence) if manual else period.key
    attempted.append(key)
    existing = session.scalars(select(Edition).where(Edition.key == key)).first()
    if existing is not None:
        if existing.status is not EditionStatus.EMPTY:
            raise AlreadySentError(key, existing.id)
        if not posts:
            return existing  # still nothing new; the earlier EMPTY record stands
        existing.key = f"{key}~{existing.id}"  # an empty claim does not block a real one
        session.flush()
    edition = Edition(
        key=key, cadence=cadence, period_start=period.start, period_end=period.end,
        status=EditionStatus.SENDING if posts else EditionStatus.EMPTY,
        reason=None if posts else upcoming.reason, post_ids=[p.id for p in posts],
        forced=manual, created_at=now, finished_at=None if posts else now,
    )
    session.add(edition)
    session.flush()  # the unique key is checked here
    if posts:
        rendered = render_posts(session, settings, posts, edition.id)
        # A post title may be longer than a subject line can be (RFC 5322: 998 characters).
        edition.subject = clip(rendered.subject, SUBJECT_MAX)
        edition.html, edition.text = rendered.html, rendered.text
        if plan is not None:
            plan(session, edition)
    return edition


def _claim_fields(edition: Edition | None) -> dict[str, Any] | None:
    """What the claim log line says about ``edition``."""
    if edition is None:
        return None
    return {"edition_id": edition.id, "key": edition.key, "cadence": str(edition.cadence),
            "status": str(edition.status), "posts": len(edition.post_ids or []),
            "recipients": edition.recipient_count}


def claim_edition(
    app: App,
    cadence: Cadence = Cadence.WEEKLY,
    *,
    manual: bool = False,
    now: datetime | None = None,
    plan: Callable[[Session, Edition], None] | None = None,
    period: Period | None = None,
) -> Edition | None:
    """Claim this period's edition (SENDING, or EMPTY with a reason); raises AlreadySentError.

    ``manual``: claim an edition of what is new now under its own key (see the module
    docstring), leaving the period's key to the schedule. ``plan`` runs inside the claiming
    transaction (the fan-out ledger). Returns None, writing nothing, when there is nothing
    new for a manual send or the instant cadence. ``period``: claim that scheduled period
    (``delivery.release``), not the one due now.
    """
    now = now or datetime.now(UTC)
    attempted: list[str] = []
    try:
        with transaction(app.sessions) as session:
            edition = _claim(session, app.settings, cadence, manual, now, plan, attempted,
                             period)
            fields = _claim_fields(edition)  # read while the row is loaded
        if fields is not None:
            log.info("edition %(edition_id)s claimed as %(key)s: %(status)s, %(posts)d posts, "
                     "%(recipients)s readers", fields, extra=fields)
        return edition
    except IntegrityError as exc:
        # Another process claimed the same key between our check and our insert.
        if not attempted:
            raise
        with app.sessions() as session:
            other = session.scalars(select(Edition).where(Edition.key == attempted[-1])).first()
        if other is None:
            raise
        raise AlreadySentError(attempted[-1], other.id) from exc
