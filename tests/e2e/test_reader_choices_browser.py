"""The reader's time zone in headless Chromium: the sign-up page pre-selects the browser's
zone (Playwright's ``timezone_id``) through /static/reader/timezone.js under the page's real
Content-Security-Policy (no ``bypass_csp``), keeps the operator's without JavaScript, and the
preferences page changes zone, hour, weekday and topics; axe-core finds nothing serious."""

from __future__ import annotations

import email
import email.policy
import re
import time
import uuid
from pathlib import Path

import pytest
from sqlalchemy import select

from digest.bootstrap import build
from digest.readers.addresses import email_hash
from digest.readers.ratelimit import RateLimiter
from digest.readers.roster import add
from digest.store import migrate as schema
from digest.store.models import Subscriber, Topic
from digest.tokens import Purpose
from digest.web.app import create_app
from tests.conftest import REDIS_TEST_URL, make_settings
from tests.e2e.browser import axe_violations, launch, require_browser, serving
from tests.smtp_server import free_port

pytestmark = pytest.mark.browser


@pytest.fixture
def served(tmp_path):
    require_browser(axe=True)
    port = free_port()
    settings = make_settings(tmp_path, base_url=f"http://127.0.0.1:{port}",
                             mail_backend="outbox", min_fill_seconds=0.5)
    app = build(settings)
    schema.upgrade(app.engine)
    with app.sessions() as s, s.begin():
        s.add_all([Topic(key="tech", name="Technology"), Topic(key="art", name="Art")])
    limiter = RateLimiter(REDIS_TEST_URL, prefix=f"test:{uuid.uuid4().hex}")
    with serving(create_app(app, limiter=limiter), port):
        yield app, settings.base_url, settings.outbox_dir
    limiter.close()
    app.engine.dispose()


def _row(app, address: str) -> Subscriber:
    with app.sessions() as s:
        return s.scalars(select(Subscriber).where(
            Subscriber.email_hash == email_hash(address, app.address_key))).one()


def _confirm_link(outbox: Path, base_url: str) -> str:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        found = sorted(outbox.glob("*.eml")) if outbox.is_dir() else []
        if found:
            message = email.message_from_bytes(found[0].read_bytes(),
                                               policy=email.policy.default)
            text = message.get_body(("plain",)).get_content()
            return re.search(rf"{re.escape(base_url)}/confirm/\S+", text).group(0)
        time.sleep(0.1)
    pytest.fail("no confirmation mail")


def _csp_errors(page) -> list[str]:
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text)
            if "Content Security Policy" in m.text else None)
    return errors


def test_signup_preselects_the_browsers_zone_and_the_reader_keeps_it(served):
    from playwright import sync_api
    app, base_url, outbox = served
    with sync_api.sync_playwright() as p:
        browser = launch(p)
        try:
            page = browser.new_context(timezone_id="Asia/Tokyo").new_page()
            csp_errors = _csp_errors(page)
            page.goto(base_url + "/")
            page.wait_for_load_state()
            zone = page.get_by_label("Your time zone")
            assert zone.input_value() == "Asia/Tokyo"
            assert axe_violations(page) == []
            page.get_by_label("When the digest arrives").select_option("7")
            page.get_by_label("Your email address").fill("tokyo@example.org")
            time.sleep(0.6)  # a person's pace (DIGEST_MIN_FILL_SECONDS)
            page.get_by_role("button", name="Subscribe").click()
            page.wait_for_load_state()
            assert "Check your inbox" in page.content()
            page.goto(_confirm_link(outbox, base_url))
            page.get_by_role("button", name="Yes, subscribe me").click()
            page.wait_for_load_state()
            assert "You are subscribed" in page.content()
            assert csp_errors == []

            # Inline script stays forbidden on the page that may load our script file.
            page.goto(base_url + "/")
            with pytest.raises(sync_api.Error):
                page.add_script_tag(content="window.inlineRan = true;")
            assert page.evaluate("() => window.inlineRan") is None
        finally:
            browser.close()
    row = _row(app, "tokyo@example.org")
    assert (row.timezone, row.delivery_hour, row.slot) == ("Asia/Tokyo", 7, "Asia/Tokyo||7")


def test_without_javascript_the_operators_zone_is_the_default(served):
    from playwright import sync_api
    app, base_url, _ = served
    with sync_api.sync_playwright() as p:
        browser = launch(p)
        try:
            page = browser.new_context(timezone_id="Asia/Tokyo",
                                       java_script_enabled=False).new_page()
            page.goto(base_url + "/")
            assert page.get_by_label("Your time zone").input_value() == "Europe/Istanbul"
            page.get_by_label("Your email address").fill("nojs@example.org")
            time.sleep(0.6)
            page.get_by_role("button", name="Subscribe").click()
            page.wait_for_load_state()
            assert "Check your inbox" in page.content()
        finally:
            browser.close()
    row = _row(app, "nojs@example.org")
    assert (row.timezone, row.delivery_hour, row.slot) == (None, None, "")


def test_preferences_change_zone_hour_weekday_and_topics(served):
    from playwright import sync_api
    app, base_url, _ = served
    add(app, "pat@example.org")
    row = _row(app, "pat@example.org")
    prefs = f"{base_url}/preferences/{app.tokens.make(Purpose.PREFERENCES, row.id, row.link_key)}"
    with sync_api.sync_playwright() as p:
        browser = launch(p)
        try:
            page = browser.new_context(timezone_id="America/Lima").new_page()
            csp_errors = _csp_errors(page)
            page.goto(prefs)
            page.wait_for_load_state()
            assert "Your next digest: Mondays at 08:00 (Europe/Istanbul)" in page.inner_text(
                "main")
            # No zone saved yet: the browser's is offered.
            assert page.get_by_label("Your time zone").input_value() == "America/Lima"
            page.get_by_label("When the digest arrives").select_option("7")
            page.get_by_label("Day of the weekly digest").select_option(label="Wednesday")
            page.get_by_label("Art").check()
            assert axe_violations(page) == []
            page.get_by_role("button", name="Save").click()
            page.wait_for_load_state()
            text = page.inner_text("main")
            assert "your digest now comes Wednesdays at 07:00 (America/Lima)" in text
            assert "Your next digest: Wednesdays at 07:00 (America/Lima)" in text
            assert axe_violations(page) == []

            # A hostile hour (a doctored select): a clear error, nothing changed.
            page.eval_on_selector("#hour", "s => { s.options[1].value = '25'; "
                                           "s.selectedIndex = 1; }")
            page.get_by_role("button", name="Save").click()
            page.wait_for_load_state()
            assert page.get_by_role("alert").inner_text() == (
                "The hour must be a whole number from 0 to 23.")
            assert axe_violations(page) == []
            assert csp_errors == []
        finally:
            browser.close()
    with app.sessions() as s:
        art = s.scalars(select(Topic.id).where(Topic.key == "art")).one()
    row = _row(app, "pat@example.org")
    assert (row.timezone, row.delivery_hour, row.delivery_weekday, row.topic_ids) == (
        "America/Lima", 7, 2, [art])
