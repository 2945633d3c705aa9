"""The digest, confirmation and welcome mails: content, layout rules, safety and size."""

# Turkish dotless i and en dashes are the point of these tests.
# ruff: noqa: RUF001

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from digest.errors import ConfigError
from digest.mail.notices import render_confirmation, render_welcome
from digest.mail.render import (
    ARCHIVE_PLACEHOLDER,
    PLACEHOLDERS,
    FeedSection,
    PostView,
    make_subject,
    render_digest,
)
from tests.conftest import make_settings
from tests.mail_samples import LEAD_LINK, LEAD_TITLE, sample_posts, sample_sections


@pytest.fixture
def settings(tmp_path: Path):
    return make_settings(tmp_path)


def _style_blocks(html: str) -> list[str]:
    return re.findall(r"<style[^>]*>(.*?)</style>", html, re.DOTALL)


def _without_media(css: str) -> str:
    """CSS with every @media block removed (blocks nest one level deep)."""
    out, depth, i = [], 0, 0
    while i < len(css):
        if depth == 0 and css.startswith("@media", i):
            depth_start = css.index("{", i)
            depth, i = 1, depth_start + 1
            while depth:
                depth += {"{": 1, "}": -1}.get(css[i], 0)
                i += 1
            continue
        out.append(css[i])
        i += 1
    return "".join(out)


def test_default_subject_is_blog_lead_and_count(settings) -> None:
    assert make_subject(settings, sample_sections(3)) == (
        "Diplomatic Opinion: Russia-West Negotiations Start (+2 more)"
    )
    assert make_subject(settings, sample_sections(1)) == (
        "Diplomatic Opinion: Russia-West Negotiations Start"
    )
    assert make_subject(settings, []) == "Diplomatic Opinion"


def test_subject_template_is_configurable(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, subject_template="[{blog}] {count} new: {lead}")
    assert make_subject(settings, sample_sections(4)) == (
        "[Diplomatic Opinion] 4 new: Russia-West Negotiations Start"
    )


@pytest.mark.parametrize("template", ["{lead.__class__}", "{nope}", "{lead", "{0}"])
def test_a_bad_subject_template_names_the_setting(tmp_path: Path, template: str) -> None:
    settings = make_settings(tmp_path, subject_template=template)
    with pytest.raises(ConfigError, match="DIGEST_SUBJECT_TEMPLATE"):
        make_subject(settings, sample_sections(2))


def test_digest_html_has_every_part_of_the_layout(settings) -> None:
    rendered = render_digest(settings, sample_sections(3))
    html = rendered.html
    assert rendered.post_count == 3
    assert '<meta name="color-scheme" content="light dark">' in html
    assert '<meta name="supported-color-schemes" content="light dark">' in html
    assert 'class="preheader"' in html and "display:none" in html
    assert "max-width:600px" in html and 'role="presentation"' in html
    assert "Diplomatic Opinion" in html
    assert "7–10 January 2022" in html  # the edition's date range
    assert f'<a href="{LEAD_LINK}"' in html and LEAD_TITLE in html
    assert "Talks between Russia and the United States" in html
    assert 'src="https://diplomaticopinion.com/wp-content/uploads/2022/01/geneva.jpg"' in html
    assert "6 min read" in html and "10 January 2022" in html
    assert PLACEHOLDERS["unsubscribe_url"] in html
    assert PLACEHOLDERS["preferences_url"] in html
    assert ARCHIVE_PLACEHOLDER in html  # view in browser, filled once the edition has an id
    assert "1 Example Street, Istanbul, Turkey" in html


def test_css_is_inlined_and_only_media_queries_stay_in_a_style_block(settings) -> None:
    html = render_digest(settings, sample_sections(2)).html
    blocks = _style_blocks(html)
    assert blocks, "the @media rules must survive in a <style> block"
    for css in blocks:
        assert _without_media(css).strip() == ""
    assert "prefers-color-scheme: dark" in html
    assert re.search(r'<h2 class="title"[^>]*style="[^"]*font-size:22px', html)


def test_posts_are_grouped_by_feed_only_when_there_are_several(settings) -> None:
    one = render_digest(settings, sample_sections(2)).html
    assert 'class="section"' not in one
    two = render_digest(settings, [
        FeedSection("Diplomatic Opinion", "https://diplomaticopinion.com", sample_posts(2)),
        FeedSection("Another <b>Blog</b>", "javascript:alert(1)", sample_posts(1)),
    ])
    assert two.html.count('class="section"') == 2
    assert "Another Blog" in two.html and "ANOTHER BLOG" in two.text
    assert "javascript:" not in two.html


def test_plain_text_reads_on_its_own(settings) -> None:
    text = render_digest(settings, sample_sections(3)).text
    assert text.startswith("Diplomatic Opinion\nNew posts, 7–10 January 2022\n")
    assert LEAD_TITLE in text and LEAD_LINK in text
    assert "Talks between Russia and the United States" in text
    assert "Unsubscribe: " + PLACEHOLDERS["unsubscribe_url"] in text
    assert "Preferences: " + PLACEHOLDERS["preferences_url"] in text
    assert "1 Example Street" in text
    assert max(len(line) for line in text.splitlines() if "http" not in line) <= 100


def test_feed_text_is_escaped_and_unsafe_urls_are_dropped(settings) -> None:
    evil = PostView(
        title='Hello <script>alert("t")</script><img src=x onerror=alert(1)> & bye',
        link="javascript:alert(document.cookie)",
        summary='<a href="javascript:alert(2)" onclick="x()">click</a> <b>bold</b> 1 < 2',
        thumbnail_url="data:image/png;base64,AAAA",
        published_at=datetime(2022, 1, 1, tzinfo=UTC),
    )
    spaced = PostView(title="Tab link", link=" java\tscript:alert(3)", summary="s",
                      thumbnail_url="//evil.example/pixel.gif")
    rendered = render_digest(settings, [FeedSection("Blog", None, [evil, spaced])])
    for part in (rendered.html, rendered.text):
        assert "<script" not in part.lower()
        assert "onerror" not in part.lower() and "onclick" not in part.lower()
        assert "javascript:" not in part.lower() and "data:image" not in part
        assert "evil.example" not in part
    assert "Hello &amp; bye" in rendered.html
    assert "click bold 1 &lt; 2" in rendered.html
    assert "Hello & bye" in rendered.text and "click bold 1 < 2" in rendered.text
    # A post without a safe link keeps its title as text, with no link at all.
    assert re.search(r'<h2 class="title"[^>]*>Hello &amp; bye</h2>', rendered.html)


def test_unicode_and_right_to_left_text_survive(settings) -> None:
    post = PostView(title="Şğıİ: مفاوضات روسيا والغرب 🕊️", link="https://example.com/ş",
                    summary="Türkçe ı İ ş ğ — עברית — 🎉", reading_minutes=2)
    rendered = render_digest(settings, [FeedSection("Blog", None, [post])])
    assert rendered.subject == "Diplomatic Opinion: Şğıİ: مفاوضات روسيا والغرب 🕊️"
    for part in (rendered.html, rendered.text):
        assert "Şğıİ: مفاوضات روسيا والغرب 🕊️" in part
        assert "Türkçe ı İ ş ğ — עברית — 🎉" in part
    assert 'dir="auto"' in rendered.html


def test_a_long_digest_shows_the_first_posts_and_links_to_the_archive(settings) -> None:
    rendered = render_digest(settings, sample_sections(27), max_posts=20)
    assert rendered.post_count == 27
    assert rendered.html.count('class="title"') == 20
    assert "7 more posts in this edition" in rendered.html
    assert f'<a href="{ARCHIVE_PLACEHOLDER}"' in rendered.html
    assert f"7 more posts in this edition: {ARCHIVE_PLACEHOLDER}" in rendered.text
    assert "(+26 more)" in rendered.subject
    everything = render_digest(settings, sample_sections(27), max_posts=None)
    assert everything.html.count('class="title"') == 27
    assert "more posts in this edition" not in everything.html


def test_an_explicit_archive_url_replaces_the_placeholder(settings) -> None:
    rendered = render_digest(settings, sample_sections(1),
                             archive_url="https://news.example.org/archive/5")
    assert ARCHIVE_PLACEHOLDER not in rendered.html + rendered.text
    assert "https://news.example.org/archive/5" in rendered.html


def test_twenty_posts_stay_well_under_gmail_clipping(settings) -> None:
    long_summary = ("word " * 55).strip() + " …"
    posts = [
        PostView(title=f"A fairly long post title number {i} about diplomacy and its limits",
                 link=f"https://diplomaticopinion.com/2022/01/10/a-long-slug-for-post-{i}/",
                 summary=long_summary,
                 thumbnail_url=f"https://diplomaticopinion.com/wp-content/uploads/{i}.jpg",
                 reading_minutes=7, published_at=datetime(2022, 1, 10, tzinfo=UTC))
        for i in range(20)
    ]
    html = render_digest(settings, [FeedSection("Blog", "https://b.example", posts)]).html
    assert len(html.encode()) < 100_000


def test_date_range_spans_months_and_years(settings) -> None:
    start, end = datetime(2021, 12, 27, tzinfo=UTC), datetime(2022, 1, 3, tzinfo=UTC)
    text = render_digest(settings, sample_sections(1), period_start=start, period_end=end).text
    assert "27 December 2021 – 3 January 2022" in text
    start = datetime(2022, 1, 27, tzinfo=UTC)
    end = datetime(2022, 2, 3, tzinfo=UTC)
    text = render_digest(settings, sample_sections(1), period_start=start, period_end=end).text
    assert "27 January – 3 February 2022" in text


def test_confirmation_mail(settings) -> None:
    url = "https://news.example.org/confirm/abc.DEF-123"
    mail = render_confirmation(settings, url)
    assert mail.subject == "Confirm your subscription to Diplomatic Opinion"
    assert f'href="{url}"' in mail.html and url in mail.text
    assert PLACEHOLDERS["unsubscribe_url"] in mail.html + mail.text
    assert '<meta name="color-scheme" content="light dark">' in mail.html
    assert "1 Example Street" in mail.text
    with pytest.raises(ValueError):
        render_confirmation(settings, "javascript:alert(1)")


def test_welcome_mail_with_and_without_the_latest_digest(settings) -> None:
    bare = render_welcome(settings, None)
    assert bare.subject == "Welcome to Diplomatic Opinion"
    assert LEAD_TITLE not in bare.html + bare.text
    assert PLACEHOLDERS["unsubscribe_url"] in bare.html + bare.text
    latest = render_digest(settings, sample_sections(3))
    full = render_welcome(settings, latest)
    assert full.post_count == 3
    assert LEAD_TITLE in full.html and LEAD_LINK in full.text
    assert "Talks between Russia" in full.text
    assert ARCHIVE_PLACEHOLDER not in full.html + full.text
    assert full.text.count("Unsubscribe:") == 1


def test_a_daily_period_ending_at_midnight_is_one_day(settings) -> None:
    """daily_period() ends at the next local midnight (exclusive): show one day, not two."""
    from zoneinfo import ZoneInfo

    ist = ZoneInfo("Europe/Istanbul")
    start, end = datetime(2026, 11, 28, tzinfo=ist), datetime(2026, 11, 29, tzinfo=ist)
    text = render_digest(settings, sample_sections(1), period_start=start, period_end=end).text
    assert "New posts, 28 November 2026" in text
    assert "28–29 November" not in text
