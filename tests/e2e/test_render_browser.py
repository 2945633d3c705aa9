"""The digest in a real browser engine: no horizontal overflow on a phone or a desktop.

Headless Chromium (Debian's, driven by the ``playwright`` package) renders the digest at
375 px and 1024 px wide; every post title must be visible and nothing may stick out
sideways. Screenshots are kept in test-artifacts/ for a person to look at.
"""

# Turkish dotless i and en dashes are the point of these tests.
# ruff: noqa: RUF001

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from digest.mail.notices import render_confirmation, render_welcome
from digest.mail.render import FeedSection, PostView, render_digest
from tests.conftest import REPO, make_settings, unavailable
from tests.mail_samples import sample_posts

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = REPO / "test-artifacts"
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--no-first-run"]
WIDTHS = (375, 1024)


def _digest_html(tmp_path: Path) -> tuple[str, list[str]]:
    """A two-feed digest with the awkward cases: long words, RTL, Turkish, emoji."""
    awkward = [
        PostView(
            title="Supercalifragilisticexpialidocious" * 3 + " and a very long title indeed",
            link="https://example.com/" + "a" * 200,
            summary="https://example.com/an/unbroken/url/" + "segment-" * 30 + " then words.",
            thumbnail_url="https://example.com/wide-image.jpg",
            reading_minutes=12,
            published_at=datetime(2022, 1, 9, tzinfo=UTC),
        ),
        PostView(title="مفاوضات روسيا والغرب تبدأ 🕊️", link="https://example.com/rtl",
                 summary="نص عربي طويل " * 12, published_at=datetime(2022, 1, 8, tzinfo=UTC)),
        PostView(title="Şğıİ: Türkçe başlık 🎉", link="https://example.com/tr",
                 summary="Ilık İstanbul akşamları, ağaçlar ve şehir. " * 3),
    ]
    sections = [
        FeedSection("Diplomatic Opinion", "https://diplomaticopinion.com", sample_posts(4)),
        FeedSection("Another Blog", "https://another.example", awkward),
    ]
    settings = make_settings(tmp_path)
    html = render_digest(settings, sections).html
    titles = [p.title for s in sections for p in s.posts]
    return html, titles


def _browser() -> Any:
    if not CHROMIUM.exists():
        unavailable(f"{CHROMIUM} is missing: headless Chromium is not installed")
    from playwright import sync_api
    return sync_api.sync_playwright()


def _check_page(page: Any, html: str, name: str, width: int) -> None:
    page.set_viewport_size({"width": width, "height": 900})
    page.set_content(html, wait_until="load")
    scroll_width = page.evaluate("document.documentElement.scrollWidth")
    inner_width = page.evaluate("window.innerWidth")
    assert scroll_width <= inner_width, f"{name} overflows at {width}px: {scroll_width}"
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}-{width}.png"), full_page=True)


def test_digest_fits_phone_and_desktop_and_shows_every_title(tmp_path: Path) -> None:
    html, titles = _digest_html(tmp_path)
    with _browser() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        try:
            page = browser.new_page()
            # Offline: remote images fail fast instead of waiting on the network.
            page.route("**/*", lambda route: route.abort())
            for width in WIDTHS:
                _check_page(page, html, "digest", width)
                rendered = page.locator("h2.title")
                assert rendered.count() == len(titles)
                for i, title in enumerate(titles):
                    heading = rendered.nth(i)
                    assert heading.is_visible()
                    assert heading.inner_text().strip() == title
                    box = heading.bounding_box()
                    assert box is not None and box["x"] >= 0
                    assert box["x"] + box["width"] <= width
        finally:
            browser.close()


def test_confirmation_and_welcome_fit_a_phone(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    long_url = "https://news.example.org/confirm/" + "MQ.Zx9" * 20
    mails = {
        "confirm": render_confirmation(settings, long_url).html,
        "welcome": render_welcome(settings, render_digest(
            settings, [FeedSection("Blog", None, sample_posts(2))])).html,
    }
    with _browser() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        try:
            page = browser.new_page()
            page.route("**/*", lambda route: route.abort())
            for name, html in mails.items():
                for width in WIDTHS:
                    _check_page(page, html, name, width)
        finally:
            browser.close()
