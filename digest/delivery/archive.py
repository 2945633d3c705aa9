"""Which editions the public archive shows: those that reached readers, each set of posts once.

The rule lives here, beside the editions it reads; ``web/archive.py`` only renders.
"""

from __future__ import annotations

from sqlalchemy import and_, exists, or_, select
from sqlalchemy.orm import Session

from digest.store.models import Batch, BatchStatus, Edition, EditionStatus

__all__ = ["VISIBLE", "public_edition", "public_editions"]

# Shown once it has reached readers: sent, or still sending (a large fan-out, a resend) with
# a batch already out, whose readers may click "View in browser".
VISIBLE = or_(Edition.status == EditionStatus.SENT,
              and_(Edition.status == EditionStatus.SENDING,
                   exists().where(Batch.edition_id == Edition.id,
                                  Batch.status == BatchStatus.SENT)))


def public_edition(session: Session, edition_id: int) -> Edition | None:
    """Edition ``edition_id`` if the archive shows it, else None."""
    return session.scalars(select(Edition).where(Edition.id == edition_id, VISIBLE)).first()


def public_editions(session: Session, limit: int) -> list[Edition]:
    """Sent editions, newest first, each set of posts once.

    The same posts can go out in more than one edition: to weekly and to daily readers, by
    hand and then by the schedule (before manual sends stopped claiming them twice), or in an
    old forced send. A visitor sees one digest per set of posts: the newest that sent it.
    """
    query = (
        select(Edition)
        .where(VISIBLE)
        .order_by(Edition.created_at.desc(), Edition.id.desc())
        .limit(limit * 4)
    )
    seen: set[frozenset[int]] = set()
    shown: list[Edition] = []
    for edition in session.scalars(query):
        posts = frozenset(edition.post_ids or ())
        if posts and posts in seen:
            continue
        seen.add(posts)
        shown.append(edition)
        if len(shown) == limit:
            break
    return shown
