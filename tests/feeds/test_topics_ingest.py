"""A feed's <category> values become topics: cleaned, created once, kept on each post.

Feed text is hostile: the categories below are padded, empty, overlong, numerous, repeated in
other cases, and carry control and bidi characters. Polls go over HTTP (``FeedServer``), on
SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from digest.feeds import topics as topics_module
from digest.feeds.parse import parse_feed
from digest.feeds.poll import poll_feed_url
from digest.feeds.topics import topic_ids_for
from digest.runtime import App
from digest.store.models import Post, Topic
from digest.store.sessions import transaction
from tests.feedserver import FeedServer

NOW = datetime(2030, 1, 1, tzinfo=UTC)


def _rss(*items: tuple[str, list[str]]) -> str:
    body = "".join(
        f"<item><title>{title}</title><link>https://blog.example.org/{i}/</link>"
        f"<guid>https://blog.example.org/?p={i}</guid>"
        f"<pubDate>Mon, 31 Dec 2029 10:00:00 +0000</pubDate>"
        + "".join(f"<category><![CDATA[{c}]]></category>" for c in cats)
        + "<description>Text.</description></item>"
        for i, (title, cats) in enumerate(items, 1))
    return (f'<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel>'
            f"<title>Blog</title><link>https://blog.example.org/</link>{body}</channel></rss>")


@pytest.fixture
def server() -> Iterator[FeedServer]:
    with FeedServer() as running:
        yield running


def _topics(app: App) -> dict[str, str]:
    with app.sessions() as s:
        return {t.key: t.name for t in s.scalars(select(Topic))}


def _post_topics(app: App) -> dict[str, list[str]]:
    with app.sessions() as s:
        names = {t.id: t.name for t in s.scalars(select(Topic))}
        return {p.title: [names[i] for i in p.topic_ids] for p in s.scalars(select(Post))}


def test_hostile_categories_are_cleaned_capped_and_deduplicated() -> None:
    many = [f"tag {i}" for i in range(40)]
    feed = _rss(
        ("Hostile", ["  Foreign \n\t policy  ", "", "   ", "FOREIGN POLICY", "foreign policy",
                     "x" * 5000, "Ukra\u202eine\x07", "NATO\u0000", "Nato"]),
        ("Many", many),
    ).encode()
    entries = {e.title: e for e in parse_feed(feed, "https://blog.example.org/feed/").entries}

    hostile = entries["Hostile"].categories
    assert hostile[0] == "Foreign policy"  # first seen wins; whitespace collapsed
    assert sum(c.casefold() == "foreign policy" for c in hostile) == 1
    assert "" not in hostile and all(c == c.strip() for c in hostile)
    assert all(len(c) <= 200 for c in hostile)
    assert "x" * 200 in hostile
    assert "Ukraine" in hostile  # the bidi override and the bell are gone
    assert [c for c in hostile if c.casefold() == "nato"] == ["NATO"]
    assert len(entries["Many"].categories) == 20
    assert list(entries["Many"].categories) == many[:20]


def test_atom_category_without_term_uses_its_label() -> None:
    atom = ('<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom"><title>B</title>'
            '<id>urn:b</id><updated>2029-12-31T10:00:00Z</updated><entry><title>One</title>'
            '<id>urn:1</id><link href="https://blog.example.org/1/"/>'
            '<updated>2029-12-31T10:00:00Z</updated><category term="  eu " label="EU"/>'
            '<category term="" label="Trade deals"/><summary>x</summary></entry></feed>')
    (entry,) = parse_feed(atom.encode(), "https://blog.example.org/feed/").entries
    assert entry.categories == ("eu", "Trade deals")


def test_topics_are_created_once_across_polls_and_posts_keep_theirs(
        app: App, server: FeedServer) -> None:
    server.set("/feed/", _rss(("One", ["Foreign policy", "NATO"]), ("Two", ["nato"])),
               content_type="application/rss+xml")
    url = server.url("/feed/")
    assert poll_feed_url(app, url, now=NOW).outcome == "new"
    assert _topics(app) == {"foreign policy": "Foreign policy", "nato": "NATO"}
    assert _post_topics(app) == {"One": ["Foreign policy", "NATO"], "Two": ["NATO"]}

    # Recategorised, and a new post under a known topic in another case: no new topic for it.
    server.set("/feed/", _rss(("One", ["Foreign Policy"]), ("Two", ["NATO", "Russia"]),
                              ("Three", ["FOREIGN POLICY"])),
               content_type="application/rss+xml")
    poll_feed_url(app, url, now=NOW + timedelta(hours=1))
    assert _topics(app) == {"foreign policy": "Foreign policy", "nato": "NATO",
                            "russia": "Russia"}
    assert _post_topics(app) == {"One": ["Foreign policy"], "Two": ["NATO", "Russia"],
                                 "Three": ["Foreign policy"]}
    with app.sessions() as s:
        assert s.scalar(select(func.count()).select_from(Topic)) == 3


def test_a_topic_stored_by_another_poller_meanwhile_is_reused(app: App, monkeypatch) -> None:
    """The other poller commits the topic after this one looked: the unique key refuses the
    insert, the savepoint rolls back only that insert, and the other's row is used."""
    with transaction(app.sessions) as s:
        s.add(Topic(key="nato", name="NATO"))
    monkeypatch.setattr(topics_module, "_by_key", lambda session, keys: {})
    with transaction(app.sessions) as s:
        found = topic_ids_for(s, ["Nato", "Russia"])
    with app.sessions() as s:
        rows = {t.key: t.id for t in s.scalars(select(Topic))}
    assert found == rows and set(rows) == {"nato", "russia"}


def test_the_wordpress_feed_categories_become_topics(
        sqlite_app: App, server: FeedServer, shared_dir: Path) -> None:
    body = (shared_dir / "feeds" / "diplomaticopinion" / "feed.xml").read_bytes()
    server.set("/feed/", body, content_type="application/rss+xml")
    poll_feed_url(sqlite_app, server.url("/feed/"), now=datetime(2022, 1, 11, tzinfo=UTC))
    topics = _topics(sqlite_app)
    assert topics["minsk process"] == "Minsk process" and topics["nato"] == "NATO"
    newest = _post_topics(sqlite_app)["Russia-West Negotiations Start"]
    assert newest[:3] == ["Uncategorized", "Russia", "NATO"]


@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)  # SQLite: one writer at a time
def test_two_polls_creating_the_same_topics_at_once_both_succeed(app: App) -> None:
    """PostgreSQL: the second insert waits for the first transaction, then the unique key
    refuses it; only that savepoint is rolled back and the first poller's rows are used."""
    import threading
    import time

    first_in = threading.Event()
    results: dict[str, dict[str, int]] = {}
    errors: list[BaseException] = []

    def first() -> None:
        try:
            with transaction(app.sessions) as s:
                results["first"] = topic_ids_for(s, ["Trade", "NATO"])
                first_in.set()
                time.sleep(0.5)  # the second poller is now waiting on these keys
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
            first_in.set()

    thread = threading.Thread(target=first)
    thread.start()
    assert first_in.wait(10)
    started = time.monotonic()
    with transaction(app.sessions) as s:
        results["second"] = topic_ids_for(s, ["nato", "Russia", "TRADE"])
    waited = time.monotonic() - started
    thread.join(10)
    assert waited >= 0.3  # it did meet the first poller's uncommitted rows
    assert not errors
    with app.sessions() as s:
        rows = {t.key: t.id for t in s.scalars(select(Topic))}
    assert set(rows) == {"nato", "russia", "trade"}
    assert results["first"] == {k: rows[k] for k in ("nato", "trade")}
    assert results["second"] == rows


def test_a_feed_inventing_categories_stops_at_the_cap(sqlite_app: App, monkeypatch) -> None:
    monkeypatch.setattr(topics_module, "MAX_TOPICS", 5)
    with transaction(sqlite_app.sessions) as s:
        first = topic_ids_for(s, [f"Spam {n}" for n in range(4)])
    with transaction(sqlite_app.sessions) as s:
        more = topic_ids_for(s, ["Spam 0", "Trade", "Zebra", "Apples"])
    assert len(first) == 4
    assert more["spam 0"] == first["spam 0"]  # known ones are still found
    assert set(more) == {"spam 0", "apples"}  # one place left: the first new key in order
    with sqlite_app.sessions() as s:
        assert s.scalar(select(func.count(Topic.id))) == 5
