"""Post identity: stable across polls, domain moves and tracking query strings."""

from __future__ import annotations

import pytest

from digest.errors import FeedParseError
from digest.feeds.identity import clean_link, entry_identity
from digest.feeds.parse import parse_feed


def _rss(items: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>T</title>'
        f"<link>https://blog.example.org/</link>{items}</channel></rss>"
    ).encode()


def test_guid_wins_over_link():
    assert entry_identity("http://old.example/?p=7", "https://new.example/post/", "t", "c") == (
        "http://old.example/?p=7"
    )


def test_guid_survives_a_domain_move():
    before = parse_feed(
        _rss('<item><title>A</title><link>http://old.example/a/</link>'
             '<guid isPermaLink="false">http://old.example/?p=7</guid></item>'),
        "http://old.example/feed/",
    )
    after = parse_feed(
        _rss('<item><title>A</title><link>https://new.example/a/</link>'
             '<guid isPermaLink="false">http://old.example/?p=7</guid></item>'),
        "https://new.example/feed/",
    )
    assert before.entries[0].identity == after.entries[0].identity
    assert after.entries[0].link == "https://new.example/a/"


def test_link_without_tracking_parameters_is_the_fallback():
    plain = entry_identity(None, "https://blog.example.org/a/?id=3", "t", "c")
    tracked = entry_identity(
        None, "https://blog.example.org/a/?utm_source=rss&id=3&utm_medium=feed&fbclid=x", "t", "c"
    )
    assert plain == tracked == "https://blog.example.org/a/?id=3"


def test_medium_rss_source_is_tracking():
    assert clean_link("https://medium.com/@a/post-1?source=rss-b1f3------2") == (
        "https://medium.com/@a/post-1"
    )
    assert clean_link("https://example.org/?page=2&source=search") == (
        "https://example.org/?page=2&source=search"
    )


def test_content_hash_when_there_is_neither_guid_nor_link():
    first = entry_identity(None, None, "Title", "<p>body</p>")
    assert first.startswith("sha256:")
    assert first == entry_identity(None, "", "Title", "<p>body</p>")
    assert first != entry_identity(None, None, "Title", "<p>other body</p>")


def test_very_long_guid_is_hashed_to_fit():
    identity = entry_identity("x" * 5000, None, "t", "c")
    assert identity.startswith("sha256:") and len(identity) <= 255


def test_same_document_twice_gives_the_same_identities():
    doc = _rss(
        "<item><title>No guid</title><description>Only text.</description></item>"
        "<item><title>Linked</title><link>https://blog.example.org/l/?utm_campaign=x</link></item>"
    )
    first = [e.identity for e in parse_feed(doc, "https://blog.example.org/feed/").entries]
    again = [e.identity for e in parse_feed(doc, "https://blog.example.org/feed/").entries]
    assert first == again
    assert first[1] == "https://blog.example.org/l/"


def test_html_page_is_not_a_feed():
    with pytest.raises(FeedParseError):
        parse_feed(b"<html><body><p>Hello</p></body></html>", "https://blog.example.org/")


def test_relative_links_resolve_against_the_feed_url():
    parsed = parse_feed(
        _rss('<item><title>R</title><link>/2024/post/</link>'
             '<description>&lt;a href="/about/"&gt;about&lt;/a&gt;</description></item>'),
        "https://blog.example.org/feed/",
    )
    assert parsed.entries[0].link == "https://blog.example.org/2024/post/"
    assert 'href="https://blog.example.org/about/"' in parsed.entries[0].content_html
