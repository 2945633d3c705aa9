"""Real feeds render into digests Gmail will not clip (under 100 KB of HTML).

Each feed in ../shared/feeds goes through the project's own parsing and summarising
(``digest.feeds.parse``, ``digest.feeds.summaries``) into posts, then into one digest.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from digest.config import SAMPLE_FEED
from digest.feeds.parse import parse_feed
from digest.feeds.summaries import summarize
from digest.mail.render import FeedSection, PostView, render_digest
from tests.conftest import SHARED, make_settings

LIMIT = 100_000
REAL_FEEDS = [
    *sorted(p for p in (SHARED / "feeds" / "real").glob("*") if p.suffix != ".tsv"),
    SHARED / "feeds" / "diplomaticopinion" / "feed.xml",
]


def _section(path: Path) -> FeedSection:
    parsed = parse_feed(path.read_bytes(), f"https://feeds.example.org/{path.name}")
    posts = []
    for entry in parsed.entries:
        summary = summarize(entry.content_html, entry.description_html,
                            media_thumbnail=entry.thumbnail_url)
        posts.append(PostView(
            title=entry.title, link=entry.link, summary=summary.text,
            thumbnail_url=summary.thumbnail_url, reading_minutes=summary.reading_minutes,
            published_at=entry.published_at,
        ))
    return FeedSection(parsed.title or path.name, parsed.site_url, posts)


def _html_size(tmp_path: Path, section: FeedSection) -> int:
    html = render_digest(make_settings(tmp_path), [section]).html
    return len(html.encode("utf-8"))


def test_sample_feed_digest_is_small(tmp_path: Path) -> None:
    section = _section(SAMPLE_FEED)
    assert section.posts
    assert _html_size(tmp_path, section) < LIMIT


@pytest.mark.parametrize("path", REAL_FEEDS, ids=lambda p: p.name)
def test_real_feed_digest_is_under_100_kb(shared_dir: Path, tmp_path: Path, path: Path) -> None:
    section = _section(path)
    assert section.posts, f"{path.name}: no entries parsed"
    size = _html_size(tmp_path, section)
    print(f"{path.name}: {len(section.posts)} posts, {size} bytes of HTML")
    assert size < LIMIT, f"{path.name}: {size} bytes"
