"""Topics from the feeds' categories: found or created at ingest, and resolved for sending.

A topic is known by its key (``feeds.categories.topic_key``); the first text seen for a key
is its name until the operator renames it (``feeds.topic_catalog``). Two polls storing the
same new category at once cannot fail: each insert is in a savepoint, and the loser of the
unique key reads the winner's row.

``Resolver`` is the rule every reader of topics shares: a topic stands for the root of its
merge chain, and a hidden topic (or one merged into a hidden one) stands for nothing, as if
the post had no such category.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from digest.feeds.categories import MAX_LENGTH, clean_category, topic_key
from digest.store.models import Topic

__all__ = ["MAX_TOPICS", "Resolver", "load_resolver", "stored_ids", "topic_ids_for"]

log = logging.getLogger(__name__)
# The most topics the feeds' categories make on their own (hidden and merged ones count).
MAX_TOPICS = 500


def topic_ids_for(session: Session, categories: Iterable[str]) -> dict[str, int]:
    """Each category's key -> its topic id; missing topics are created (race-safe)."""
    names: dict[str, str] = {}
    for category in categories:
        name = clean_category(category)
        key = topic_key(name)
        if key and key not in names:
            names[key] = name
    found = _by_key(session, list(names))
    missing = sorted(k for k in names if k not in found)
    room = MAX_TOPICS - int(session.scalar(select(func.count(Topic.id))) or 0) if missing else 0
    if len(missing) > room:
        # A feed that invents categories without end must not fill every reader's
        # preferences page: past the cap, new categories are not made topics (the posts
        # still go out, to readers of their known topics or, with none, to everyone).
        log.warning("topics: %d new categories left out, the catalog holds %d (the most): "
                    "merge or hide some with `digest topics`", len(missing) - max(room, 0),
                    MAX_TOPICS)
        missing = missing[:max(room, 0)]
    for key in missing:  # one order for every poller: two never wait on each other
        found[key] = _create(session, key, names[key])
    return found


def _by_key(session: Session, keys: Sequence[str]) -> dict[str, int]:
    found: dict[str, int] = {}
    for start in range(0, len(keys), 500):
        chunk = keys[start:start + 500]
        found.update((k, int(i)) for k, i in
                     session.execute(select(Topic.key, Topic.id).where(Topic.key.in_(chunk))))
    return found


def _create(session: Session, key: str, name: str) -> int:
    topic = Topic(key=key, name=name[:MAX_LENGTH], hidden=False)
    try:
        with session.begin_nested():  # another poller may store the same category now
            session.add(topic)
            session.flush()
        return int(topic.id)
    except IntegrityError:
        existing = session.scalar(select(Topic.id).where(Topic.key == key))
        if existing is None:
            raise
        return int(existing)


@dataclass(frozen=True)
class Resolver:
    """The topics table as the send and the reader pages see it (a small table: read once)."""

    known: frozenset[int]
    hidden: frozenset[int]
    parent: Mapping[int, int]  # topic id -> the topic it was merged into

    def effective(self, topic_id: int) -> int | None:
        """The topic ``topic_id`` counts as (the root of its merge chain); None when it is
        unknown, or it or a topic on its chain is hidden."""
        if topic_id not in self.known:
            return None
        seen = {topic_id}
        current = topic_id
        while True:
            if current in self.hidden:
                return None
            nxt = self.parent.get(current)
            if nxt is None:
                return current
            if nxt in seen or nxt not in self.known:  # a cycle written by hand: no topic
                return None
            seen.add(nxt)
            current = nxt

    def effective_set(self, topic_ids: Iterable[object] | None) -> frozenset[int]:
        """The effective topics of a stored list (JSON: anything not an id is ignored)."""
        found: set[int] = set()
        for raw in topic_ids or ():
            if isinstance(raw, int) and not isinstance(raw, bool):
                topic = self.effective(raw)
                if topic is not None:
                    found.add(topic)
        return frozenset(found)


def load_resolver(session: Session) -> Resolver:
    """The current topics table as a ``Resolver``."""
    known: set[int] = set()
    hidden: set[int] = set()
    parent: dict[int, int] = {}
    for topic_id, is_hidden, merged in session.execute(
            select(Topic.id, Topic.hidden, Topic.merged_into_id)):
        known.add(int(topic_id))
        if is_hidden:
            hidden.add(int(topic_id))
        if merged is not None:
            parent[int(topic_id)] = int(merged)
    return Resolver(frozenset(known), frozenset(hidden), parent)


def stored_ids(text: str | None) -> list[int] | None:
    """A ``topic_ids`` column read as text (to group rows by it): the ids, or None for
    NULL, JSON null or anything that is not a list."""
    try:
        value = json.loads(text) if text else None
    except ValueError:
        return None
    if not isinstance(value, list):
        return None
    return [v for v in value if isinstance(v, int) and not isinstance(v, bool)]
