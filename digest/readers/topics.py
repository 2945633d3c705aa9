"""A reader's choice of topics (issue: topics): what they may choose and what they chose.

A reader follows every topic until they choose some (``Subscriber.topic_ids`` is NULL);
their digest then holds only posts in those topics, plus posts without a (visible) topic.
Submitted ids are hostile: only visible topics (``feeds.topic_catalog.visible_topics``) are
kept; an empty choice, or one with nothing valid in it, means everything again.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import null, update
from sqlalchemy.orm import Session

from digest.feeds.topic_catalog import VisibleTopic, visible_topics
from digest.store.models import Subscriber

__all__ = ["VisibleTopic", "chosen_topics", "set_reader_topics", "visible_topics"]


def set_reader_topics(session: Session, subscriber: Subscriber,
                      ids: Iterable[object]) -> list[int] | None:
    """Store the reader's choice from submitted ids (strings or ints); returns what was stored:
    the valid visible topic ids in name order, or None for everything."""
    wanted: set[int] = set()
    for raw in ids:
        text = str(raw).strip()
        if text.isascii() and text.isdigit() and len(text) <= 18:
            wanted.add(int(text))
    chosen = [t.id for t in visible_topics(session) if t.id in wanted]
    if chosen:
        subscriber.topic_ids = chosen
        session.flush()
        return chosen
    session.flush()  # everything: SQL NULL (not JSON null), so `IS NULL` finds these readers
    session.execute(update(Subscriber).where(Subscriber.id == subscriber.id)
                    .values(topic_ids=null()).execution_options(synchronize_session=False))
    session.expire(subscriber, ["topic_ids"])
    return None


def chosen_topics(session: Session, subscriber: Subscriber) -> set[int]:
    """The visible topics the reader's page shows as ticked (none ticked: everything)."""
    mine = set(subscriber.topic_ids or [])
    return {t.id for t in visible_topics(session) if t.id in mine}
