"""The console's readers, import and feeds pages in Chromium, driven as the operator does (by
label and button): find a reader by address and erase them, import a CSV through its preview,
add and poll a feed. Each page: no sideways scroll at 375 px, axe finds nothing serious in
light or dark, screenshots in test-artifacts/."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select

from digest.bootstrap import build
from digest.config import SAMPLE_FEED
from digest.readers.additions import add_readers
from digest.readers.ratelimit import Limit, RateLimiter
from digest.store import migrate as schema
from digest.store.models import Subscriber, SubscriberStatus
from digest.web.app import create_app
from tests.conftest import REDIS_TEST_URL, make_settings
from tests.e2e.browser import check_layout, launch, require_browser, serving
from tests.feedserver import FeedServer
from tests.smtp_server import free_port
from tests.web.console_client import ADMIN_TOKEN

pytestmark = pytest.mark.browser

LONG = "a.very.long.address.with.dots+newsletter@subdomain.example-company.co.uk"


@pytest.fixture
def served(tmp_path):
    require_browser(axe=True)
    port = free_port()
    settings = make_settings(tmp_path, base_url=f"http://127.0.0.1:{port}")
    app = build(settings)
    schema.upgrade(app.engine)
    add_readers(app, ["Ann@example.org", "Jörg@bücher.de", LONG], name="A reader")
    limiter = RateLimiter(REDIS_TEST_URL, prefix=f"test:{uuid.uuid4().hex}",
                          limits={"sign-in": Limit(100, 60)})
    with serving(create_app(app, limiter=limiter), port):
        yield settings.base_url, app
    limiter.close()
    app.engine.dispose()


def test_readers_import_and_feeds_in_chromium(served, tmp_path):
    from playwright import sync_api

    base, app = served
    upload = tmp_path / "list.csv"
    upload.write_text("Email,Name\nann@example.org,Ann\nnew+tag@example.org,New\nbroken,B\n")
    problems: list[str] = []

    def check(page, name: str) -> None:
        check_layout(page, name, problems)

    with FeedServer() as feeds, sync_api.sync_playwright() as p:
        feeds.set("/feed/", SAMPLE_FEED.read_bytes())
        browser = launch(p)
        try:
            page = browser.new_context(bypass_csp=True).new_page()
            page.goto(base + "/admin/readers")
            page.get_by_label("Password").fill(ADMIN_TOKEN)
            page.keyboard.press("Enter")
            page.wait_for_url(base + "/admin/readers", timeout=30_000)

            page.get_by_label("Address starts with").fill("A")
            page.get_by_role("button", name="Search").click()
            rows = page.get_by_test_id("reader-row")
            assert rows.count() == 2  # Ann and the long one, in any case
            check(page, "console-readers")
            page.get_by_role("link", name=LONG).click()
            assert page.get_by_test_id("reader-email").inner_text() == LONG
            check(page, "console-reader")
            page.goto(base + "/admin/readers")
            page.get_by_label("Address starts with").fill("ANN")
            page.get_by_role("button", name="Search").click()
            assert rows.count() == 1 and "Ann@example.org" in rows.first.inner_text()
            rows.first.get_by_role("link").click()
            assert page.get_by_test_id("reader-email").inner_text() == "Ann@example.org"
            page.get_by_role("button", name="Erase…").click()
            check(page, "console-reader-erase")
            page.get_by_test_id("confirm-erase").click()
            assert page.get_by_test_id("reader-status").inner_text().startswith("deleted")

            page.goto(base + "/admin/readers/import")
            page.get_by_label("CSV file").set_input_files(str(upload))
            page.get_by_role("button", name="Preview").click()
            assert page.get_by_test_id("preview-import-count").inner_text() == "1"
            assert page.get_by_test_id("preview-skip-count").inner_text() == "2"
            assert "already known (deleted)" in page.get_by_test_id("preview-skipped").inner_text()
            check(page, "console-import-preview")
            page.get_by_role("button", name="Import 1 reader").click()
            assert page.get_by_test_id("imported-count").inner_text() == "1"
            check(page, "console-import-result")

            page.goto(base + "/admin/feeds")
            page.get_by_label("Feed URL").fill(feeds.url("/feed/"))
            page.get_by_role("button", name="Add").click()
            assert "new post" in page.get_by_test_id("poll-result").inner_text()
            page.get_by_role("button", name="Poll now").click()
            assert "unchanged" in page.get_by_test_id("poll-result").inner_text()
            check(page, "console-feeds")
        finally:
            browser.close()
    with app.sessions() as session:
        statuses = dict(session.execute(select(Subscriber.email, Subscriber.status)).all())
    assert statuses[None] is SubscriberStatus.DELETED
    assert statuses["new+tag@example.org"] is SubscriberStatus.ACTIVE
    assert not problems, "\n".join(problems)
