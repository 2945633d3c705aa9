"""What each reader of a batch already received: a reader never gets the same post twice.

An edition's posts may have reached some of its readers in another edition: a weekly reader
who switched to daily, a paused reader, a re-subscription, a manual send, the welcome mail's
latest digest. The per-reader record (``models.Delivery``) says who received which edition;
here the batch's readers who received (a row not in ``NOT_RECEIVED``) some of this edition's
posts elsewhere are found, so they get only the posts still new to them, or nothing.

Cheap by construction: only editions sharing a post with this one are looked at (usually
none, and then nothing more is asked), and their rows are read for the batch's id range.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from digest.config import Settings
from digest.delivery.editions import SUBJECT_MAX, render_posts
from digest.mail.render import RenderedEdition
from digest.store.bounded import clip
from digest.store.deliveries import NOT_RECEIVED
from digest.store.models import Delivery, Edition, EditionStatus, Post

# An edition holding a post was claimed after the post was first seen; this allows for clocks
# that disagree between the poller's and the sender's hosts.
_CLOCK_SLACK = timedelta(days=1)


def overlapping_editions(session: Session, edition: Edition) -> dict[int, frozenset[int]]:
    """Other editions sharing posts with ``edition``: their id -> the shared post ids."""
    posts = frozenset(edition.post_ids or ())
    if not posts:
        return {}
    oldest = session.scalar(select(func.min(Post.first_seen_at)).where(Post.id.in_(posts)))
    query = select(Edition.id, Edition.post_ids).where(
        Edition.id != edition.id, Edition.status != EditionStatus.EMPTY)
    if oldest is not None:
        query = query.where(Edition.created_at >= oldest - _CLOCK_SLACK)
    found: dict[int, frozenset[int]] = {}
    for other_id, ids in session.execute(query):
        shared = posts.intersection(ids or ())
        if shared:
            found[int(other_id)] = shared
    return found


def still_new(session: Session, edition: Edition, after_id: int,
              upto_id: int) -> dict[int, frozenset[int]]:
    """For readers ``after_id < id <= upto_id`` who received some of this edition's posts in
    another edition: the posts they have not received (empty: nothing new for them).

    Readers missing from the answer have received none of them: they get the whole edition.
    """
    others = overlapping_editions(session, edition)
    if not others:
        return {}
    received: dict[int, set[int]] = {}
    rows = session.execute(
        select(Delivery.subscriber_id, Delivery.edition_id).where(
            Delivery.edition_id.in_(sorted(others)),
            Delivery.subscriber_id > after_id, Delivery.subscriber_id <= upto_id,
            Delivery.status.not_in([int(s) for s in NOT_RECEIVED])))
    for subscriber_id, other_id in rows:
        received.setdefault(int(subscriber_id), set()).update(others[int(other_id)])
    posts = frozenset(edition.post_ids or ())
    return {sid: posts - got for sid, got in received.items()}


def render_variant(session: Session, settings: Settings, edition: Edition,
                   post_ids: Iterable[int]) -> RenderedEdition:
    """``edition`` rendered with only ``post_ids``, in the edition's own order."""
    order = {pid: i for i, pid in enumerate(edition.post_ids or ())}
    posts = sorted(session.scalars(select(Post).where(Post.id.in_(list(post_ids)))),
                   key=lambda post: order.get(post.id, len(order)))
    rendered = render_posts(session, settings, posts, edition.id)
    return RenderedEdition(clip(rendered.subject, SUBJECT_MAX), rendered.html, rendered.text,
                           len(posts))
