"""``readers.choices`` on SQLite and PostgreSQL: what a reader may choose, how a hostile value
is refused, and that the slot is kept through ``digest.slots.set_slot``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from digest.errors import SubscriberError
from digest.readers import choices
from digest.readers.choices import ChoiceError, Choices
from digest.readers.optin import subscribe
from digest.readers.preferences import delete_me, export_my_data, save_preferences
from digest.readers.roster import add
from digest.store.models import Cadence, Subscriber, Topic
from digest.tokens import Purpose

NOW = datetime(2026, 12, 7, 9, tzinfo=UTC)


def _reader(app, address: str) -> Subscriber:
    with app.sessions() as s:
        return s.scalars(select(Subscriber).where(Subscriber.email == address)).one()


def _token(app, address: str) -> str:
    row = _reader(app, address)
    return app.tokens.make(Purpose.PREFERENCES, row.id, row.link_key)


def _topics(app) -> dict[str, int]:
    with app.sessions() as s, s.begin():
        main, other = Topic(key="b", name="Books"), Topic(key="a", name="Art")
        s.add_all([main, other, Topic(key="h", name="Hidden", hidden=True)])
        s.flush()
        s.add(Topic(key="bk", name="Bookish", merged_into_id=main.id))
    with app.sessions() as s:
        return {t.key: t.id for t in s.scalars(select(Topic))}


def test_only_visible_topics_are_offered_by_name(app) -> None:
    ids = _topics(app)
    with app.sessions() as s:
        assert [t.id for t in choices.visible_topics(s)] == [ids["a"], ids["b"]]
        assert choices.parse_topics(s, [str(ids["b"]), f" {ids['a']} ", str(ids["b"])]) == sorted(
            [ids["a"], ids["b"]])
        assert choices.parse_topics(s, []) is None
        for foreign in ([str(ids["h"])], [str(ids["bk"])], ["123456789"]):
            with pytest.raises(ChoiceError, match="no longer offered"):
                choices.parse_topics(s, foreign)
        for junk in (["1.5"], ["-1"], ["\uff11"], ["9" * 40], [""]):
            with pytest.raises(ChoiceError, match="one of the list"):
                choices.parse_topics(s, junk)
        with pytest.raises(ChoiceError, match="too many topics"):
            choices.parse_topics(s, ["1"] * (choices.MAX_TOPICS + 1))


def test_zones_hours_and_weekdays_are_checked(sqlite_app) -> None:
    settings = sqlite_app.settings
    assert choices.parse_zone(settings, " Asia/Tokyo ") == "Asia/Tokyo"
    assert choices.parse_zone(settings, settings.timezone) is None  # the operator's: NULL
    assert choices.parse_zone(settings, "") is None
    for bad in ("../../etc/passwd", "/etc/localtime", "localtime", "Factory", "asia/tokyo",
                "Asia/Tokyo/", "X" * 100, "Asia/Tokyo\x00"):
        with pytest.raises(ChoiceError, match="unknown time zone"):
            choices.parse_zone(settings, bad)
    assert [choices.parse_hour(h) for h in ("0", "07", "23", "", None)] == [0, 7, 23, None, None]
    assert [choices.parse_weekday(d) for d in ("0", "6", "")] == [0, 6, None]
    for bad in ("24", "-1", "+1", "1.0", "٣", "007", "x"):
        with pytest.raises(ChoiceError, match="from 0 to 23"):
            choices.parse_hour(bad)
    for bad in ("7", "-0", "mon"):
        with pytest.raises(ChoiceError, match="from 0 to 6"):
            choices.parse_weekday(bad)
    assert issubclass(ChoiceError, SubscriberError)  # the pages' 422 for a reader's mistake
    # A sign-up drops what it cannot use instead of failing.
    slot = choices.signup_slot(settings, "../../etc", "99")
    assert (slot.timezone, slot.weekday, slot.hour) == (None, None, None)
    slot = choices.signup_slot(settings, "Asia/Tokyo", 6)
    assert (slot.timezone, slot.hour) == ("Asia/Tokyo", 6)


def test_saving_choices_keeps_the_slot_bookkeeping_and_a_bad_field_changes_nothing(app):
    ids = _topics(app)
    add(app, "r@example.org")
    token = _token(app, "r@example.org")
    save_preferences(app, token, chosen_slot=Choices("Asia/Tokyo", "7", "2", [str(ids["a"])]),
                     now=NOW)
    row = _reader(app, "r@example.org")
    assert (row.slot, row.slot_history, row.slot_changed_at) == ("Asia/Tokyo|2|7", [["", None]],
                                                                 NOW)
    assert row.topic_ids == [ids["a"]]
    before = (row.slot, row.slot_history, row.slot_changed_at, row.topic_ids, row.cadence)
    for bad in (Choices(hour="24"), Choices(weekday="9"), Choices(timezone="Nowhere/City"),
                Choices("America/Lima", "5", "1", ["x"])):
        with pytest.raises(ChoiceError):
            save_preferences(app, token, cadence="daily", chosen_slot=bad,
                             now=NOW + timedelta(hours=1))
        row = _reader(app, "r@example.org")
        assert (row.slot, row.slot_history, row.slot_changed_at, row.topic_ids,
                row.cadence) == before
    # Fields not sent are kept; a second change soon after remembers both earlier slots.
    save_preferences(app, token, chosen_slot=Choices(hour="9"), now=NOW + timedelta(days=1))
    row = _reader(app, "r@example.org")
    assert (row.slot, row.slot_history) == (
        "Asia/Tokyo|2|9", [["", None], ["Asia/Tokyo|2|7", NOW.isoformat()]])
    assert row.topic_ids == [ids["a"]]
    data = export_my_data(app, token)
    assert (data["timezone"], data["delivery_hour"], data["delivery_weekday"],
            data["topic_ids"]) == ("Asia/Tokyo", 9, 2, [ids["a"]])
    delete_me(app, token)
    with app.sessions() as s:
        gone = s.get(Subscriber, row.id)
        assert (gone.timezone, gone.delivery_hour, gone.delivery_weekday, gone.slot,
                gone.slot_history, gone.topic_ids) == (None, None, None, "", None, None)


def test_signup_sets_the_slot_of_a_reader_not_yet_confirmed_only(app, transport) -> None:
    slot = choices.signup_slot(app.settings, "Asia/Tokyo", "6")
    subscribe(app, "new@example.org", ip=None, source="web", slot=slot, now=NOW)
    row = _reader(app, "new@example.org")
    assert (row.timezone, row.delivery_hour, row.slot) == ("Asia/Tokyo", 6, "Asia/Tokyo||6")
    add(app, "known@example.org")
    other = choices.signup_slot(app.settings, "America/Lima", "3")
    for address in ("new@example.org", "known@example.org"):
        subscribe(app, address, ip=None, source="web", slot=other, now=NOW + timedelta(hours=1))
    # Still pending: the last sign-up before the confirmation holds. Confirmed: never changed.
    assert _reader(app, "new@example.org").slot == "America/Lima||3"
    assert _reader(app, "known@example.org").slot == ""


@pytest.mark.parametrize("schedule, cadence, expected", [
    ("0 8 * * mon", Cadence.WEEKLY, "Mondays at 08:00 (Europe/Istanbul)"),
    ("30 6 * * sun", Cadence.WEEKLY, "Sundays at 06:30 (Europe/Istanbul)"),
    ("0 8 * * mon", Cadence.DAILY, "every day at 08:00 (Europe/Istanbul)"),
    ("0 8 * * mon", Cadence.INSTANT, "as soon as a post is out"),
])
def test_the_reader_is_told_when_their_digest_comes(tmp_path, schedule, cadence, expected):
    from tests.conftest import make_settings

    settings = make_settings(tmp_path, schedule=schedule)
    reader = Subscriber(cadence=cadence)
    assert choices.describe_choice(settings, reader) == expected
    assert choices.schedule_time(settings) == schedule.split()[1].zfill(2) + ":" + (
        schedule.split()[0].zfill(2))
