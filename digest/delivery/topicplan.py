"""Readers who follow topics, judged in the database: what the dry run says about them, and
which readers an edition has any post for (a resend leaves out the others: they had nothing,
so no record, and would otherwise be planned again on every resend).

Readers are grouped by their stored choice in the database (few distinct choices, however
many readers), once per edition (``reach``), and each choice is judged once by
``topicfilter``'s rule; the send's planning, the resend and the dry run read that one pass.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import ColumnElement, Text, cast, func, or_, select, true
from sqlalchemy.orm import Session

from digest.delivery.plan import eligible
from digest.delivery.topicfilter import EditionTopics
from digest.feeds.topics import stored_ids
from digest.store.models import Cadence, Post, Subscriber

__all__ = ["Reach", "has_posts_for", "post_sets", "reach", "topic_readers"]

# A ledger batch holds readers for at most this many requests (one per set of posts).
MAX_POST_SETS = 16


@dataclass(frozen=True)
class Reach:
    """What readers' stored topic choices make of some posts: how many readers get each set
    of posts (only those who chose topics), and the choices (as stored text) that get none."""

    all: frozenset[int]
    readers: dict[frozenset[int], int]
    empty: tuple[str, ...]


def reach(session: Session, cadence: Cadence, post_ids: Sequence[int]) -> Reach | None:
    """One pass over the readers of ``cadence`` who chose topics, grouped by their choice;
    None when no post has a visible topic (then every reader gets every post)."""
    topics = EditionTopics.load(session, list(post_ids))
    if not topics.topical:
        return None
    chosen = cast(Subscriber.topic_ids, Text)
    readers: dict[frozenset[int], int] = {}
    empty: list[str] = []
    for text, n in session.execute(
            select(chosen, func.count()).where(*eligible(cadence),
                                               Subscriber.topic_ids.is_not(None))
            .group_by(chosen)):
        got = topics.for_reader(stored_ids(text))
        readers[got] = readers.get(got, 0) + int(n)
        if not got and text is not None:
            empty.append(str(text))
    return Reach(topics.all, readers, tuple(empty))


def topic_readers(session: Session, cadence: Cadence,
                  posts: Sequence[Post]) -> tuple[tuple[int, tuple[str, ...]], ...]:
    """Readers of ``cadence`` whose topics leave out some of ``posts``: how many get which
    titles (an empty tuple: none of their topics has a post; they get no mail)."""
    found = reach(session, cadence, [p.id for p in posts])
    if found is None:
        return ()
    return tuple(sorted(
        ((n, tuple(p.title for p in posts if p.id in got))
         for got, n in found.readers.items() if got != found.all),
        key=lambda item: (-item[0], item[1])))


def has_posts_for(found: Reach | None) -> ColumnElement[bool]:
    """True for readers whose topics leave at least one of the posts (a condition on
    ``Subscriber``; true for everyone when no choice leaves none)."""
    if found is None or not found.all or not found.empty:
        return true()
    chosen = cast(Subscriber.topic_ids, Text)
    return or_(Subscriber.topic_ids.is_(None), chosen.not_in(found.empty))


def post_sets(found: Reach | None) -> int:
    """How many distinct sets of the posts readers get by their topics (1 when no post has a
    visible topic), at most ``MAX_POST_SETS``: the send plans its ledger batches that many
    times larger, so that each request (one set of posts, up to the provider's limit of
    readers) still carries a full load instead of one request per set for a batch's share of
    its readers. Readers with nothing get no mail, so no request."""
    if found is None:
        return 1
    sets = {found.all, *found.readers} - {frozenset()}
    return max(1, min(len(sets), MAX_POST_SETS))
