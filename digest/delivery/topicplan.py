"""Readers who follow topics, judged in the database: what the dry run says about them, and
which readers an edition has any post for (a resend leaves out the others: they had nothing,
so no record, and would otherwise be planned again on every resend).

Readers are grouped by their stored choice in the database (few distinct choices, however
many readers), and each choice is judged once by ``topicfilter``'s rule.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import ColumnElement, Text, cast, func, or_, select, true
from sqlalchemy.orm import Session

from digest.delivery.plan import eligible
from digest.delivery.topicfilter import EditionTopics
from digest.feeds.topics import stored_ids
from digest.store.models import Cadence, Edition, Post, Subscriber

__all__ = ["has_posts_for", "post_sets", "topic_readers"]

# A ledger batch holds readers for at most this many requests (one per set of posts).
MAX_POST_SETS = 16


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


def has_posts_for(session: Session, edition: Edition) -> ColumnElement[bool]:
    """True for readers whose topics leave at least one of ``edition``'s posts (a condition
    on ``Subscriber``; true for everyone when no choice leaves none)."""
    topics = EditionTopics.load(session, list(edition.post_ids or ()))
    if not topics.topical or not topics.all:
        return true()
    chosen = cast(Subscriber.topic_ids, Text)
    empty = [text for (text,) in session.execute(
        select(chosen).where(*eligible(edition.cadence), Subscriber.topic_ids.is_not(None))
        .group_by(chosen)) if text is not None and not topics.for_reader(stored_ids(text))]
    if not empty:
        return true()
    return or_(Subscriber.topic_ids.is_(None), chosen.not_in(empty))


def post_sets(session: Session, edition: Edition) -> int:
    """How many distinct sets of ``edition``'s posts its readers get by their topics (1 when
    no post has a visible topic), at most ``MAX_POST_SETS``: the send plans its ledger
    batches that many times larger, so that each request (one set of posts, up to the
    provider's limit of readers) still carries a full load instead of one request per set
    for a batch's share of its readers."""
    topics = EditionTopics.load(session, list(edition.post_ids or ()))
    if not topics.topical:
        return 1
    chosen = cast(Subscriber.topic_ids, Text)
    sets = {topics.all}
    for (text,) in session.execute(
            select(chosen).where(*eligible(edition.cadence), Subscriber.topic_ids.is_not(None))
            .distinct()):
        sets.add(topics.for_reader(stored_ids(text)))
        if len(sets) > MAX_POST_SETS:
            break
    sets.discard(frozenset())  # readers with nothing get no mail: no request
    return max(1, min(len(sets), MAX_POST_SETS))
