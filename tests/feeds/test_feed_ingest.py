"""Every fixture feed in ../shared/feeds, served over HTTP, is ingested correctly."""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from digest.feeds.poll import poll_feed_url
from digest.runtime import App
from digest.store.models import Feed, Post
from tests.conftest import SHARED
from tests.feedserver import FeedServer

# Real markup; a quote such as "<L29Ah> hi" in a chat log is text, not a tag.
TAG = re.compile(
    r"</?(?:a|p|div|span|img|br|script|style|iframe|em|strong|b|i|ul|li|figure|table)\b[^>]*>",
    re.IGNORECASE,
)
# A date after every fixture, so that the first poll's window announces nothing old.
LATER = datetime(2030, 1, 1, tzinfo=UTC)


# Items with no title, no link and no text are not posts: there is nothing to announce.
EMPTY_ITEMS = {"real/enc_undeclared_latin1_cerclepsy.xml": 1}


def _manifest() -> list[tuple[str, int]]:
    path = SHARED / "feeds" / "real" / "MANIFEST.tsv"
    rows = [("diplomaticopinion/feed.xml", 10)]
    if path.is_file():
        with path.open(encoding="utf-8") as fh:
            for row in csv.DictReader(fh, delimiter="\t"):
                name = f"real/{row['filename']}"
                rows.append((name, int(row["entries"]) - EMPTY_ITEMS.get(name, 0)))
    return rows


def _content_type(name: str) -> str:
    if name.endswith(".atom"):
        return "application/atom+xml"
    if name.endswith(".rdf"):
        return "application/rdf+xml"
    return "application/rss+xml"  # no charset: the document's own declaration must win


@pytest.fixture
def server() -> Iterator[FeedServer]:
    with FeedServer() as running:
        yield running


def _serve(server: FeedServer, shared_dir: Path, name: str) -> str:
    body = (shared_dir / "feeds" / name).read_bytes()
    server.set(f"/{name}", body, content_type=_content_type(name))
    return server.url(f"/{name}")


def _posts(app: App) -> list[Post]:
    with app.sessions() as session:
        return list(session.scalars(select(Post).order_by(Post.id)))


@pytest.mark.parametrize(("name", "count"), _manifest(), ids=lambda v: str(v))
def test_each_fixture_feed_is_stored_once_with_clean_summaries(
    app: App, server: FeedServer, shared_dir: Path, name: str, count: int
) -> None:
    url = _serve(server, shared_dir, name)

    first = poll_feed_url(app, url, now=LATER)
    assert first.outcome == "new", first.describe()
    posts = _posts(app)
    assert len(posts) == count
    assert len({p.identity for p in posts}) == count
    for post in posts:
        assert post.title.strip()
        assert post.link.startswith(("http://", "https://")), post.link
        assert not TAG.search(post.summary), post.summary
        assert "pixel.wp.com" not in post.summary and "<script" not in post.summary
        assert "&amp;" not in post.summary and "&#" not in post.summary
        if post.thumbnail_url:
            assert post.thumbnail_url.startswith(("http://", "https://"))
            assert "pixel.wp.com" not in post.thumbnail_url
            assert "gravatar.com" not in post.thumbnail_url
    assert not any(p.announce for p in posts)  # all older than the first-poll window

    # Polled again without the conditional GET: the same identities, nothing new.
    server.routes[f"/{name}"].conditional = False
    again = poll_feed_url(app, url, now=LATER + timedelta(hours=1))
    assert again.outcome == "unchanged", again.describe()
    assert [p.identity for p in _posts(app)] == [p.identity for p in posts]


@pytest.mark.parametrize(
    ("name", "title", "script"),
    [
        ("real/enc_windows1251_ibash.xml", "Цитата #17703",
         re.compile("[\u0410-\u044f]")),
        ("real/enc_gb2312_kc0011.rss", "建国35周年纪念\uff0c华表\uff0c和平鸽",
         re.compile("[\u4e00-\u9fff]")),
        ("real/enc_undeclared_latin1_cerclepsy.xml",
         "Perturbateurs endocriniens : quels effets sur le cerveau ?", re.compile("[éèàêç]")),
        ("real/wp_osmpl_unclosed_cdata.xml",
         "Cyfrowy Kanon Krajoznawczy Polski będzie opracowywany przez OSMP!",
         re.compile("[ąęłśż]")),
    ],
)
def test_text_is_decoded_in_its_own_script(
    sqlite_app: App, server: FeedServer, shared_dir: Path, name: str, title: str,
    script: re.Pattern[str],
) -> None:
    poll_feed_url(sqlite_app, _serve(server, shared_dir, name), now=LATER)
    posts = _posts(sqlite_app)
    assert title in [p.title for p in posts]
    assert any(script.search(p.summary) for p in posts)
    assert not any("\ufffd" in p.title + p.summary for p in posts)  # no mojibake


def test_diplomaticopinion_feed_is_read_as_the_blog_publishes_it(
    sqlite_app: App, server: FeedServer, shared_dir: Path
) -> None:
    url = _serve(server, shared_dir, "diplomaticopinion/feed.xml")
    report = poll_feed_url(sqlite_app, url, now=datetime(2022, 1, 11, tzinfo=UTC))
    newest = _posts(sqlite_app)[0]
    assert newest.title == "Russia-West Negotiations Start"
    assert newest.identity == "http://diplomaticopinion.com/?p=6520"
    assert newest.link == "https://diplomaticopinion.com/2022/01/10/russia-west-negotiations-start/"
    assert newest.summary.startswith("With the New Year and Christmas celebrations behind")
    assert 20 <= len(newest.summary.split()) <= 56
    assert newest.thumbnail_url is None  # only a gravatar and the 1x1 pixel
    assert newest.reading_minutes >= 5
    # First poll on 11 January 2022: only the posts of the last 7 days are announced.
    assert [p.title for p in _posts(sqlite_app) if p.announce] == [
        "Russia-West Negotiations Start"
    ]
    assert report.backlog == 9
    with sqlite_app.sessions() as session:
        feed = session.scalars(select(Feed)).one()
    assert feed.hub_url == "https://diplomaticopinion.com/?pushpress=hub"
    assert feed.topic_url == "https://diplomaticopinion.com/feed/"
    assert feed.title == "Diplomatic Opinion – Ali Tuygan"  # noqa: RUF001


def test_a_730_item_feed_does_not_flood_the_first_digest(
    sqlite_app: App, server: FeedServer, shared_dir: Path
) -> None:
    url = _serve(server, shared_dir, "real/huge_giantbomb_730items.rss")
    newest = datetime(2019, 10, 1, 22, 30, tzinfo=UTC)  # its newest episode
    report = poll_feed_url(sqlite_app, url, now=newest + timedelta(days=1))
    posts = _posts(sqlite_app)
    assert len(posts) == 730
    announced = [p for p in posts if p.announce]
    assert 1 <= len(announced) <= 3
    assert report.backlog == 730 - len(announced)
    assert "730 new posts" in report.describe()


def test_relative_links_resolve_against_the_feed_url(
    sqlite_app: App, server: FeedServer, shared_dir: Path
) -> None:
    url = _serve(server, shared_dir, "real/relative_links_neverworkintheory.atom")
    poll_feed_url(sqlite_app, url, now=LATER)
    thumbs = [p.thumbnail_url for p in _posts(sqlite_app) if p.thumbnail_url]
    assert thumbs, "the feed's content images are root-relative and must still be found"
    assert all(t.startswith(server.base + "/static/") for t in thumbs)
