"""When a period's edition reaches a reader's slot (``digest.slots``), on the clock alone."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from itertools import pairwise
from pathlib import Path

from digest.slots import Slot, describe, parse_slot, release_at, set_slot, slot_at, slot_key
from digest.store.models import Cadence, Subscriber
from tests.conftest import make_settings

MONDAY = date(2027, 3, 1)


def _settings(tmp_path: Path, schedule: str = "0 8 * * mon", zone: str = "Europe/London"):
    return make_settings(tmp_path, schedule=schedule, timezone=zone)


def test_a_slot_is_read_on_the_readers_own_calendar(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    assert release_at(settings, Cadence.WEEKLY, MONDAY, Slot()) == \
        datetime(2027, 3, 1, 8, 0, tzinfo=UTC)  # the operator's: 08:00 in London (GMT)
    tokyo = Slot("Asia/Tokyo", None, 8)
    assert release_at(settings, Cadence.WEEKLY, MONDAY, tokyo) == \
        datetime(2027, 2, 28, 23, 0, tzinfo=UTC)  # Monday 08:00 in Tokyo, Sunday in UTC
    friday = Slot("America/Los_Angeles", 4, 18)
    assert release_at(settings, Cadence.WEEKLY, MONDAY, friday) == \
        datetime(2027, 3, 6, 2, 0, tzinfo=UTC)  # Friday 5 March 18:00 PST
    assert release_at(settings, Cadence.DAILY, MONDAY, friday) == \
        datetime(2027, 3, 2, 2, 0, tzinfo=UTC)  # daily: the weekday does not count
    assert describe(settings, Cadence.WEEKLY, friday) == \
        "Fridays at 18:00 (America/Los_Angeles)"


def test_a_wall_time_skipped_or_doubled_by_dst_comes_once(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    berlin = Slot("Europe/Berlin", None, 2)
    # 28 March 2027 02:00-03:00 does not exist in Berlin: read with the offset before (CET).
    assert release_at(settings, Cadence.DAILY, date(2027, 3, 28), berlin) == \
        datetime(2027, 3, 28, 1, 0, tzinfo=UTC)
    # 31 October 2027 02:00-03:00 happens twice: the first time (CEST).
    assert release_at(settings, Cadence.DAILY, date(2027, 10, 31), berlin) == \
        datetime(2027, 10, 31, 0, 0, tzinfo=UTC)
    days = [release_at(settings, Cadence.DAILY, date(2027, 10, 30) + timedelta(days=n), berlin)
            for n in range(3)]
    assert [b - a for a, b in pairwise(days)] == [timedelta(hours=24),
                                                                     timedelta(hours=25)]


def test_a_weekday_counts_only_when_the_schedule_fires_on_one_weekday(tmp_path: Path) -> None:
    twice = _settings(tmp_path, schedule="0 8 * * mon,thu")
    friday = Slot("Europe/London", 4, 9)
    monday_period = release_at(twice, Cadence.WEEKLY, MONDAY, friday)
    thursday_period = release_at(twice, Cadence.WEEKLY, MONDAY + timedelta(days=3), friday)
    # Both periods on the same Friday would be two digests at once: the weekday is ignored.
    assert monday_period == datetime(2027, 3, 1, 9, 0, tzinfo=UTC)
    assert thursday_period == datetime(2027, 3, 4, 9, 0, tzinfo=UTC)
    assert describe(twice, Cadence.WEEKLY, friday) == "on the schedule's day at 09:00 " \
        "(Europe/London)"


def test_keys_round_trip_and_a_change_keeps_the_key_of_before(tmp_path: Path) -> None:
    assert slot_key(None, None, None) == "" and parse_slot("") == Slot()
    for slot in (Slot("Asia/Kolkata", None, 7), Slot(None, 6, None), Slot("UTC", 0, 0)):
        assert parse_slot(slot.key) == slot
    assert parse_slot("Asia/Tokyo|9|99") == Slot("Asia/Tokyo", None, None)  # unreadable parts
    assert parse_slot("Asia/Tokyo|²|٣") == Slot("Asia/Tokyo", None, None)
    reader = Subscriber(slot="")
    start = datetime(2027, 3, 1, tzinfo=UTC)
    day = timedelta(days=1)
    assert set_slot(reader, Slot("Asia/Tokyo", None, 8), start)
    assert set_slot(reader, Slot("Asia/Tokyo", None, 20), start + day)
    assert not set_slot(reader, Slot("Asia/Tokyo", None, 20), start + 2 * day)

    def at(when: datetime) -> str | None:
        return slot_at(reader.slot, reader.slot_changed_at, reader.slot_history, when)

    # An edition planned at any moment gets the slot the reader had then, however many
    # changes came after it.
    assert at(start - day) == "" and at(start + day / 2) == "Asia/Tokyo||8"
    assert at(start + 3 * day) == "Asia/Tokyo||20"
    # Slots that ended more than CHANGE_MEMORY ago are forgotten.
    assert set_slot(reader, Slot(None, None, None), start + 30 * day)
    assert reader.slot_history == [["Asia/Tokyo||20", (start + day).isoformat()]]
    assert at(start + 29 * day) == "Asia/Tokyo||20" and at(start + day / 2) is None


def test_a_zone_this_host_does_not_know_falls_back_to_the_operators(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    lost = Slot("Mars/Olympus_Mons", None, 9)
    assert release_at(settings, Cadence.DAILY, MONDAY, lost) == \
        datetime(2027, 3, 1, 9, 0, tzinfo=UTC)  # 09:00 in London, not an exception
