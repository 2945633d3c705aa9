"""The dashboard's counts read only the rows they report on (migration 0006's indexes), and
still count what the page shows: paused readers, and readers who moved in several weeks."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from alembic import command
from sqlalchemy import create_engine, event, inspect, text
from sqlalchemy.engine import Engine

from digest.delivery.dashboard import edition_outcomes
from digest.readers.census import census, reader_weeks
from digest.store import migrate as schema
from digest.store.models import (
    Cadence,
    Delivery,
    DeliveryStatus,
    Edition,
    EditionStatus,
    Subscriber,
    SubscriberStatus,
)

S = SubscriberStatus
NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
COUNTS_INDEXES = {"ix_subscribers_created", "ix_subscribers_confirmed", "ix_subscribers_left"}


def _reader(n: int, status: S, cadence: Cadence, *, paused: bool = False,
            created: datetime = NOW - timedelta(days=400),
            confirmed: datetime | None = None, left: datetime | None = None) -> Subscriber:
    address = f"reader{n}@example.org"
    return Subscriber(email=address, email_hash=hashlib.sha256(address.encode()).hexdigest(),
                      status=status, cadence=cadence, paused=paused, created_at=created,
                      confirmed_at=confirmed, unsubscribed_at=left)


def test_paused_counts_only_active_readers(app) -> None:
    with app.sessions() as session, session.begin():
        session.add_all([
            _reader(1, S.ACTIVE, Cadence.WEEKLY, paused=True),
            _reader(2, S.ACTIVE, Cadence.WEEKLY, paused=True),
            _reader(3, S.ACTIVE, Cadence.WEEKLY),
            _reader(4, S.ACTIVE, Cadence.INSTANT, paused=True),
            # Paused, then left: no longer a reader the next edition skips.
            _reader(5, S.UNSUBSCRIBED, Cadence.WEEKLY, paused=True),
            _reader(6, S.PENDING, Cadence.DAILY, paused=True),
        ])
    with app.sessions() as session:
        found = census(session)
    assert found.paused_by_cadence == {"weekly": 2, "instant": 1}
    assert found.recipients(Cadence.WEEKLY) == 1 and found.recipients(Cadence.INSTANT) == 0
    assert found.by_status["unsubscribed"] == 1 and found.by_status["pending"] == 1
    assert found.total == 6


def test_a_reader_counts_in_each_week_one_of_their_moves_fell_in(app) -> None:
    monday = datetime(2026, 11, 29, 21, 0, tzinfo=UTC)  # Monday 30 Nov, 00:00 in Istanbul
    with app.sessions() as session, session.begin():
        session.add_all([
            # Signed up five weeks ago, confirmed two weeks ago, complained this week.
            _reader(1, S.COMPLAINED, Cadence.WEEKLY, created=monday - timedelta(weeks=5),
                    confirmed=monday - timedelta(weeks=2), left=monday + timedelta(days=1)),
            # Signed up long ago, confirmed in the first week shown.
            _reader(2, S.ACTIVE, Cadence.DAILY, confirmed=monday - timedelta(weeks=11)),
            # Confirmed just before the first week shown: not counted.
            _reader(3, S.ACTIVE, Cadence.DAILY,
                    confirmed=monday - timedelta(weeks=11, seconds=1)),
            # Erased this week: an unsubscribe.
            _reader(4, S.DELETED, Cadence.WEEKLY, left=NOW - timedelta(minutes=1)),
            # Left, then back and active: the latest move is not a departure.
            _reader(5, S.ACTIVE, Cadence.WEEKLY, left=monday - timedelta(weeks=1)),
        ])
    with app.sessions() as session:
        weeks = reader_weeks(session, NOW, app.settings.tz)
    assert [(w.signups, w.confirmations, w.unsubscribes, w.complaints)
            for w in (weeks[-6], weeks[-3], weeks[-1])] == [(1, 0, 0, 0), (0, 1, 0, 0),
                                                            (0, 0, 1, 1)]
    assert weeks[0].confirmations == 1
    assert sum(w.signups for w in weeks) == 1
    assert sum(w.confirmations for w in weeks) == 2
    assert sum(w.unsubscribes + w.bounces + w.complaints for w in weeks) == 2


@contextmanager
def _statements(engine: Engine) -> Iterator[list[tuple[str, Any]]]:
    seen: list[tuple[str, Any]] = []

    def record(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any,
               executemany: bool) -> None:
        seen.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def _plans(app, count: Callable[[Any], object]) -> list[str]:
    """PostgreSQL's plan for each statement ``count`` runs, with sequential scans priced
    out: one is still chosen where no index can serve the query."""
    with _statements(app.engine) as seen, app.sessions() as session:
        count(session)
    plans = []
    with app.engine.begin() as conn:
        conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
        for statement, parameters in seen:
            rows = conn.exec_driver_sql("EXPLAIN " + statement, parameters).all()
            plans.append("\n".join(row[0] for row in rows))
    return plans


@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)  # plans are PostgreSQL's
def test_the_history_and_outcomes_are_served_by_indexes_on_postgresql(app) -> None:
    with app.sessions() as session, session.begin():
        edition = Edition(key="weekly:1", cadence=Cadence.WEEKLY, status=EditionStatus.SENT,
                          recipient_count=2, post_ids=[], created_at=NOW)
        session.add(edition)
        session.flush()
        session.add_all([Delivery(edition_id=edition.id, subscriber_id=n, at=NOW,
                                  status=int(status))
                         for n, status in ((1, DeliveryStatus.DELIVERED),
                                           (2, DeliveryStatus.BOUNCED))])
    plans = (_plans(app, lambda s: reader_weeks(s, NOW, app.settings.tz))
             + [p for p in _plans(app, edition_outcomes) if "deliveries" in p])
    assert len(plans) == 2  # the history (one statement), the outcomes
    for plan in plans:
        assert "Seq Scan" not in plan, plan
    joined = "\n".join(plans)
    for index in (*COUNTS_INDEXES, "ix_deliveries_outcome"):
        assert index in joined, index


def test_migration_0006_adds_and_removes_its_indexes(tmp_path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'counts.db'}")
    schema.upgrade(engine)

    def indexes() -> set[str]:
        found = inspect(engine)
        return ({i["name"] for i in found.get_indexes("subscribers")}
                | {i["name"] for i in found.get_indexes("deliveries")})

    assert COUNTS_INDEXES | {"ix_deliveries_outcome"} <= indexes()
    cfg = schema.alembic_config(str(engine.url))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0005")
    assert not (COUNTS_INDEXES | {"ix_deliveries_outcome"}) & indexes()
    with engine.begin() as conn:
        assert conn.execute(text("SELECT count(*) FROM subscribers")).scalar() == 0
    engine.dispose()
