"""The whole reader journey in headless Chromium against the real app served by uvicorn.

Type an address, submit, read the confirmation .eml from the outbox, open its link, press
confirm; then unsubscribe with the RFC 8058 one-click POST exactly as Gmail sends it.
"""

from __future__ import annotations

import email
import email.policy
import re
import time
import uuid
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from digest.bootstrap import build
from digest.readers.addresses import email_hash
from digest.readers.ratelimit import RateLimiter
from digest.store import migrate as schema
from digest.store.models import Subscriber, SubscriberStatus
from digest.web.app import create_app
from tests.conftest import REDIS_TEST_URL, make_settings
from tests.e2e.browser import launch, require_browser, serving
from tests.smtp_server import free_port

pytestmark = pytest.mark.browser

ADDRESS = "Browser.Reader@Example.org"




@pytest.fixture
def served(tmp_path):
    """The real app on a free 127.0.0.1 port, mailing into tmp_path/outbox."""
    port = free_port()
    settings = make_settings(tmp_path, base_url=f"http://127.0.0.1:{port}",
                             mail_backend="outbox", min_fill_seconds=0.5)
    app = build(settings)
    schema.upgrade(app.engine)
    limiter = RateLimiter(REDIS_TEST_URL, prefix=f"test:{uuid.uuid4().hex}")
    with serving(create_app(app, limiter=limiter), port):
        yield app, settings.base_url, settings.outbox_dir
    limiter.close()
    app.engine.dispose()


def _mails(outbox: Path) -> list[email.message.EmailMessage]:
    return [email.message_from_bytes(p.read_bytes(), policy=email.policy.default)
            for p in sorted(outbox.glob("*.eml"))]


def _wait_for_mail(outbox: Path, count: int) -> list[email.message.EmailMessage]:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        mails = _mails(outbox) if outbox.is_dir() else []
        if len(mails) >= count:
            return mails
        time.sleep(0.1)
    pytest.fail(f"expected {count} mail(s) in {outbox}")


def _status(app) -> SubscriberStatus:
    with app.sessions() as s:
        return s.scalars(select(Subscriber.status).where(
            Subscriber.email_hash == email_hash(ADDRESS, app.address_key))).one()


def test_sign_up_confirm_and_one_click_unsubscribe(served):
    require_browser()
    from playwright import sync_api
    app, base_url, outbox = served

    with sync_api.sync_playwright() as p:
        browser = launch(p)
        try:
            page = browser.new_page()
            page.goto(base_url + "/")
            page.get_by_label("Your email address").fill(ADDRESS)
            time.sleep(0.8)  # a person takes longer than DIGEST_MIN_FILL_SECONDS
            page.get_by_role("button", name="Subscribe").click()
            page.wait_for_load_state()
            assert "Check your inbox" in page.content()
            assert _status(app) is SubscriberStatus.PENDING

            (confirmation,) = _wait_for_mail(outbox, 1)
            assert confirmation["To"].addresses[0].addr_spec == "Browser.Reader@example.org"
            text = confirmation.get_body(("plain",)).get_content()
            link = re.search(rf"{re.escape(base_url)}/confirm/\S+", text).group(0)
            page.goto(link)
            assert _status(app) is SubscriberStatus.PENDING  # opening the link changes nothing
            page.get_by_role("button", name="Yes, subscribe me").click()
            page.wait_for_load_state()
            assert "You are subscribed" in page.content()
            assert _status(app) is SubscriberStatus.ACTIVE
        finally:
            browser.close()

    mails = _wait_for_mail(outbox, 2)
    (welcome,) = [m for m in mails if str(m["Subject"]).startswith("Welcome")]
    assert welcome["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    one_click = re.search(r"<(https?://[^>]+)>", welcome["List-Unsubscribe"]).group(1)
    # Exactly what Gmail sends: a bare POST, form-encoded body, no cookies, no redirects.
    response = httpx.post(one_click, content=b"List-Unsubscribe=One-Click",
                          headers={"Content-Type": "application/x-www-form-urlencoded"},
                          follow_redirects=False, timeout=10)
    assert response.status_code == 200
    assert _status(app) is SubscriberStatus.UNSUBSCRIBED
