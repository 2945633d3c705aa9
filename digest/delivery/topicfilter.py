"""Which of an edition's posts each reader gets, by the topics they follow.

A post reaches a reader when it has no visible topic (no category, or only hidden ones), or
shares an effective topic (``feeds.topics.Resolver``) with the reader; a reader who follows
everything (NULL), or whose choices are all hidden or gone, gets every post. ``reader_posts``
is the pure rule; ``EditionTopics`` reads an edition's posts and the topics table once, for a
batch or for one reader's preview (``posts_for_reader``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from digest.feeds.topics import Resolver, load_resolver
from digest.store.models import Post

__all__ = ["EditionTopics", "posts_for_reader", "reader_posts"]


def reader_posts(post_topics: Mapping[int, frozenset[int]],
                 reader_topics: frozenset[int] | None) -> frozenset[int]:
    """The posts (id -> effective topics) a reader following ``reader_topics`` (None or
    empty: everything) gets."""
    if not reader_topics:
        return frozenset(post_topics)
    return frozenset(pid for pid, topics in post_topics.items()
                     if not topics or not topics.isdisjoint(reader_topics))


class EditionTopics:
    """An edition's posts with their effective topics, and the per-reader rule over them."""

    def __init__(self, resolver: Resolver, post_topics: Mapping[int, Iterable[object]]) -> None:
        self.resolver = resolver
        self.post_topics = {int(pid): resolver.effective_set(ids)
                            for pid, ids in post_topics.items()}
        self.all = frozenset(self.post_topics)
        self.topical = any(self.post_topics.values())
        self._memo: dict[tuple[object, ...], frozenset[int]] = {}

    @classmethod
    def load(cls, session: Session, post_ids: Sequence[int]) -> EditionTopics:
        """Read ``post_ids``' topics and the topics table."""
        found: dict[int, Iterable[object]] = {int(pid): () for pid in post_ids}
        ids = list(found)
        for start in range(0, len(ids), 500):
            for pid, topic_ids in session.execute(
                    select(Post.id, Post.topic_ids).where(Post.id.in_(ids[start:start + 500]))):
                found[int(pid)] = topic_ids if isinstance(topic_ids, list) else ()
        return cls(load_resolver(session), found)

    def for_reader(self, reader_topic_ids: object) -> frozenset[int]:
        """The posts a reader whose stored ``topic_ids`` is this gets (memoised per list)."""
        if not self.topical or not isinstance(reader_topic_ids, list):
            return self.all
        key = tuple(v for v in reader_topic_ids if isinstance(v, int))  # JSON: anything
        if not key:
            return self.all
        posts = self._memo.get(key)
        if posts is None:
            posts = reader_posts(self.post_topics, self.resolver.effective_set(key) or None)
            self._memo[key] = posts
        return posts


def posts_for_reader(session: Session, post_ids: Sequence[int],
                     reader_topic_ids: list[int] | None) -> list[int]:
    """Of ``post_ids`` (in their order), those a reader with these stored topics gets."""
    chosen = EditionTopics.load(session, post_ids).for_reader(reader_topic_ids)
    return [pid for pid in post_ids if pid in chosen]
