"""Store a feed's entries as posts: each once, edits in place, vanished posts left out.

This is where a post is deduplicated. The unique key ``(feed_id, identity)`` makes a rerun
or a race between two pollers harmless. An edited post (same identity, new title or text) is
updated but keeps its ``first_seen_at`` and ``announce``, so it is never announced twice. A
post that disappears from the feed before its digest is sent is marked ``in_feed=False`` —
but only when we can tell it was removed rather than pushed off the first page by newer posts.
Each post's ``<category>`` values become its ``topic_ids`` (``feeds.topics``), kept current.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from digest.feeds.categories import topic_key
from digest.feeds.parse import ParsedEntry
from digest.feeds.summaries import Summary, summarize
from digest.feeds.topics import topic_ids_for
from digest.store.bounded import clean, clip, fit_or_none
from digest.store.models import Edition, EditionStatus, Feed, Post

__all__ = [
    "RECENT_DAYS",
    "StoreResult",
    "hide_vanished",
    "is_first_poll",
    "known_identities",
    "store_entries",
]

# Only posts first seen this recently can be hidden for vanishing; older ones were surely sent.
RECENT_DAYS = 30


@dataclass
class StoreResult:
    """What storing one batch of entries changed."""

    new: list[Post] = field(default_factory=list)
    updated: list[Post] = field(default_factory=list)
    restored: int = 0  # posts back in the feed after having vanished


def is_first_poll(session: Session, feed: Feed) -> bool:
    """True while nothing of this feed is stored yet: its backlog is not news."""
    count = session.scalar(select(func.count()).select_from(Post).where(Post.feed_id == feed.id))
    return not count


def known_identities(session: Session, feed: Feed, identities: Iterable[str]) -> set[str]:
    """Which of ``identities`` this feed already has."""
    wanted = list(set(identities))
    found: set[str] = set()
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        found.update(
            session.scalars(
                select(Post.identity).where(Post.feed_id == feed.id, Post.identity.in_(chunk))
            )
        )
    return found


def store_entries(
    session: Session,
    feed: Feed,
    entries: Sequence[ParsedEntry],
    *,
    now: datetime,
    first_poll: bool,
    window_days: int,
    summary_words: int,
) -> StoreResult:
    """Insert new entries once and update edited ones; on a first poll announce only recent."""
    result = StoreResult()
    existing = {
        post.identity: post
        for post in _posts_by_identity(session, feed, [e.identity for e in entries])
    }
    horizon = now - timedelta(days=window_days)
    topics = topic_ids_for(session, (c for e in entries for c in e.categories))
    for entry in entries:
        topic_ids = _topic_ids(entry, topics)
        summary = summarize(
            entry.content_html,
            entry.description_html,
            words=summary_words,
            media_thumbnail=entry.thumbnail_url,
        )
        content_hash = _content_hash(entry.title, summary.full_text)
        post = existing.get(entry.identity)
        if post is None:
            announce = not first_poll or (
                entry.published_at is not None and entry.published_at >= horizon
            )
            created = _insert(session, feed, entry, summary, content_hash, now, announce,
                              topic_ids)
            if created is not None:
                result.new.append(created)
            continue
        if not post.in_feed:
            post.in_feed = True
            result.restored += 1
        if list(post.topic_ids or []) != topic_ids:  # re-categorised: not news, not an edit
            post.topic_ids = topic_ids
        if post.content_hash != content_hash:
            _apply(post, entry, summary, content_hash)
            post.updated_at = now
            result.updated.append(post)
    session.flush()
    return result


def hide_vanished(
    session: Session, feed: Feed, page: Sequence[ParsedEntry], *, now: datetime
) -> int:
    """Mark unsent recent posts that vanished from a full first page as ``in_feed=False``.

    A post that merely fell off the page because newer ones arrived is older than the oldest
    dated item still on the page, so it is left alone; so is anything already in a digest, and
    everything when the page carries no dates (we cannot tell removal from age).
    """
    dates = [e.published_at for e in page if e.published_at is not None]
    if not page or not dates:
        return 0
    oldest_on_page = min(dates)
    present = {e.identity for e in page}
    candidates = session.scalars(
        select(Post).where(
            Post.feed_id == feed.id,
            Post.in_feed.is_(True),
            Post.first_seen_at >= now - timedelta(days=RECENT_DAYS),
        )
    ).all()
    sent = _sent_post_ids(session)
    hidden = 0
    for post in candidates:
        if post.identity in present or post.id in sent:
            continue
        published = post.published_at or post.first_seen_at
        if published > oldest_on_page:
            post.in_feed = False
            hidden += 1
    session.flush()
    return hidden


def _posts_by_identity(session: Session, feed: Feed, identities: list[str]) -> list[Post]:
    posts: list[Post] = []
    unique = list(set(identities))
    for start in range(0, len(unique), 500):
        chunk = unique[start : start + 500]
        posts.extend(
            session.scalars(
                select(Post).where(Post.feed_id == feed.id, Post.identity.in_(chunk))
            )
        )
    return posts


def _insert(
    session: Session,
    feed: Feed,
    entry: ParsedEntry,
    summary: Summary,
    content_hash: str,
    now: datetime,
    announce: bool,
    topic_ids: list[int],
) -> Post | None:
    post = Post(
        feed_id=feed.id,
        identity=entry.identity,
        first_seen_at=now,
        updated_at=now,
        announce=announce,
        in_feed=True,
        topic_ids=topic_ids,
    )
    _apply(post, entry, summary, content_hash)
    try:
        with session.begin_nested():  # another poller may have stored it a moment ago
            session.add(post)
            session.flush()
    except IntegrityError:
        return None
    return post


def _apply(post: Post, entry: ParsedEntry, summary: Summary, content_hash: str) -> None:
    """Copy an entry onto its post under each column's length policy (see digest.store.bounded).

    A link, guid or thumbnail too long for its column is dropped, not cut: a cut URL leads
    nowhere (the digest then shows the title without a link); text is cut on a word.
    """
    post.guid = fit_or_none(entry.guid, 2000)
    post.link = fit_or_none(entry.link, 2000) or ""
    post.title = clip(entry.title or summary.text[:80] or entry.link or "(untitled)", 1000)
    post.summary = clean(summary.text)
    post.content_hash = content_hash
    post.thumbnail_url = fit_or_none(summary.thumbnail_url, 2000)
    post.reading_minutes = summary.reading_minutes
    post.author = clip(entry.author, 300) if entry.author else None
    post.published_at = entry.published_at


def _topic_ids(entry: ParsedEntry, topics: dict[str, int]) -> list[int]:
    """The entry's categories as topic ids, in the feed's order, each once."""
    ids: list[int] = []
    for category in entry.categories:
        topic = topics.get(topic_key(category))
        if topic is not None and topic not in ids:
            ids.append(topic)
    return ids


def _content_hash(title: str, text: str) -> str:
    return hashlib.sha256(f"{title}\x00{text}".encode()).hexdigest()


def _sent_post_ids(session: Session) -> set[int]:
    ids: set[int] = set()
    rows = session.scalars(
        select(Edition.post_ids).where(
            Edition.status.in_([EditionStatus.SENT, EditionStatus.SENDING])
        )
    )
    for post_ids in rows:
        ids.update(int(i) for i in post_ids or [])
    return ids
