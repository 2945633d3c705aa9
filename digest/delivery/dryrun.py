"""The dry run: exactly what ``send_digest`` would do now, with nothing written.

It reads what the send reads: the same draft (``editions.draft``), the same readers
(``plan.count_recipients``), the same batch size, and, through ``received.still_new`` (what
the batch send itself asks), which readers already received some of these posts in another
edition and so would get only the rest, or nothing; through ``topicplan``, which readers'
topics leave out some posts.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from digest.delivery.editions import NOTHING_NEW, draft, render_posts
from digest.delivery.outcomes import SendResult
from digest.delivery.plan import NO_READERS, batch_size_for, count_recipients, eligible
from digest.delivery.received import still_new
from digest.delivery.topicplan import topic_readers
from digest.runtime import App
from digest.store.models import Cadence, Edition, EditionStatus, Post, Subscriber

_CHUNK = 10_000
_ALL = 2**62


def partial_readers(session: Session, cadence: Cadence,
                    posts: Sequence[Post]) -> tuple[tuple[int, tuple[str, ...]], ...]:
    """Readers of ``cadence`` who already received some of ``posts``: how many get which
    titles (an empty tuple: nothing, they are skipped), most readers first."""
    probe = Edition(id=0, cadence=cadence, post_ids=[p.id for p in posts])  # never added
    needs = still_new(session, probe, 0, _ALL)
    if not needs:
        return ()
    ids = sorted(needs)
    groups: dict[frozenset[int], int] = {}
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start:start + _CHUNK]
        for sid in session.scalars(select(Subscriber.id).where(
                *eligible(cadence), Subscriber.id.in_(chunk))):
            groups[needs[int(sid)]] = groups.get(needs[int(sid)], 0) + 1
    order = [p.id for p in posts]
    title = {p.id: p.title for p in posts}
    return tuple(sorted(
        ((n, tuple(title[i] for i in order if i in got)) for got, n in groups.items()),
        key=lambda item: (-item[0], item[1])))


def dry_run_result(app: App, cadence: Cadence, *, manual: bool,
                   now: datetime | None = None) -> SendResult:
    """What ``send_digest(cadence=..., manual=...)`` would send now."""
    with app.sessions() as session:
        upcoming = draft(session, app.settings, cadence, now, manual=manual)
        if upcoming.posts:
            render_posts(session, app.settings, upcoming.posts)  # fails here if it would there
        readers = count_recipients(session, cadence)
        names = tuple(p.title for p in upcoming.posts)
        taken = None if manual else session.scalars(
            select(Edition.id).where(Edition.key == upcoming.period.key,
                                     Edition.status != EditionStatus.EMPTY)).first()
        partial = (partial_readers(session, cadence, upcoming.posts)
                   if upcoming.posts and readers else ())
        by_topic = (topic_readers(session, cadence, upcoming.posts)
                    if upcoming.posts and readers else ())
    transport = app.transport()
    size = batch_size_for(app.settings, transport)
    transport.close()
    reason: str | None
    if taken is not None:
        reason = f"the digest for {upcoming.period.key} was already sent (edition {taken})"
        return SendResult(None, "dry-run", reason, readers, 0, 0, 0, cadence.value)
    if not upcoming.posts:
        reason = upcoming.reason if upcoming.left.held or not manual else NOTHING_NEW
    elif not readers:
        reason = NO_READERS
    else:
        reason = upcoming.left.carried_note()
    batches = -(-readers // size) if upcoming.posts else 0
    return SendResult(None, "dry-run", reason, readers, batches, 0, 0, cadence.value,
                      names if upcoming.posts else (), partial, by_topic)
