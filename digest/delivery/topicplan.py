"""What the dry run says about readers who follow topics: how many get which posts.

Readers are grouped by their stored choice in the database (few distinct choices, however
many readers), and each choice is judged once by ``topicfilter``'s rule.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Text, cast, func, select
from sqlalchemy.orm import Session

from digest.delivery.plan import eligible
from digest.delivery.topicfilter import EditionTopics
from digest.feeds.topics import stored_ids
from digest.store.models import Cadence, Post, Subscriber

__all__ = ["topic_readers"]


def topic_readers(session: Session, cadence: Cadence,
                  posts: Sequence[Post]) -> tuple[tuple[int, tuple[str, ...]], ...]:
    """Readers of ``cadence`` whose topics leave out some of ``posts``: how many get which
    titles (an empty tuple: none of their topics has a post; they get no mail)."""
    topics = EditionTopics.load(session, [p.id for p in posts])
    if not topics.topical:
        return ()
    chosen = cast(Subscriber.topic_ids, Text)
    groups: dict[frozenset[int], int] = {}
    for text, n in session.execute(
            select(chosen, func.count()).where(*eligible(cadence),
                                               Subscriber.topic_ids.is_not(None))
            .group_by(chosen)):
        got = topics.for_reader(stored_ids(text))
        if got != topics.all:
            groups[got] = groups.get(got, 0) + int(n)
    return tuple(sorted(
        ((n, tuple(p.title for p in posts if p.id in got)) for got, n in groups.items()),
        key=lambda item: (-item[0], item[1])))
