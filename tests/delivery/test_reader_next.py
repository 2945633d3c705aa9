"""What one reader gets next, and when on their own clock: the service, `digest preview
--reader` and the console's page for it. SQLite and PostgreSQL for the service."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from digest.cli import cli
from digest.delivery.reader_next import next_for_reader
from digest.delivery.scheduled import run_tick
from digest.errors import SubscriberError
from digest.runtime import App
from digest.slots import Slot, set_slot
from digest.store.models import Post, Subscriber, Topic
from digest.store.sessions import transaction
from tests.delivery_helpers import add_post, add_readers
from tests.web.console_client import signed_in_client

WEDNESDAY = datetime(2027, 3, 3, 12, 0, tzinfo=UTC)
TOKYO_MONDAY = datetime(2027, 3, 7, 23, 0, tzinfo=UTC)  # Monday 8 March, 08:00 in Tokyo
LA_MONDAY = datetime(2027, 3, 8, 15, 0, tzinfo=UTC)  # Monday 8 March, 07:00 in Los Angeles


def _world(app: App) -> None:
    """Posts in Russia, in Trade, and one with no topic; reader 0 in Tokyo at 08:00 follows
    Russia, reader 1 in Los Angeles at 07:00 follows Trade, reader 2 keeps everything."""
    with transaction(app.sessions) as s:
        russia, trade = Topic(key="russia", name="Russia"), Topic(key="trade", name="Trade")
        s.add_all([russia, trade])
        s.flush()
        topics = {"Russia": russia.id, "Trade": trade.id}
    for title, topic in (("Moscow talks open", "Russia"), ("Tariffs cut", "Trade"),
                         ("Editor's note", None)):
        pid = add_post(app, title, first_seen=WEDNESDAY - timedelta(days=1))
        with transaction(app.sessions) as s:
            s.get_one(Post, pid).topic_ids = [topics[topic]] if topic else []
    add_readers(app, 3)
    with transaction(app.sessions) as s:
        readers = list(s.scalars(select(Subscriber).order_by(Subscriber.id)))
        set_slot(readers[0], Slot("Asia/Tokyo", None, 8), WEDNESDAY - timedelta(days=30))
        readers[0].topic_ids = [topics["Russia"]]
        set_slot(readers[1], Slot("America/Los_Angeles", None, 7), WEDNESDAY - timedelta(days=30))
        readers[1].topic_ids = [topics["Trade"]]


def test_a_reader_sees_their_own_posts_at_their_own_hour(app: App) -> None:
    _world(app)
    tokyo = next_for_reader(app, "reader0@example.org", now=WEDNESDAY)
    assert tokyo.when == TOKYO_MONDAY and tokyo.edition_id is None
    assert tokyo.local_when is not None and (tokyo.local_when.weekday(),
                                            tokyo.local_when.hour) == (0, 8)
    assert tokyo.schedule == "Mondays at 08:00 (Asia/Tokyo)"
    assert tokyo.posts == ("Moscow talks open", "Editor's note")
    assert tokyo.mail is not None and "Tariffs cut" not in tokyo.mail.text
    assert "Moscow talks open" in tokyo.mail.html
    everyone = next_for_reader(app, "reader2@example.org", now=WEDNESDAY)
    assert everyone.posts == ("Moscow talks open", "Tariffs cut", "Editor's note")
    assert everyone.local_when is not None and everyone.local_when.hour == 8  # Istanbul's


def test_once_claimed_a_waiting_reader_sees_that_edition_and_a_served_one_the_next(
        app: App, transport) -> None:
    _world(app)
    run_tick(app, TOKYO_MONDAY)  # the edition is claimed; Tokyo's batch goes out
    assert transport.recipients == ["reader0@example.org"]
    waiting = next_for_reader(app, "reader1@example.org", now=TOKYO_MONDAY)
    assert waiting.edition_id is not None and waiting.when == LA_MONDAY
    assert waiting.posts == ("Tariffs cut", "Editor's note")
    served = next_for_reader(app, "reader0@example.org", now=TOKYO_MONDAY)
    assert served.edition_id is None and served.when == TOKYO_MONDAY + timedelta(days=7)
    assert served.posts == () and served.mail is None and "nothing new" in (served.reason or "")


def test_a_reader_who_gets_nothing_is_told_why(app: App) -> None:
    _world(app)
    with pytest.raises(SubscriberError, match="no reader"):
        next_for_reader(app, "nobody@example.org", now=WEDNESDAY)
    with transaction(app.sessions) as s:
        s.get_one(Subscriber, 3).paused = True
    paused = next_for_reader(app, "reader2@example.org", now=WEDNESDAY)
    assert paused.reason is not None and paused.reason.startswith("paused")


def test_the_cli_and_the_console_show_it(sqlite_app: App, tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    app = sqlite_app
    _world(app)
    now = datetime.now(UTC)
    with transaction(app.sessions) as s:  # the posts are new now, whatever today is
        for post in s.scalars(select(Post)):
            post.first_seen_at = now - timedelta(hours=1)
    monkeypatch.setenv("DIGEST_DATABASE_URL", app.settings.database_url)
    monkeypatch.setenv("DIGEST_OUTBOX_DIR", str(tmp_path / "outbox"))
    out = tmp_path / "next.html"
    result = CliRunner().invoke(cli, ["preview", "--reader", "READER0@example.org",
                                      "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "Asia/Tokyo" in result.output and "on their clock" in result.output
    assert "Moscow talks open" in result.output and "Tariffs cut" not in result.output
    assert "Moscow talks open" in out.read_text()
    missing = CliRunner().invoke(cli, ["preview", "--reader", "nobody@example.org"])
    assert missing.exit_code == 1 and "no reader" in missing.output

    client, _ = signed_in_client(app)
    page = client.get("/admin/readers/1")
    assert 'href="/admin/readers/1/next"' in page.text
    assert "Mondays at 08:00 (Asia/Tokyo)" in page.text  # their choice on their page
    assert '<dd data-testid="reader-topics">Russia</dd>' in page.text
    shown = client.get("/admin/readers/1/next")
    assert shown.status_code == 200
    assert "Moscow talks open" in shown.text and "Tariffs cut" not in shown.text
    assert "on their clock" in shown.text and "Asia/Tokyo" in shown.text
    assert client.get("/admin/readers/999/next").status_code == 404
