"""Finding readers for the operator: by address prefix, status and cadence, a page at a time.

Pages are keyset pages, never OFFSET: the cursor is the last row's key (its address when
searching by prefix, its id otherwise), so page 1,000 costs what page 1 costs.

With a prefix the search ignores case and the rows come in the order of the lower-cased
address, then the address (byte order, the same on both databases). Addresses are stored with
their domain lower-cased but their local part as the reader typed it (``Ann@example.org``).
On PostgreSQL the prefix is one range scan of ``ix_subscribers_email_lower`` (``lower(email)
text_pattern_ops``, migration 0007): ``lower(email) LIKE 'ann%'``, ``~>~`` and ``ORDER BY ...
USING ~<~`` are the operators that index serves whatever the database's collation. SQLite's
LIKE already ignores ASCII case.

Without a prefix the rows come by id (``ix_subscribers_sendable`` is (status, cadence, id) for
the filters; the primary key otherwise).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Row, and_, func, literal, or_, select, text
from sqlalchemy.orm import Session

from digest.errors import InvalidEmailError, SubscriberError
from digest.readers.addresses import MAX_EMAIL_LENGTH, normalise
from digest.runtime import App
from digest.store.models import MAX_ID, Cadence, Subscriber, SubscriberStatus

__all__ = ["PAGE_SIZE", "ReaderRow", "SearchPage", "search_readers"]

PAGE_SIZE = 50
_MAX_PAGE = 500
_COLUMNS = (Subscriber.id, Subscriber.email, Subscriber.name, Subscriber.status,
            Subscriber.cadence, Subscriber.paused, Subscriber.created_at)


@dataclass(frozen=True)
class ReaderRow:
    """One reader in a list of results (``email`` is None once they were erased)."""

    id: int
    email: str | None
    name: str | None
    status: str
    cadence: str
    paused: bool
    created_at: datetime


@dataclass(frozen=True)
class SearchPage:
    """One page of results and the cursor of the next page (None: this is the last)."""

    readers: list[ReaderRow]
    next_after: str | None


def like_pattern(prefix: str) -> str:
    """``prefix%`` for ``LIKE ... ESCAPE '\\'``, with ``%``, ``_`` and ``\\`` taken literally."""
    escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped + "%"


def search_prefix(query: str) -> str:
    """What the operator typed, as the start of a stored address.

    A whole address is normalised as it was stored (``Ann@Bücher.de`` -> ``Ann@xn--bcher-kva.de``);
    anything else is taken as typed, without surrounding spaces.
    """
    typed = query.strip()
    if "@" in typed:
        try:
            return normalise(typed)
        except InvalidEmailError:
            pass
    return typed[:MAX_EMAIL_LENGTH]


def search_readers(app: App, *, prefix: str | None = None,
                   status: SubscriberStatus | str | None = None,
                   cadence: Cadence | str | None = None, after: str | None = None,
                   limit: int = PAGE_SIZE) -> SearchPage:
    """Readers whose address starts with ``prefix`` (any case), with ``status`` and ``cadence``.

    ``after`` is the ``next_after`` of the previous page. Raises SubscriberError for a status,
    cadence or cursor that is not one.
    """
    limit = max(1, min(limit, _MAX_PAGE))
    wanted = _filters(status, cadence)
    typed = search_prefix(prefix) if prefix else ""
    with app.sessions() as session:
        if typed:
            rows = _by_address(session, typed, wanted, after, limit + 1)
        else:
            rows = _by_id(session, wanted, _id_cursor(after), limit + 1)
    found = [ReaderRow(int(r.id), r.email, r.name, SubscriberStatus(r.status).value,
                       Cadence(r.cadence).value, bool(r.paused), r.created_at)
             for r in rows[:limit]]
    more = len(rows) > limit
    cursor = None
    if more and found:
        last = found[-1]
        cursor = (last.email or "") if typed else str(last.id)
    return SearchPage(found, cursor)


def _filters(status: SubscriberStatus | str | None,
             cadence: Cadence | str | None) -> list[ColumnElement[bool]]:
    wanted: list[ColumnElement[bool]] = []
    try:
        if status:
            wanted.append(Subscriber.status == SubscriberStatus(status))
        if cadence:
            wanted.append(Subscriber.cadence == Cadence(cadence))
    except ValueError as exc:
        raise SubscriberError(f"not a reader status or cadence: {exc}") from exc
    return wanted


def _id_cursor(after: str | None) -> int:
    if not after:
        return 0
    if not after.isdigit() or int(after) > MAX_ID:
        raise SubscriberError("not a page of this list (the cursor is a reader's id)")
    return int(after)


def _by_id(session: Session, wanted: list[ColumnElement[bool]], after: int,
           limit: int) -> list[Row[Any]]:
    query = (select(*_COLUMNS).where(Subscriber.id > after, *wanted)
             .order_by(Subscriber.id).limit(limit))
    return list(session.execute(query))


def _by_address(session: Session, typed: str, wanted: list[ColumnElement[bool]], after: str | None,
                limit: int) -> list[Row[Any]]:
    """Readers whose lower-cased address starts with the lower-cased prefix, after the cursor
    (the previous page's last address), in (lower-cased address, address) order."""
    folded = func.lower(Subscriber.email)
    postgres = session.get_bind().dialect.name == "postgresql"
    # PostgreSQL: the operators of text_pattern_ops (byte order whatever the collation);
    # SQLite compares bytes anyway.
    def gt(left: Any, right: Any) -> ColumnElement[bool]:
        above: ColumnElement[bool] = left.op("~>~")(right) if postgres else left > right
        return above

    query = select(*_COLUMNS).where(folded.like(like_pattern(typed.lower()), escape="\\"),
                                    *wanted)
    if after:
        last = func.lower(literal(after))
        query = query.where(or_(gt(folded, last),
                                and_(folded == last, gt(Subscriber.email, literal(after)))))
    order = ([text("lower(email) USING ~<~"), text("email USING ~<~")] if postgres
             else [folded, Subscriber.email])
    return list(session.execute(query.order_by(*order).limit(limit)))
