"""The operator's catalog of topics: list with counts, rename, merge, hide; what readers see.

Topics come from the feeds' categories (``feeds.topics``). The operator may rename one, merge
one into another (its posts and readers then count for the other; chains resolve to their
root, and a merge into itself or into a topic already merged into it is refused), or hide one
(its posts count as having no category and go to everyone; a reader's choice of it is
ignored). The console page and ``digest topics ...`` are thin shells over these functions.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import Text, and_, cast, func, select
from sqlalchemy.orm import Session

from digest.errors import NoSuchTopicError, TopicError
from digest.feeds.categories import clean_category
from digest.feeds.topics import stored_ids
from digest.store.models import Post, Subscriber, SubscriberStatus, Topic

__all__ = [
    "CatalogTopic",
    "VisibleTopic",
    "hide_topic",
    "list_topics",
    "merge_topic",
    "rename_topic",
    "unhide_topic",
    "unmerge_topic",
    "visible_topics",
]


@dataclass(frozen=True)
class CatalogTopic:
    """One topic as the operator sees it; ``posts`` and ``readers`` include merged topics."""

    id: int
    key: str
    name: str
    hidden: bool
    merged_into_id: int | None
    merged_into_name: str | None
    posts: int
    readers: int  # active readers who chose it (or a topic merged into it)


@dataclass(frozen=True)
class VisibleTopic:
    """A topic a reader may choose."""

    id: int
    name: str


def visible_topics(session: Session) -> list[VisibleTopic]:
    """The topics a reader may choose: neither hidden nor merged, by name."""
    rows = session.execute(select(Topic.id, Topic.name).where(
        Topic.hidden.is_(False), Topic.merged_into_id.is_(None)))
    topics = [VisibleTopic(int(i), str(n)) for i, n in rows]
    return sorted(topics, key=lambda t: (t.name.casefold(), t.id))


def list_topics(session: Session) -> list[CatalogTopic]:
    """Every topic by name, with its posts and following readers counted."""
    topics = list(session.scalars(select(Topic)))
    parent = {t.id: t.merged_into_id for t in topics if t.merged_into_id is not None}
    names = {t.id: t.name for t in topics}
    posts = _tally(session, cast(Post.topic_ids, Text), None, parent)
    readers = _tally(session, cast(Subscriber.topic_ids, Text),
                     and_(Subscriber.status == SubscriberStatus.ACTIVE,
                          Subscriber.topic_ids.is_not(None)), parent)
    found = [CatalogTopic(t.id, t.key, t.name, bool(t.hidden), t.merged_into_id,
                          names.get(t.merged_into_id) if t.merged_into_id else None,
                          posts[t.id], readers[t.id]) for t in topics]
    return sorted(found, key=lambda t: (t.name.casefold(), t.id))


def _tally(session: Session, column: object, where: object,
           parent: dict[int, int]) -> Counter[int]:
    """How many rows name each topic, or a topic merged into it (each row once per topic).
    Rows are grouped by their stored list first, so few distinct lists are parsed."""
    query = select(column, func.count()).group_by(column)  # type: ignore[call-overload]
    if where is not None:
        query = query.where(where)
    counts: Counter[int] = Counter()
    for text, n in session.execute(query):
        for topic in _with_ancestors(stored_ids(text) or (), parent):
            counts[topic] += int(n)
    return counts


def _with_ancestors(ids: Iterable[int], parent: dict[int, int]) -> set[int]:
    found: set[int] = set()
    for topic in ids:
        while topic not in found:
            found.add(topic)
            if topic not in parent:
                break
            topic = parent[topic]
    return found


def _get(session: Session, topic_id: int) -> Topic:
    topic = session.get(Topic, topic_id)
    if topic is None:
        raise NoSuchTopicError(topic_id)
    return topic


def rename_topic(session: Session, topic_id: int, name: str) -> Topic:
    """Give a topic the name readers see (its key, the feed's category, stays)."""
    topic = _get(session, topic_id)
    cleaned = clean_category(name)
    if not cleaned:
        raise TopicError("a topic's name cannot be empty")
    topic.name = cleaned
    session.flush()
    return topic


def merge_topic(session: Session, topic_id: int, into_id: int) -> Topic:
    """Merge a topic into another: its posts and readers count for that one (or its root).

    Refused when ``into_id`` is the topic itself or already merged into it (a cycle).
    """
    topic = _get(session, topic_id)
    into = _get(session, into_id)
    if into.id == topic.id:
        raise TopicError(f"topic {topic_id} cannot be merged into itself")
    current: Topic | None = into
    seen: set[int] = set()
    while current is not None and current.id not in seen:
        if current.id == topic.id:
            raise TopicError(f"topic {into_id} ({into.name}) is already merged into topic "
                             f"{topic_id} ({topic.name}); merging back would make a cycle")
        seen.add(current.id)
        current = session.get(Topic, current.merged_into_id) if current.merged_into_id \
            else None
    topic.merged_into_id = into.id
    session.flush()
    return topic


def unmerge_topic(session: Session, topic_id: int) -> Topic:
    """Undo a merge: the topic stands on its own again."""
    topic = _get(session, topic_id)
    topic.merged_into_id = None
    session.flush()
    return topic


def hide_topic(session: Session, topic_id: int) -> Topic:
    """Hide a topic: its posts go to everyone, readers' choice of it is ignored."""
    return _set_hidden(session, topic_id, True)


def unhide_topic(session: Session, topic_id: int) -> Topic:
    """Show a hidden topic again."""
    return _set_hidden(session, topic_id, False)


def _set_hidden(session: Session, topic_id: int, hidden: bool) -> Topic:
    topic = _get(session, topic_id)
    topic.hidden = hidden
    session.flush()
    return topic
