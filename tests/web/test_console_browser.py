"""The console's sign-in page and dashboard in Chromium: htmx loads under the console's CSP with
no violation, nothing overflows at 375 px, axe finds no serious problem in either colour
scheme, the keyboard reaches the sign-in form, and screenshots go to test-artifacts/."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from digest.bootstrap import build
from digest.readers.ratelimit import Limit, RateLimiter
from digest.store import migrate as schema
from digest.store.models import Cadence, Subscriber, SubscriberStatus
from digest.web.app import create_app
from tests.conftest import REDIS_TEST_URL, make_settings
from tests.e2e.browser import check_layout, launch, require_browser, serving
from tests.smtp_server import free_port
from tests.web.console_client import ADMIN_TOKEN

pytestmark = pytest.mark.browser


@pytest.fixture
def served(tmp_path):
    require_browser(axe=True)
    port = free_port()
    settings = make_settings(tmp_path, base_url=f"http://127.0.0.1:{port}",
                             mail_backend="smtp", postal_address="")  # two warnings shown
    app = build(settings)
    schema.upgrade(app.engine)
    now = datetime.now(UTC)
    with app.sessions() as session, session.begin():
        for n in range(40):
            at = now - timedelta(days=3 * n)
            session.add(Subscriber(
                email=f"r{n}@example.org", email_hash=f"h{n}", created_at=at, confirmed_at=at,
                status=SubscriberStatus.UNSUBSCRIBED if n % 7 == 0 else SubscriberStatus.ACTIVE,
                cadence=Cadence.DAILY if n % 3 == 0 else Cadence.WEEKLY,
                unsubscribed_at=at + timedelta(days=1) if n % 7 == 0 else None))
    limiter = RateLimiter(REDIS_TEST_URL, prefix=f"test:{uuid.uuid4().hex}",
                          limits={"sign-in": Limit(100, 60)})
    with serving(create_app(app, limiter=limiter), port):
        yield settings.base_url
    limiter.close()
    app.engine.dispose()


def _sign_in(page, base_url: str) -> None:
    page.goto(base_url + "/admin")
    assert "/admin/sign-in" in page.url
    page.keyboard.press("Tab")  # the skip link first, then the form
    page.get_by_label("Password").fill(ADMIN_TOKEN)
    page.keyboard.press("Enter")
    page.wait_for_url(base_url + "/admin", timeout=30_000)


def test_the_console_in_chromium(served):
    from playwright import sync_api

    problems: list[str] = []
    with sync_api.sync_playwright() as p:
        browser = launch(p)
        try:
            # The console's own CSP in force: htmx runs, nothing is refused.
            page = browser.new_context().new_page()
            errors: list[str] = []
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            _sign_in(page, served)
            page.wait_for_function("() => window.htmx !== undefined")
            assert page.evaluate("() => htmx.config.allowEval") is False
            assert page.get_by_test_id("production-warnings").is_visible()
            assert page.locator("svg[role=img] title").count() >= 1
            assert not errors, errors

            # Each width and colour scheme: no sideways scroll, axe clean, a screenshot.
            checked = browser.new_context(bypass_csp=True).new_page()
            _sign_in(checked, served)
            for name, path in (("console-dashboard", "/admin"),
                               ("console-sign-in", "/admin/sign-in")):
                if name == "console-sign-in":
                    checked.context.clear_cookies()
                checked.goto(served + path)
                check_layout(checked, name, problems)
        finally:
            browser.close()
    assert not problems, "\n".join(problems)
