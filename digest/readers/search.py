"""Finding readers for the operator: by address prefix, status and cadence, a page at a time.

Pages are keyset pages, never OFFSET: the cursor is the last row's key (its address when
searching by prefix, its id otherwise), so page 1,000 costs what page 1 costs.

With a prefix the rows come in address order (byte order, the same on both databases). On
PostgreSQL the prefix is a range scan of ``ix_subscribers_email_pattern`` (``email
text_pattern_ops``, migration 0004): ``email LIKE 'ann%'``, ``email ~>~ :after`` and ``ORDER
BY email USING ~<~`` are the operators that index serves whatever the database's collation.

The search ignores case. Addresses are stored with their domain lower-cased but their local
part as the reader typed it (``Ann@example.org``), and the index is on the address itself, so
a case-blind prefix is read as a few case-exact ranges: one per spelling of its first
``_CASED`` letters (``ann`` -> ``ann``, ``Ann``, ``aNn``, ... at most 8), each an index range
with its own LIMIT, merged in address order; the rest of the prefix is compared lower-cased
inside each range. SQLite's LIKE already ignores ASCII case, so it gets one query.

Without a prefix the rows come by id (``ix_subscribers_sendable`` is (status, cadence, id) for
the filters; the primary key otherwise).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Row, Select, func, literal_column, select, text, union_all
from sqlalchemy.orm import Session

from digest.errors import InvalidEmailError, SubscriberError
from digest.readers.addresses import MAX_EMAIL_LENGTH, normalise
from digest.runtime import App
from digest.store.models import MAX_ID, Cadence, Subscriber, SubscriberStatus

__all__ = ["PAGE_SIZE", "ReaderRow", "SearchPage", "search_readers"]

PAGE_SIZE = 50
_MAX_PAGE = 500
_CASED = 3  # leading letters whose case is spelled out: at most 2**3 index ranges
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
    if session.get_bind().dialect.name == "postgresql":
        return _by_address_postgres(session, typed, wanted, after, limit)
    query = select(*_COLUMNS).where(
        Subscriber.email.like(like_pattern(typed), escape="\\"), *wanted)
    if after:
        query = query.where(Subscriber.email > after)
    return list(session.execute(query.order_by(Subscriber.email).limit(limit)))


def _forms(char: str) -> set[str]:
    return {char} | {f for f in (char.lower(), char.upper()) if len(f) == 1}


def spellings(prefix: str, cased: int = _CASED) -> list[str]:
    """Every spelling of ``prefix`` up to and including its ``cased``-th letter, each of
    those letters in either case (the rest of the prefix is compared lower-cased)."""
    options: list[list[str]] = []
    letters = 0
    for char in prefix:
        if letters == cased:
            break
        forms = _forms(char)
        letters += len(forms) > 1
        options.append(sorted(forms))
    return ["".join(chosen) for chosen in itertools.product(*options)]


def _by_address_postgres(session: Session, typed: str, wanted: list[ColumnElement[bool]],
                         after: str | None, limit: int) -> list[Row[Any]]:
    """One index range per spelling, each LIMITed, merged in byte order of the address.

    Only what a range needs is asked of it, so the planner keeps to the index order: the
    lower-cased comparison only when letters past the spelled-out ones need it, the cursor
    only in the range it falls in (a range wholly before it is left out; one after it is
    read from its start). Python compares code points, which orders as UTF-8 bytes do.
    """
    cased = sum(len(_forms(char)) > 1 for char in typed)
    rest = like_pattern(typed.lower()) if cased > _CASED else None
    ordered = text("email USING ~<~")
    branches: list[Select[Any]] = []
    for spelling in spellings(typed):
        part = select(*_COLUMNS).where(
            Subscriber.email.like(like_pattern(spelling), escape="\\"), *wanted)
        if rest is not None:
            part = part.where(func.lower(Subscriber.email).like(rest, escape="\\"))
        if after and after.startswith(spelling):
            part = part.where(Subscriber.email.op("~>~")(after))
        elif after and after > spelling:
            continue  # every address of this range comes before the cursor
        branches.append(select(part.order_by(ordered).limit(limit).subquery()))
    if not branches:
        return []
    merged = union_all(*branches).subquery()
    query = select(*merged.c).order_by(literal_column("email USING ~<~")).limit(limit)
    return list(session.execute(query))
