"""The console's topics page in Chromium, driven as the operator does (by label and button):
rename, merge and hide topics polled from the sample feed. No sideways scroll at 375 px, axe
finds nothing serious in light or dark, screenshots in test-artifacts/."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select

from digest.bootstrap import build
from digest.config import SAMPLE_FEED
from digest.feeds.poll import poll_feed_url
from digest.readers.ratelimit import Limit, RateLimiter
from digest.store import migrate as schema
from digest.store.models import Topic
from digest.web.app import create_app
from tests.conftest import REDIS_TEST_URL, make_settings
from tests.e2e.browser import check_layout, launch, require_browser, serving
from tests.feedserver import FeedServer
from tests.smtp_server import free_port
from tests.web.console_client import ADMIN_TOKEN

pytestmark = pytest.mark.browser


@pytest.fixture
def served(tmp_path):
    require_browser(axe=True)
    port = free_port()
    settings = make_settings(tmp_path, base_url=f"http://127.0.0.1:{port}")
    app = build(settings)
    schema.upgrade(app.engine)
    with FeedServer() as feeds:
        feeds.set("/feed/", SAMPLE_FEED.read_bytes())
        poll_feed_url(app, feeds.url("/feed/"))
    limiter = RateLimiter(REDIS_TEST_URL, prefix=f"test:{uuid.uuid4().hex}",
                          limits={"sign-in": Limit(100, 60)})
    with serving(create_app(app, limiter=limiter), port):
        yield settings.base_url, app
    limiter.close()
    app.engine.dispose()


def test_topics_in_chromium(served):
    from playwright import sync_api

    base, app = served
    with app.sessions() as session:
        ids = {t.key: t.id for t in session.scalars(select(Topic))}
    problems: list[str] = []

    def check(page, name: str) -> None:
        check_layout(page, name, problems)

    with sync_api.sync_playwright() as p:
        browser = launch(p)
        try:
            page = browser.new_context(bypass_csp=True).new_page()
            page.goto(base + "/admin/topics")
            page.get_by_label("Password").fill(ADMIN_TOKEN)
            page.keyboard.press("Enter")
            page.wait_for_url(base + "/admin/topics", timeout=30_000)
            assert page.get_by_test_id("topic-row").count() == 4
            check(page, "console-topics")

            page.get_by_label("New name for NATO").fill("The Alliance")
            page.locator(f"#topic-{ids['nato']}").get_by_role("button", name="Rename").click()
            assert page.get_by_test_id("topics-notice").inner_text() == "The topic was renamed."
            page.get_by_label("Merge Ukraine into").select_option(label="Russia")
            page.locator(f"#topic-{ids['ukraine']}").get_by_role("button", name="Merge").click()
            uncategorized = page.locator(f"#topic-{ids['uncategorized']}")
            uncategorized.get_by_role("button", name="Hide").click()
            assert "hidden" in uncategorized.get_by_test_id("topic-state").inner_text()
            check(page, "console-topics-changed")
        finally:
            browser.close()
    with app.sessions() as session:
        topics = {t.key: t for t in session.scalars(select(Topic))}
    assert topics["nato"].name == "The Alliance"
    assert topics["ukraine"].merged_into_id == topics["russia"].id
    assert topics["uncategorized"].hidden
    assert not problems, "\n".join(problems)
