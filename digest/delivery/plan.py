"""Who gets an edition: the eligible readers, snapshot into ledger batches of a fixed size."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, func, insert, or_, select
from sqlalchemy.orm import Session

from digest.config import Settings
from digest.mail.transports.base import Transport
from digest.store.models import (
    Batch,
    BatchStatus,
    Cadence,
    Edition,
    EditionStatus,
    Subscriber,
    SubscriberStatus,
)

# When the readers of a delivery slot get a scheduled edition (``digest.slots``).
Release = Callable[[str], datetime]

NO_FOLLOWERS = "no reader follows these posts' topics: nobody gets this digest"
NO_READERS = "no confirmed readers for this cadence yet; the posts wait for the next digest"


def eligible(cadence: Cadence | None,
             max_id: int | None = None) -> list[ColumnElement[bool]]:
    """Who receives an edition of ``cadence`` (None: of any): active, not paused, that
    cadence (snapshot)."""
    conditions = [
        Subscriber.status == SubscriberStatus.ACTIVE,
        Subscriber.paused.is_(False),
    ]
    if cadence is not None:
        conditions.insert(1, Subscriber.cadence == cadence)
    if max_id is not None:
        conditions.append(Subscriber.id <= max_id)
    return conditions


def count_recipients(session: Session, cadence: Cadence) -> int:
    """How many readers an edition of ``cadence`` would go to now."""
    return int(session.scalar(select(func.count(Subscriber.id)).where(*eligible(cadence))) or 0)


def batch_ranges(session: Session, cadence: Cadence, max_id: int, size: int,
                 *only: ColumnElement[bool]) -> list[tuple[int, int, int]]:
    """``(after_id, upto_id, count)`` per batch of ``size`` eligible readers (and ``only``
    those), by id order.

    One pass of ``row_number()`` finds every ``size``-th id; only the boundaries come back,
    never the readers themselves.
    """
    conditions = [*eligible(cadence, max_id), *only]
    ranked = (
        select(Subscriber.id.label("id"),
               func.row_number().over(order_by=Subscriber.id).label("rn"))
        .where(*conditions)
        .subquery()
    )
    bounds = [int(i) for i in session.scalars(
        select(ranked.c.id).where(ranked.c.rn % size == 0).order_by(ranked.c.id)
    )]
    total, last = session.execute(
        select(func.count(Subscriber.id), func.max(Subscriber.id)).where(*conditions)
    ).one()
    if total and (not bounds or bounds[-1] != last):
        bounds.append(int(last))
    ranges, after = [], 0
    for i, upto in enumerate(bounds):
        count = size if (i + 1) * size <= total else int(total) - i * size
        ranges.append((after, upto, count))
        after = upto
    return ranges


def ledger_rows(edition_id: int, ranges: Sequence[tuple[int, int, int]],
                first_seq: int = 1) -> list[dict[str, Any]]:
    """Pending ledger rows for ``(after_id, upto_id, count)`` ranges, numbered from
    ``first_seq``; their ids are ``"<edition>-<seq>"``."""
    return [{"id": f"{edition_id}-{seq}", "edition_id": edition_id, "seq": seq,
             "after_id": after, "upto_id": upto, "size": count,
             "status": BatchStatus.PENDING, "attempts": 0}
            for seq, (after, upto, count) in enumerate(ranges, start=first_seq)]


def slot_ranges(session: Session, cadence: Cadence, max_id: int, size: int,
                *only: ColumnElement[bool]) -> dict[str, list[tuple[int, int, int]]]:
    """Like :func:`batch_ranges`, per delivery slot: each slot's readers in id order, cut
    every ``size`` readers. One pass of ``row_number()`` per slot; only boundaries return."""
    ranked = (
        select(Subscriber.slot.label("slot"), Subscriber.id.label("id"),
               func.row_number().over(partition_by=Subscriber.slot,
                                      order_by=Subscriber.id).label("rn"),
               func.count().over(partition_by=Subscriber.slot).label("n"))
        .where(*eligible(cadence, max_id), *only)
        .subquery()
    )
    found: dict[str, list[tuple[int, int, int]]] = {}
    done: dict[str, tuple[int, int]] = {}  # slot -> (last upto, its row number)
    for slot, upto, rn, _ in session.execute(
            select(ranked.c.slot, ranked.c.id, ranked.c.rn, ranked.c.n)
            .where(or_(ranked.c.rn % size == 0, ranked.c.rn == ranked.c.n))
            .order_by(ranked.c.slot, ranked.c.id)):
        after, before = done.get(slot, (0, 0))
        found.setdefault(str(slot), []).append((after, int(upto), int(rn) - before))
        done[slot] = (int(upto), int(rn))
    # Each slot's last batch reaches up to the snapshot's newest id: a reader whose change of
    # slot the snapshot just missed still falls in a batch of the slot that holds them.
    for ranges in found.values():
        after, _, count = ranges[-1]
        ranges[-1] = (after, max_id, count)
    return found


def plan_batches(session: Session, edition: Edition, batch_size: int,
                 release: Release | None = None, *only: ColumnElement[bool]) -> list[str]:
    """Snapshot the recipients of ``edition`` and write its ledger rows in bulk.

    With ``release`` (a scheduled edition), each delivery slot gets batches of its own,
    due at ``release(slot)``; without, one run of batches over every reader, due at once.
    ``only``: conditions that leave readers out of the counts (those whose topics hold none
    of the posts: the batch gives them no mail). Returns the batch ids, oldest due first.
    """
    max_id = int(session.scalar(select(func.max(Subscriber.id))) or 0)
    rows: list[dict[str, Any]] = []
    if release is None:
        ranges = batch_ranges(session, edition.cadence, max_id, batch_size, *only)
        rows = ledger_rows(edition.id, ranges)
    else:
        per_slot = slot_ranges(session, edition.cadence, max_id, batch_size, *only)
        due = sorted((release(slot), slot) for slot in per_slot)
        for at, slot in due:
            for row in ledger_rows(edition.id, per_slot[slot], first_seq=len(rows) + 1):
                rows.append({**row, "slot": slot, "release_at": at})
    if rows:
        session.execute(insert(Batch), rows)
    edition.max_subscriber_id = max_id
    edition.batch_count = len(rows)
    edition.recipient_count = sum(int(r["size"]) for r in rows)
    if not rows and only and count_recipients(session, edition.cadence):
        # Readers, but none follows these posts' topics: they are announced (sent to nobody),
        # so the next digest moves on instead of choosing the same posts again.
        edition.status = EditionStatus.SENT
        edition.reason = NO_FOLLOWERS
        edition.finished_at = datetime.now(UTC)
    elif not rows:
        # Like "no new posts": nothing is sent, the posts stay new for the next digest, and
        # the EMPTY claim does not block a real send once readers have confirmed.
        edition.status = EditionStatus.EMPTY
        edition.reason = NO_READERS
        edition.finished_at = datetime.now(UTC)
    return [str(r["id"]) for r in rows]


def batch_size_for(settings: Settings, transport: Transport) -> int:
    """Readers per ledger batch: the setting, capped by what one request may carry."""
    return max(1, min(settings.batch_size, transport.max_batch))
