"""Readers' own choices through the pages: the time zone and hour at sign-up, and zone, hour,
weekday and topics on the preferences page. Every field is hostile input: a bad value says
what is wrong and changes nothing; a sign-up never fails for one."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

import digest
from digest.readers.addresses import email_hash
from digest.readers.optin import subscribe
from digest.readers.roster import add
from digest.readers.signup import SignupJob, record
from digest.store.models import Cadence, Subscriber, SubscriberStatus, Topic
from digest.tokens import Purpose
from digest.web import reader_assets
from digest.web.app import create_app
from digest.web.jobs import CeleryJobs

CONFIRM = re.compile(r"/confirm/([A-Za-z0-9_.\-]+)")


@pytest.fixture
def client(sqlite_app, limiter):
    with TestClient(create_app(sqlite_app, limiter=limiter)) as made:
        yield made


def _row(app, email) -> Subscriber:
    with app.sessions() as s:
        return s.scalars(select(Subscriber).where(
            Subscriber.email_hash == email_hash(email, app.address_key))).one()


def _choices(app, email):
    row = _row(app, email)
    return (row.timezone, row.delivery_hour, row.delivery_weekday, row.slot, row.topic_ids,
            row.cadence, row.paused)


def _prefs_token(app, email) -> str:
    row = _row(app, email)
    return app.tokens.make(Purpose.PREFERENCES, row.id, row.link_key)


def _confirm(client, transport) -> None:
    token = CONFIRM.search(transport.sent[-1][0].text).group(1)
    assert client.post(f"/confirm/{token}").status_code == 200


def _topics(app) -> dict[str, int]:
    with app.sessions() as s:
        tech = Topic(key="tech", name="Technology")
        art = Topic(key="art", name="Art")
        s.add_all([tech, art, Topic(key="secret", name="Secret", hidden=True)])
        s.flush()
        s.add(Topic(key="technology", name="Tech (old)", merged_into_id=tech.id))
        s.commit()
        return {t.key: t.id for t in s.scalars(select(Topic))}


# --- sign-up -----------------------------------------------------------------------------


def test_signup_stores_the_zone_and_hour_on_the_confirmed_reader(client, sqlite_app,
                                                                 transport):
    r = client.post("/subscribe", data={"email": "tokyo@example.org",
                                        "timezone": "Asia/Tokyo", "hour": "7"})
    assert r.status_code == 200 and "Check your inbox" in r.text
    _confirm(client, transport)
    row = _row(sqlite_app, "tokyo@example.org")
    assert row.status is SubscriberStatus.ACTIVE
    assert (row.timezone, row.delivery_hour, row.delivery_weekday) == ("Asia/Tokyo", 7, None)
    assert row.slot == "Asia/Tokyo||7"
    page = client.get(f"/preferences/{_prefs_token(sqlite_app, 'tokyo@example.org')}")
    assert "Your next digest: <strong>Mondays at 07:00 (Asia/Tokyo)</strong>" in page.text
    assert '<option value="Asia/Tokyo" selected>' in page.text


def test_signup_by_json_takes_the_same_fields(client, sqlite_app):
    r = client.post("/subscribe", json={"email": "j@example.org", "timezone": "America/Lima"})
    assert r.status_code == 200
    assert _row(sqlite_app, "j@example.org").timezone == "America/Lima"
    for address, hour, stored in (("n@example.org", 7, 7), ("b@example.org", True, None),
                                  ("s@example.org", "19", 19)):
        r = client.post("/subscribe", json={"email": address, "hour": hour})
        assert r.status_code == 200
        assert _row(sqlite_app, address).delivery_hour == stored  # a number too; not a bool


@pytest.mark.parametrize("zone, hour", [
    ("../../etc/passwd", "24"), ("Mars/Olympus_Mons", "25"), ("localtime", "-1"),
    ("Asia/Tokyo\x00", "seven"), ("x" * 5000, "07" * 100), ("Europe/Istanbul", ""),
    ("", "")])
def test_a_signup_with_an_unusable_zone_or_hour_still_signs_up(client, sqlite_app, zone, hour):
    """A form scraped onto another site may send anything: the reader gets the operator's."""
    r = client.post("/subscribe", data={"email": "odd@example.org", "timezone": zone,
                                        "hour": hour})
    assert r.status_code == 200 and "Check your inbox" in r.text
    row = _row(sqlite_app, "odd@example.org")
    assert row.status is SubscriberStatus.PENDING
    assert row.timezone is None  # DIGEST_TIMEZONE (Europe/Istanbul) is stored as "the operator's"
    assert row.delivery_hour is None and row.slot == ""


def test_an_anonymous_signup_never_changes_a_confirmed_reader(client, sqlite_app):
    add(sqlite_app, "active@example.org")
    subscribe(sqlite_app, "pending@example.org", ip=None, source="web")
    before = {a: _choices(sqlite_app, a) for a in ("active@example.org", "pending@example.org")}
    for address in before:
        r = client.post("/subscribe", data={"email": address, "timezone": "Pacific/Apia",
                                            "hour": "3"})
        assert r.status_code == 200
    assert _choices(sqlite_app, "active@example.org") == before["active@example.org"]
    # Not confirmed yet: their latest sign-up is the choice the confirmation takes.
    assert _choices(sqlite_app, "pending@example.org") != before["pending@example.org"]


def test_the_form_shown_again_keeps_the_chosen_zone_and_hour(client):
    r = client.post("/subscribe", data={"email": "not an address", "timezone": "Asia/Tokyo",
                                        "hour": "21"})
    assert r.status_code == 422
    assert '<option value="Asia/Tokyo" selected>' in r.text
    assert '<option value="21" selected>' in r.text
    assert "data-guess-zone" not in r.text  # the reader's own pick is not overridden


def test_queued_signups_old_and_new_are_recorded(sqlite_app, transport, limiter, monkeypatch):
    """A Celery message queued before the zone existed (four arguments) is still taken."""
    from digest import tasks

    monkeypatch.setattr("digest.tasks._app", lambda: sqlite_app)
    queued: list[tuple[str, list]] = []
    jobs = CeleryJobs(lambda name, args: queued.append((name, args)))
    with TestClient(create_app(sqlite_app, limiter=limiter, jobs=jobs)) as client:
        client.post("/subscribe", data={"email": "new@example.org", "timezone": "Asia/Tokyo",
                                        "hour": "6"})
        client.post("/subscribe", data={"email": "plain@example.org"})
    (_, new_args), (_, plain_args) = queued
    assert len(new_args) == 6 and len(plain_args) == 4  # an old worker takes the plain one
    old_message = ["old@example.org", None, "web", "2026-12-01T10:00:00+00:00"]
    for args in (new_args, plain_args, old_message):
        result = tasks.signup_task.apply(args=args)
        assert result.successful(), result.traceback
    assert _row(sqlite_app, "new@example.org").slot == "Asia/Tokyo||6"
    assert _row(sqlite_app, "plain@example.org").slot == ""
    assert _row(sqlite_app, "old@example.org").status is SubscriberStatus.PENDING
    # A message is input too: a forged zone in it is dropped, not stored.
    record(sqlite_app, SignupJob.from_args("forged@example.org", None, "web",
                                           "2026-12-01T10:00:00+00:00", "../../etc", 99))
    assert _row(sqlite_app, "forged@example.org").slot == ""


def test_the_zone_script_is_served_and_nothing_else(client):
    r = client.get("/static/reader/timezone.js")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/javascript")
    assert "resolvedOptions().timeZone" in r.text
    for name in ("../readers.py", "..%2Freaders.py", "console.css", "timezone.js.map"):
        assert client.get(f"/static/reader/{name}").status_code == 404, name
    # Inside the package, so the wheel (packages = ["digest"]) carries it like the console's.
    assert reader_assets.STATIC_DIR.is_relative_to(Path(digest.__file__).parent)
    assert (reader_assets.STATIC_DIR / "timezone.js").is_file()


# --- preferences -------------------------------------------------------------------------


def test_preferences_change_zone_hour_weekday_and_topics(client, sqlite_app):
    ids = _topics(sqlite_app)
    add(sqlite_app, "pat@example.org")
    token = _prefs_token(sqlite_app, "pat@example.org")
    page = client.get(f"/preferences/{token}").text
    assert "Your next digest: <strong>Mondays at 08:00 (Europe/Istanbul)</strong>" in page
    assert '<option value="Europe/Istanbul" selected>' in page and "data-guess-zone" in page
    # Visible topics only, by name: not hidden, not merged into another.
    assert re.findall(r'<label for="topic-\d+">([^<]+)</label>', page) == ["Art", "Technology"]

    r = client.post(f"/preferences/{token}", data={
        "action": "save", "cadence": "weekly", "paused": "0", "timezone": "Asia/Tokyo",
        "hour": "7", "weekday": "2", "topics_shown": "1", "topic": [str(ids["tech"])]})
    assert r.status_code == 200
    assert "your digest now comes Wednesdays at 07:00 (Asia/Tokyo)" in r.text
    assert "your topics are changed" in r.text
    row = _row(sqlite_app, "pat@example.org")
    assert (row.timezone, row.delivery_hour, row.delivery_weekday) == ("Asia/Tokyo", 7, 2)
    assert row.slot == "Asia/Tokyo|2|7" and row.slot_history == [["", None]]
    assert row.slot_changed_at is not None
    assert row.topic_ids == [ids["tech"]]
    page = client.get(f"/preferences/{token}").text
    assert "Your next digest: <strong>Wednesdays at 07:00 (Asia/Tokyo)</strong>" in page
    assert f'id="topic-{ids["tech"]}" name="topic" value="{ids["tech"]}" checked' in page
    assert "data-guess-zone" not in page  # a saved zone is never replaced by the browser's

    # Back to the schedule's time and day, and every topic (no box ticked).
    r = client.post(f"/preferences/{token}", data={
        "timezone": "Europe/Istanbul", "hour": "", "weekday": "", "topics_shown": "1"})
    assert r.status_code == 200 and "you now get every topic" in r.text
    row = _row(sqlite_app, "pat@example.org")
    assert (row.timezone, row.delivery_hour, row.delivery_weekday, row.topic_ids) == (
        None, None, None, None)
    assert row.slot == ""


def test_a_form_without_the_fields_keeps_the_choices(client, sqlite_app):
    ids = _topics(sqlite_app)
    add(sqlite_app, "keep@example.org")
    token = _prefs_token(sqlite_app, "keep@example.org")
    client.post(f"/preferences/{token}", data={"timezone": "Asia/Tokyo", "hour": "6",
                                                "weekday": "4", "topics_shown": "1",
                                                "topic": [str(ids["art"])]})
    before = _choices(sqlite_app, "keep@example.org")
    r = client.post(f"/preferences/{token}", data={"paused": ["0", "1"]})
    assert r.status_code == 200
    after = _choices(sqlite_app, "keep@example.org")
    assert after[:6] == before[:6] and after[6] is True
    # Switching to daily keeps the weekday for a later return to weekly.
    client.post(f"/preferences/{token}", data={"cadence": "daily"})
    page = client.get(f"/preferences/{token}").text
    assert "every day at 06:00 (Asia/Tokyo)" not in page  # paused: no "next digest" line
    assert 'name="weekday"' not in page
    assert _row(sqlite_app, "keep@example.org").delivery_weekday == 4


HOSTILE = [
    ({"hour": "25"}, "the hour must be a whole number from 0 to 23"),
    ({"hour": "-1"}, "the hour must be a whole number from 0 to 23"),
    ({"hour": "٣"}, "the hour must be a whole number from 0 to 23"),  # an Arabic-Indic 3
    ({"hour": "1e1"}, "the hour must be a whole number from 0 to 23"),
    ({"weekday": "7"}, "the day (0 Monday to 6 Sunday) must be a whole number from 0 to 6"),
    ({"weekday": "-1"}, "the day (0 Monday to 6 Sunday) must be a whole number from 0 to 6"),
    ({"timezone": "../../etc/passwd"}, "unknown time zone"),
    ({"timezone": "localtime"}, "unknown time zone"),
    ({"timezone": "Asia/Tokyo" * 20}, "unknown time zone"),
    ({"topics_shown": "1", "topic": ["abc"]}, "a topic must be one of the list"),
    ({"topics_shown": "1", "topic": ["99999"]}, "a ticked topic is no longer offered"),
    ({"topics_shown": "1", "topic": ["HIDDEN"]}, "a ticked topic is no longer offered"),
    ({"topics_shown": "1", "topic": [str(n) for n in range(600)]}, "too many topics"),
]


@pytest.mark.parametrize("fields, message", HOSTILE)
def test_hostile_choices_say_what_is_wrong_and_change_nothing(client, sqlite_app, fields,
                                                              message):
    ids = _topics(sqlite_app)
    add(sqlite_app, "target@example.org")
    token = _prefs_token(sqlite_app, "target@example.org")
    client.post(f"/preferences/{token}", data={"timezone": "Asia/Tokyo", "hour": "6"})
    before = _choices(sqlite_app, "target@example.org")
    if fields.get("topic") == ["HIDDEN"]:
        fields = {**fields, "topic": [str(ids["secret"])]}
    # Valid changes beside the bad field are not half-applied either.
    data = {"cadence": "daily", "paused": "1", "timezone": "America/Lima", "hour": "9",
            "weekday": "3", **fields}
    r = client.post(f"/preferences/{token}", data=data)
    assert r.status_code == 422
    assert message[0].upper() + message[1:] in r.text
    assert 'role="alert"' in r.text
    assert _choices(sqlite_app, "target@example.org") == before
    assert before[5] is Cadence.WEEKLY and before[6] is False


def test_ten_thousand_topic_ids_are_refused_before_they_are_read(client, sqlite_app):
    _topics(sqlite_app)
    add(sqlite_app, "flood@example.org")
    token = _prefs_token(sqlite_app, "flood@example.org")
    before = _choices(sqlite_app, "flood@example.org")
    r = client.post(f"/preferences/{token}", data={
        "topics_shown": "1", "topic": [str(n) for n in range(10_000)], "hour": "3"})
    assert r.status_code in (413, 422)  # the body limit, or the topic count
    assert _choices(sqlite_app, "flood@example.org") == before


def test_topics_are_offered_only_when_there_are_some(client, sqlite_app):
    add(sqlite_app, "none@example.org")
    page = client.get(f"/preferences/{_prefs_token(sqlite_app, 'none@example.org')}").text
    assert "Topics" not in page and "topics_shown" not in page


def test_download_has_the_choices_and_delete_forgets_them(client, sqlite_app):
    add(sqlite_app, "gone@example.org")
    token = _prefs_token(sqlite_app, "gone@example.org")
    client.post(f"/preferences/{token}", data={"timezone": "Asia/Tokyo", "hour": "6"})
    data = client.post(f"/preferences/{token}", data={"action": "download"}).json()
    assert (data["timezone"], data["delivery_hour"]) == ("Asia/Tokyo", 6)
    row_id = _row(sqlite_app, "gone@example.org").id
    assert client.post(f"/preferences/{token}",
                       data={"action": "delete", "sure": "1"}).status_code == 200
    with sqlite_app.sessions() as s:
        row = s.get(Subscriber, row_id)
        assert (row.timezone, row.delivery_hour, row.slot, row.slot_history) == (
            None, None, "", None)


def test_a_merged_topic_shows_ticked_as_the_one_it_joined(client, sqlite_app):
    from digest.feeds.topic_catalog import merge_topic
    from digest.store.sessions import transaction

    ids = _topics(sqlite_app)
    add(sqlite_app, "kim@example.org")
    token = _prefs_token(sqlite_app, "kim@example.org")
    others = [key for key in ids if key != "tech"]
    r = client.post(f"/preferences/{token}", data={
        "cadence": "weekly", "topics_shown": "1", "topic": [str(ids[others[0]])]})
    assert r.status_code == 200
    with transaction(sqlite_app.sessions) as s:
        merge_topic(s, ids[others[0]], ids["tech"])
    page = client.get(f"/preferences/{token}").text
    ticked = re.findall(r'id="topic-(\d+)" name="topic" value="\d+" checked', page)
    assert ticked == [str(ids["tech"])]  # what they get now, so a save keeps it


def test_the_browsers_zone_is_offered_only_to_a_reader_who_never_chose(client, sqlite_app):
    add(sqlite_app, "new@example.org")
    add(sqlite_app, "chose@example.org")
    fresh = client.get(f"/preferences/{_prefs_token(sqlite_app, 'new@example.org')}").text
    assert "data-guess-zone" in fresh
    token = _prefs_token(sqlite_app, "chose@example.org")
    # They keep the operator's zone on purpose (stored as NULL) and pick an hour.
    client.post(f"/preferences/{token}", data={"cadence": "weekly", "timezone": "Europe/Istanbul",
                                               "hour": "7"})
    assert _row(sqlite_app, "chose@example.org").timezone is None
    assert "data-guess-zone" not in client.get(f"/preferences/{token}").text
