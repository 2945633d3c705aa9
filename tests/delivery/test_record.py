"""The per-reader delivery record, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from digest.delivery import record
from digest.store.models import Cadence, DeliveryStatus, Edition, EditionStatus
from digest.store.sessions import transaction

T0 = datetime(2026, 11, 23, 5, 0, tzinfo=UTC)


def _edition(app) -> int:
    with transaction(app.sessions) as s:
        edition = Edition(key="weekly:2026-11-23", cadence=Cadence.WEEKLY,
                          status=EditionStatus.SENDING)
        s.add(edition)
        s.flush()
        return edition.id


def test_handed_rows_are_written_once_and_found_again(app) -> None:
    edition_id = _edition(app)
    with transaction(app.sessions) as s:
        record.record_handed(s, edition_id, list(range(1, 1001)), T0)
    with transaction(app.sessions) as s:  # a re-driven batch records only the rest
        record.record_handed(s, edition_id, list(range(990, 1011)), T0)
    with app.sessions() as s:
        # Sparse ids (one delivery slot's readers) and dense ones alike.
        assert record.already_handed(s, edition_id, [5, 1000, 1010, 2000]) == {5, 1000, 1010}
        assert record.already_handed(s, edition_id, range(995, 1015)) == set(range(995, 1011))
        assert record.counts(s, edition_id) == {DeliveryStatus.HANDED: 1010}


def test_events_move_forward_and_never_back(app) -> None:
    edition_id = _edition(app)
    with transaction(app.sessions) as s:
        record.record_handed(s, edition_id, [1, 2], T0)
    later = T0 + timedelta(minutes=1)
    with transaction(app.sessions) as s:
        assert record.apply_event(s, edition_id, 1, DeliveryStatus.DELIVERED, later, "m1")
        assert not record.apply_event(s, edition_id, 1, DeliveryStatus.PROCESSED, later)
        assert record.apply_event(s, edition_id, 3, DeliveryStatus.PROCESSED, later)
    with transaction(app.sessions) as s:  # the worker's own record after the event: no clash
        record.record_handed(s, edition_id, [3, 4], T0)
    with app.sessions() as s:
        assert record.counts(s, edition_id) == {DeliveryStatus.DELIVERED: 1,
                                                DeliveryStatus.HANDED: 2,
                                                DeliveryStatus.PROCESSED: 1}


def test_prune_forgets_the_rows_of_old_editions(app) -> None:
    old = _edition(app)
    with transaction(app.sessions) as s:
        s.get(Edition, old).created_at = T0
        recent = Edition(key="weekly:2026-11-30", cadence=Cadence.WEEKLY,
                         status=EditionStatus.SENDING, created_at=T0 + timedelta(days=7))
        s.add(recent)
        s.flush()
        record.record_handed(s, old, [1, 2], T0)
        record.record_handed(s, recent.id, [1], T0 + timedelta(days=7))
    with transaction(app.sessions) as s:
        assert record.prune(s, T0 + timedelta(days=1)) == 2
    with app.sessions() as s:
        assert record.already_handed(s, old, [1, 2]) == set()
        assert record.already_handed(s, recent.id, [1]) == {1}
