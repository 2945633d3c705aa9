"""The operator's console in headless Chromium, against the real app, PostgreSQL and Celery.

The app is served by uvicorn; sends go through a real Celery worker on the local Redis to a
local SendGrid-compatible sink (``tests.sendgrid_sink``), while the web app's own mail (the
test copy) goes to the outbox backend, which writes .eml files. The operator signs in with an
argon2-hashed password (DIGEST_ADMIN_PASSWORD), reads the dashboard, previews the next digest
at both widths, sends a test copy, sends now and watches progress reach "sent", pauses and
resumes a send mid-way, erases a reader, imports a CSV through its preview and adds and polls
a local feed. The page's own Content-Security-Policy stays on throughout (htmx must work under
it). Every page is screenshotted at 1280 and 375 px into test-artifacts/console/ and checked
with axe-core at both widths, and must not overflow sideways on a phone.
"""

from __future__ import annotations

import email
import email.policy
import email.utils
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import redis
from sqlalchemy import func, select

from digest.config import SAMPLE_FEED
from digest.runtime import App
from digest.store.models import (
    Batch,
    BatchStatus,
    Edition,
    Subscriber,
    SubscriberStatus,
)
from digest.web.console.credentials import hash_password
from tests.conftest import clean_pg_app, make_settings
from tests.e2e.browser import ARTIFACTS, axe_violations, launch, require_browser, serving
from tests.e2e.console_seed import seed
from tests.feedserver import FeedServer
from tests.sendgrid_sink import celery_workers, running_sink, wait_for, worker_env
from tests.smtp_server import free_port
from tests.web.console_client import console_app

pytestmark = [pytest.mark.browser, pytest.mark.postgres, pytest.mark.redis,
              pytest.mark.timeout(600)]

PASSWORD = "a long operator passphrase, 2026"
BATCH = 10
WEEKLY, DAILY = 40, 300  # 4 batches, then 30 batches (the send that is paused)
SHOTS = ARTIFACTS / "console"
WIDTHS = (1280, 375)
_PAINTED = ("() => new Promise(r => requestAnimationFrame("
            "() => requestAnimationFrame(() => r(true))))")
WAIT = 120_000  # ms: Playwright's expect on a loaded machine
NEW_FEED = """<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0"><channel><title>Field Notes</title><link>http://127.0.0.1/</link>
<description>Notes from the field</description>
<item><title>Letters from Tbilisi</title><link>http://127.0.0.1/tbilisi</link>
<guid>field-1</guid><pubDate>{date}</pubDate><description>A walk by the river.</description></item>
<item><title>The long road to Yerevan</title><link>http://127.0.0.1/yerevan</link>
<guid>field-2</guid><pubDate>{date}</pubDate><description>Buses and borders.</description></item>
</channel></rss>"""


@pytest.fixture
def console(pg_database: str, redis_url: str, tmp_path: Path) -> Iterator[dict[str, Any]]:
    """The real app on PostgreSQL with demo-like data, served on a free port, and the feeds'
    server on 127.0.0.1 (the blog's own feed is the bundled sample)."""
    require_browser(axe=True)
    port = free_port()
    with FeedServer() as feeds:
        feeds.set("/feed/", SAMPLE_FEED.read_bytes())
        settings = make_settings(
            tmp_path, database_url=pg_database, broker_url=redis_url,
            base_url=f"http://127.0.0.1:{port}", mail_backend="outbox", batch_size=BATCH,
            admin_password=hash_password(PASSWORD), admin_token=None,
            feed_url=[feeds.url("/feed/")], first_poll_window_days=100_000)
        app = clean_pg_app(settings)
        seeded = seed(app, datetime.now(UTC), weekly=WEEKLY, daily=DAILY)
        with serving(console_app(app), port):
            yield {"app": app, "url": settings.base_url, "outbox": settings.outbox_dir,
                   "seeded": seeded, "tmp": tmp_path, "feeds": feeds}
        app.engine.dispose()


class Looker:
    """Screenshots of the page now shown at both widths, axe-core at both, no sideways scroll."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.failures: list[str] = []
        self.names: list[str] = []
        SHOTS.mkdir(parents=True, exist_ok=True)

    def look(self, name: str) -> None:
        page = self.page
        page.wait_for_load_state()
        self.names.append(name)
        for width in WIDTHS:
            page.set_viewport_size({"width": width, "height": 900})
            self.failures += [f"{name} {width}px: {v}" for v in axe_violations(page)]
            overflow = page.evaluate(
                "() => document.documentElement.scrollWidth - document.documentElement.clientWidth")
            if overflow > 0:
                self.failures.append(f"{name} {width}px: the page scrolls sideways by {overflow}px")
            # As tall as the page rather than full_page: Chromium paints no iframe (the mail
            # previews) that lies outside the viewport in a full-page screenshot.
            height = page.evaluate("() => document.documentElement.scrollHeight")
            page.set_viewport_size({"width": width, "height": height})
            page.wait_for_function(_PAINTED)
            page.screenshot(path=str(SHOTS / f"{name}-{width}.png"))
        page.set_viewport_size({"width": WIDTHS[0], "height": 900})


def _eml(outbox: Path) -> list[email.message.EmailMessage]:
    return [email.message_from_bytes(p.read_bytes(), policy=email.policy.default)
            for p in sorted(outbox.glob("*.eml"))] if outbox.is_dir() else []


def _focus_by_tab(page: Any, selector: str, limit: int = 30) -> None:
    """Press Tab until the element matching ``selector`` has the focus."""
    for _ in range(limit):
        if page.evaluate("s => document.activeElement?.matches(s) ?? false", selector):
            return
        page.keyboard.press("Tab")
    pytest.fail(f"Tab never reached {selector}")


def _handed(page: Any) -> int:
    return int(page.get_by_test_id("progress-handed").inner_text().split(" of ")[0])


def _swaps(page: Any) -> int:
    return int(page.evaluate("() => window.__swaps || 0"))


def _count_swaps(page: Any) -> None:
    """Count htmx's swaps of the progress block; a full reload would reset the counter."""
    page.evaluate("() => { window.__swaps = 0; document.addEventListener('htmx:afterSwap',"
                  " () => { window.__swaps += 1; }); }")


def _ledger(app: App, edition_id: int) -> str:
    """The edition's status and its batches by status, to say why a send did not finish."""
    with app.sessions() as s:
        status, paused = s.execute(select(Edition.status, Edition.paused_at).where(
            Edition.id == edition_id)).one()
        batches = dict(s.execute(select(Batch.status, func.count()).where(
            Batch.edition_id == edition_id).group_by(Batch.status)).all())
    return f"edition {edition_id}: {status}, paused at {paused}, batches {batches}"


def _until_sent(page: Any, app: App, edition_id: int) -> None:
    from playwright.sync_api import expect

    try:
        expect(page.get_by_test_id("progress-status")).to_have_text("sent", timeout=WAIT)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{_ledger(app, edition_id)}") from exc


def _start_send(page: Any, base: str, cadence: str, readers: int) -> int:
    page.goto(f"{base}/admin/send-now?cadence={cadence}")
    assert page.get_by_test_id(f"plan-{cadence}").locator("td").first.inner_text() == str(readers)
    page.get_by_test_id("send-confirm").check()
    page.get_by_test_id("send-start").click()
    page.wait_for_url(re.compile(r"/admin/sends/\d+"))
    return int(page.url.rsplit("/", 1)[1].split("?")[0])


def test_the_console_in_chromium(console: dict[str, Any]) -> None:
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=30_000)

    app: App = console["app"]
    base, outbox, seeded = console["url"], console["outbox"], console["seeded"]
    env = worker_env(app.settings.database_url, app.settings.broker_url, "",
                     DIGEST_BATCH_SIZE=str(BATCH), DIGEST_MAX_SEND_ATTEMPTS="30")
    csp_errors: list[str] = []
    feeds: FeedServer = console["feeds"]
    with running_sink() as sink, celery_workers(1, {**env, "DIGEST_SENDGRID_HOST": sink.url},
                                                console["tmp"]), sync_playwright() as p:
        browser = launch(p)
        try:
            page = browser.new_page(viewport={"width": WIDTHS[0], "height": 900})
            page.on("console", lambda m: csp_errors.append(m.text)
                    if "Content Security Policy" in m.text else None)
            looker = Looker(page)

            # Not signed in: the console sends the operator to sign in, and back after.
            page.goto(base + "/admin/readers")
            expect(page).to_have_url(re.compile(r"/admin/sign-in\?next=%2Fadmin%2Freaders$"))
            page.get_by_label("Password").fill("not the password")
            page.get_by_role("button", name="Sign in").click()
            expect(page.get_by_test_id("sign-in-error")).to_be_visible()
            looker.look("sign-in-error")

            # Keyboard only: Tab to the password, type it, Enter; Tab along the nav, Enter.
            page.goto(base + "/admin/sign-in")
            looker.look("sign-in")
            _focus_by_tab(page, "#password")
            page.keyboard.type(PASSWORD)
            page.keyboard.press("Enter")
            expect(page).to_have_url(base + "/admin")
            page.keyboard.press("Tab")
            assert page.evaluate("() => document.activeElement.className") == "skip"
            _focus_by_tab(page, '[data-testid="nav-preview"]')
            page.keyboard.press("Enter")
            expect(page).to_have_url(base + "/admin/next")

            # The dashboard: the seeded list, the next digests, the charts.
            page.get_by_test_id("nav-dashboard").click()
            total = WEEKLY + DAILY + 12 + 9 + 17 + 5 + 2
            expect(page.get_by_test_id("readers-total")).to_have_text(str(total))
            expect(page.get_by_test_id("next-weekly-readers")).to_have_text(str(WEEKLY))
            expect(page.get_by_test_id("next-weekly-posts")).to_have_text("3")
            assert page.locator(".chart svg").count() == 2
            looker.look("dashboard")

            # Preview at two widths: the mail's own HTML in sandboxed frames of 640 and 375 px.
            page.get_by_test_id("nav-preview").click()
            subject = page.get_by_test_id("preview-subject").inner_text()
            for testid, width in (("preview-desktop", 640), ("preview-mobile", 375)):
                frame = page.get_by_test_id(testid)
                assert frame.get_attribute("sandbox") == ""
                assert round(frame.bounding_box()["width"]) == width
                inner = page.frame_locator(f'[data-testid="{testid}"]')
                expect(inner.get_by_text("Russia-West Negotiations Start").first).to_be_visible()
                assert inner.locator("body").evaluate(
                    "b => b.scrollWidth <= b.clientWidth + 1"), f"{testid} scrolls sideways"
            looker.look("preview")

            # A test copy, found in the outbox.
            page.get_by_label("Send a test of this digest to").fill("operator@example.org")
            page.get_by_test_id("test-send").click()
            expect(page.get_by_test_id("test-result")).to_be_visible()
            (copy,) = _eml(outbox)
            assert copy["To"].addresses[0].addr_spec == "operator@example.org"
            assert "[Test]" in str(copy["Subject"]) and subject in str(copy["Subject"])
            looker.look("preview-test-sent")

            # Send now: the confirmation step, then progress polled by htmx until "sent".
            page.get_by_test_id("nav-send").click()
            looker.look("send-now")
            weekly_id = _start_send(page, base, "weekly", WEEKLY)
            _count_swaps(page)
            _until_sent(page, app, weekly_id)
            assert _swaps(page) >= 1, "the status changed without htmx (a reload?)"
            expect(page.get_by_test_id("progress-handed")).to_have_text(f"{WEEKLY} of {WEEKLY}")
            assert all(sink.received[a] == 1 for a in seeded.weekly)
            looker.look("send-progress-sent")

            # Pause mid-way with the worker running; resume; everyone gets exactly one copy.
            sink.hold_at = sink.requests + 3  # the worker is stuck in its third batch
            daily_id = _start_send(page, base, "daily", DAILY)
            assert sink.held.wait(60), "the worker sent nothing"
            page.get_by_test_id("progress-pause").click()
            expect(page.get_by_test_id("progress-status")).to_have_text("paused")
            expect(page.get_by_test_id("progress-notice")).to_contain_text("Paused")
            sink.release.set()  # the held request fails; its batch waits like the others
            queue = redis.Redis.from_url(app.settings.broker_url)

            def settled() -> bool:  # every queued batch taken and skipped, none in flight
                with app.sessions() as s:
                    flying = s.scalar(select(func.count()).select_from(Batch).where(
                        Batch.edition_id == daily_id, Batch.status == BatchStatus.SENDING))
                return flying == 0 and queue.llen("celery") == 0

            assert wait_for(settled, 60), "the worker kept a batch of the paused send"
            _count_swaps(page)
            page.wait_for_function("() => (window.__swaps || 0) >= 3", timeout=WAIT)
            handed = _handed(page)
            assert 0 < handed < DAILY, handed
            assert sum(sink.received[a] for a in seeded.daily) == handed  # nothing moved
            expect(page.get_by_test_id("progress-status")).to_have_text("paused")
            looker.look("send-progress-paused")
            page.get_by_test_id("progress-resume").click()
            expect(page.get_by_test_id("progress-notice")).to_contain_text("Resumed")
            _until_sent(page, app, daily_id)
            expect(page.get_by_test_id("progress-handed")).to_have_text(f"{DAILY} of {DAILY}")
            assert [sink.received[a] for a in seeded.daily] == [1] * DAILY
            assert sum(sink.received.values()) == WEEKLY + DAILY

            page.get_by_test_id("nav-editions").click()
            expect(page.get_by_test_id(f"edition-{daily_id}")).to_contain_text("sent")
            looker.look("editions")
            page.get_by_test_id(f"edition-{weekly_id}").get_by_role("link").first.click()
            expect(page.get_by_test_id("edition-status")).to_have_text("sent")
            looker.look("edition")

            # Find a reader by address and erase them, through the confirmation step.
            gone = seeded.weekly[3]
            page.get_by_test_id("nav-readers").click()
            looker.look("readers")
            # Any case in the first letters (the search spells out the first three's cases).
            page.get_by_label("Address starts with").fill(gone[:3].upper() + gone[3:])
            page.get_by_role("button", name="Search").click()
            expect(page.get_by_test_id("reader-row")).to_have_count(1)
            looker.look("readers-search")
            page.get_by_role("link", name=gone).click()
            expect(page.get_by_test_id("reader-email")).to_have_text(gone)
            expect(page.get_by_test_id("reader-editions")).to_contain_text("weekly")
            looker.look("reader")
            page.get_by_role("button", name="Erase…").click()
            expect(page.get_by_test_id("confirm-erase")).to_be_visible()
            looker.look("reader-confirm-erase")
            page.get_by_test_id("confirm-erase").click()
            expect(page.get_by_test_id("reader-notice")).to_contain_text("Erased")
            expect(page.get_by_test_id("reader-status")).to_contain_text("deleted")
            looker.look("reader-erased")
            with app.sessions() as s:
                assert s.scalar(select(func.count()).select_from(Subscriber).where(
                    Subscriber.email == gone)) == 0

            # Import a CSV: the preview says what will be imported and skipped; confirm.
            csv_file = console["tmp"] / "readers.csv"
            csv_file.write_text(
                "email,name\n"
                "zeynep.kaya@example.org,Zeynep Kaya\n"
                "o'brien+news@example.ie,Siobhán O'Brien\n"
                "not-an-address,Nobody\n"
                f"{seeded.weekly[0]},Already here\n"
                f"{gone},Erased before\n", encoding="utf-8")
            page.get_by_test_id("nav-readers").click()
            page.get_by_test_id("import-link").click()
            looker.look("import-upload")
            page.get_by_label("CSV file").set_input_files(str(csv_file))
            page.get_by_role("button", name="Preview").click()
            expect(page.get_by_test_id("preview-import-count")).to_have_text("2")
            expect(page.get_by_test_id("preview-skip-count")).to_have_text("3")
            expect(page.get_by_test_id("preview-skipped")).to_contain_text("not-an-address")
            expect(page.get_by_test_id("preview-imported")).to_contain_text("zeynep.kaya@")
            with app.sessions() as s:  # the preview wrote nothing
                assert s.scalar(select(func.count()).select_from(Subscriber).where(
                    Subscriber.email == "zeynep.kaya@example.org")) == 0
            looker.look("import-preview")
            page.get_by_role("button", name="Import 2 readers").click()
            expect(page.get_by_test_id("imported-count")).to_have_text("2")
            looker.look("import-result")
            with app.sessions() as s:
                found = dict(s.execute(select(Subscriber.email, Subscriber.status).where(
                    Subscriber.email.in_(("zeynep.kaya@example.org",
                                          "o'brien+news@example.ie")))).all())
            assert found == {"zeynep.kaya@example.org": SubscriberStatus.ACTIVE,
                             "o'brien+news@example.ie": SubscriberStatus.ACTIVE}

            # Add a feed served on 127.0.0.1 and poll it; the result is shown each time.
            feeds.set("/field-notes/", NEW_FEED.format(date=email.utils.format_datetime(
                datetime.now(UTC))))
            page.get_by_test_id("nav-feeds").click()
            looker.look("feeds")
            page.get_by_label("Feed URL").fill(feeds.url("/field-notes/"))
            page.get_by_role("button", name="Add").click()
            expect(page.get_by_test_id("poll-result")).to_contain_text("2 new posts")
            expect(page.get_by_test_id("poll-result")).to_contain_text("Letters from Tbilisi")
            row = page.get_by_test_id("feed-row").filter(has_text=feeds.url("/field-notes/"))
            expect(row).to_contain_text("Field Notes")
            looker.look("feeds-added")
            row.get_by_role("button", name="Poll now").click()
            expect(page.get_by_test_id("poll-result")).to_contain_text("unchanged")
            looker.look("feeds-polled")
            page.get_by_test_id("feed-row").filter(has_text=feeds.url("/field-notes/")) \
                .get_by_role("button", name="Remove…").click()
            expect(page.get_by_test_id("confirm-remove")).to_be_visible()
            looker.look("feed-confirm-remove")

            # The dashboard again, now with today's sends: the README's screenshot.
            page.get_by_test_id("nav-dashboard").click()
            page.goto(base + "/admin?refresh=1")
            expect(page.get_by_test_id("next-weekly-posts")).to_have_text("2")
            looker.look("dashboard-after")
        finally:
            browser.close()

    assert not looker.failures, "\n".join(looker.failures)
    assert not csp_errors, csp_errors
    for name in looker.names:
        for width in WIDTHS:
            assert (SHOTS / f"{name}-{width}.png").stat().st_size > 5000
