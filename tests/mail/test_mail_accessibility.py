"""What a reader's mail client shows: tap targets, thumbnails, the inbox snippet, the footer."""

from __future__ import annotations

import re

from digest.config import Settings
from digest.mail.render import render_digest
from tests.mail_samples import sample_sections


def _preheader(html: str) -> str:
    return re.search(r'class="preheader"[^>]*>([^<]*)<', html).group(1).strip()


def test_footer_links_and_read_the_post_are_44px_tap_targets() -> None:
    html = render_digest(Settings(postal_address="1 Example St"), sample_sections(2)).html
    links = re.findall(r'<a href="[^"]*"[^>]*>(?:Read the post|Unsubscribe|Preferences|View in'
                       r' browser)', html)
    assert len(links) == 5
    for link in links:
        style = re.search(r'style="([^"]*)"', link).group(1)
        padding = int(re.search(r"padding:(\d+)px", style).group(1))
        line = 20
        assert "display:inline-block" in style and line + 2 * padding >= 44, link


def test_thumbnails_beside_their_title_are_decorative() -> None:
    html = render_digest(Settings(), sample_sections(1)).html
    (img,) = re.findall(r"<img [^>]*>", html)
    assert 'alt=""' in img
    assert re.search(r'<a href="[^"]*" tabindex="-1" aria-hidden="true"[^>]*><img', html)


def test_the_preheader_adds_to_the_subject() -> None:
    for count in (1, 3):
        rendered = render_digest(Settings(), sample_sections(count))
        preheader = _preheader(rendered.html)
        lead = sample_sections(count)[0].posts[0].title
        assert preheader and lead not in preheader and preheader not in rendered.subject


def test_no_placeholder_when_the_postal_address_is_unset() -> None:
    rendered = render_digest(Settings(postal_address=""), sample_sections(1))
    assert "not configured" not in rendered.html + rendered.text
    assert not re.search(r"<p[^>]*>\s*</p>", rendered.html)
