"""Every reader page in headless Chromium: fast submits, axe-core, both widths, both schemes.

Walks the reader's journey against the real app served by uvicorn. Each page reached is
checked at 375 and 1280 px in light and dark schemes with axe-core (injected from
tools/node_modules, installed by ``make test``): no serious or critical violation. A
screenshot of each is written to test-artifacts/ for a person to look at.
"""

from __future__ import annotations

import email
import email.policy
import re
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from digest.bootstrap import build
from digest.mail.render import render_digest
from digest.readers.addresses import email_hash
from digest.readers.ratelimit import Limit, RateLimiter
from digest.store import migrate as schema
from digest.store.models import Cadence, Edition, EditionStatus, Subscriber
from digest.tokens import Purpose
from digest.web.app import create_app
from tests.conftest import REDIS_TEST_URL, make_settings
from tests.e2e.browser import ARTIFACTS, axe_violations, launch, require_browser, serving
from tests.mail_samples import sample_sections
from tests.smtp_server import free_port

pytestmark = pytest.mark.browser

WIDTHS = (375, 1280)
SCHEMES = ("light", "dark")
IP_LIMIT = 12


@pytest.fixture
def served(tmp_path):
    """The real app (default DIGEST_MIN_FILL_SECONDS) on a free port, one sent digest in it."""
    require_browser(axe=True)
    port = free_port()
    settings = make_settings(tmp_path, base_url=f"http://127.0.0.1:{port}",
                             mail_backend="outbox", min_fill_seconds=2.0)
    app = build(settings)
    schema.upgrade(app.engine)
    rendered = render_digest(settings, sample_sections(3))
    with app.sessions() as session, session.begin():
        edition = Edition(key="weekly:2022-01-10", cadence=Cadence.WEEKLY,
                          status=EditionStatus.SENT, subject=rendered.subject,
                          html=rendered.html, text=rendered.text, post_ids=[],
                          finished_at=datetime(2022, 1, 10, 8, tzinfo=UTC))
        session.add(edition)
    limiter = RateLimiter(REDIS_TEST_URL, prefix=f"test:{uuid.uuid4().hex}",
                          limits={"ip": Limit(IP_LIMIT, 3600), "email": Limit(1000, 3600)})
    with serving(create_app(app, limiter=limiter), port):
        yield app, settings.base_url, settings.outbox_dir
    limiter.close()
    app.engine.dispose()


def _mails(outbox: Path) -> list[bytes]:
    return [p.read_bytes() for p in sorted(outbox.glob("*.eml"))] if outbox.is_dir() else []


def _wait_for_mail(outbox: Path, count: int) -> list[bytes]:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if len(found := _mails(outbox)) >= count:
            return found
        time.sleep(0.1)
    pytest.fail(f"expected {count} mail(s) in {outbox}")


def _link(raw: bytes, kind: str, base_url: str) -> str:
    message = email.message_from_bytes(raw, policy=email.policy.default)
    text = message.get_body(("plain",)).get_content()
    return re.search(rf"{re.escape(base_url)}/{kind}/\S+", text).group(0)


class Checker:
    """Looks at the page now shown: four renderings, screenshots, axe, a link onward."""

    def __init__(self, page) -> None:
        self.page = page
        self.failures: list[str] = []
        self.names: list[str] = []
        ARTIFACTS.mkdir(exist_ok=True)

    def check(self, name: str, *, onward: bool = True) -> None:
        page = self.page
        page.wait_for_load_state()
        self.names.append(name)
        if onward:
            hrefs = page.eval_on_selector_all("a[href]", "els => els.map(e => e.href)")
            assert hrefs, f"{name}: no link onward"
        for width in WIDTHS:
            page.set_viewport_size({"width": width, "height": 900})
            for scheme in SCHEMES:
                page.emulate_media(color_scheme=scheme)
                page.screenshot(path=str(ARTIFACTS / f"{name}-{width}-{scheme}.png"),
                                full_page=True)
                self.failures += [f"{name} {width}px {scheme}: {v}"
                                  for v in axe_violations(page)]


def _submit(page, address: str) -> None:
    page.get_by_label("Your email address").fill(address)
    page.get_by_role("button", name="Subscribe").click()
    page.wait_for_load_state()


def test_every_reader_page_in_chromium(served):
    from playwright import sync_api
    app, base_url, outbox = served

    with sync_api.sync_playwright() as p:
        browser = launch(p)
        try:
            # bypass_csp: axe is injected as a script; the pages themselves run none.
            page = browser.new_context(bypass_csp=True).new_page()
            checker = Checker(page)

            page.goto(base_url + "/")
            checker.check("signup")

            # Autofill speed: well under DIGEST_MIN_FILL_SECONDS after the page loaded.
            page.goto(base_url + "/")
            started = time.monotonic()
            _submit(page, "Fast.Reader@example.org")
            assert time.monotonic() - started < 1.0
            content = page.content()
            assert "Check your inbox" not in content or _mails(outbox), "a silent success"
            if not _mails(outbox):
                assert "press Subscribe again" in content
                checker.check("signup-press-again")
                page.get_by_role("button", name="Subscribe").click()
                page.wait_for_load_state()
            assert "Check your inbox" in page.content()
            assert "Fast.Reader@example.org" in page.content()
            checker.check("check-inbox")
            (confirmation,) = _wait_for_mail(outbox, 1)
            assert b"72 hours" in confirmation

            # Passes the browser's own check (type=email), not the server's; as fast as autofill.
            page.goto(base_url + "/")
            started = time.monotonic()
            _submit(page, "reader@example")
            assert time.monotonic() - started < 1.0
            assert page.title().startswith("Error:")
            assert page.get_by_role("alert").is_visible()
            assert page.get_by_label("Your email address").get_attribute("aria-invalid") == "true"
            assert "Check your inbox" not in page.content()
            checker.check("signup-error")

            link = _link(confirmation, "confirm", base_url)
            page.goto(link)
            checker.check("confirm")
            page.goto(link + "x")
            assert "Send me a new link" in page.content()
            checker.check("confirm-link-broken")
            page.goto(link)
            page.get_by_role("button", name="Yes, subscribe me").click()
            page.wait_for_load_state()
            assert "You are subscribed" in page.content()
            checker.check("subscribed")

            with app.sessions() as s:
                key = email_hash("Fast.Reader@example.org", app.address_key)
                sub = s.scalars(select(Subscriber).where(Subscriber.email_hash == key)).one()
                sub_id, key = sub.id, sub.link_key
            prefs = f"{base_url}/preferences/{app.tokens.make(Purpose.PREFERENCES, sub_id, key)}"
            unsub = f"{base_url}/unsubscribe/{app.tokens.make(Purpose.UNSUBSCRIBE, sub_id, key)}"
            page.goto(prefs)
            checker.check("preferences")
            page.get_by_label("Pause all emails for now").check()
            page.get_by_role("button", name="Save").click()
            page.wait_for_load_state()
            assert "emails are paused" in page.content()
            checker.check("preferences-saved")

            page.goto(unsub)
            checker.check("unsubscribe")
            page.get_by_role("button", name="Unsubscribe").click()
            page.wait_for_load_state()
            assert "You are unsubscribed" in page.content()
            checker.check("unsubscribed")
            page.goto(prefs)
            assert "Resubscribe" in page.content()
            checker.check("preferences-unsubscribed")

            page.goto(base_url + "/archive")
            checker.check("archive")
            page.get_by_role("link", name=re.compile("Russia-West")).click()
            page.wait_for_load_state()
            assert page.get_by_role("main").count() == 1
            checker.check("archive-edition")
            page.goto(base_url + "/archive/99999999999999999999")
            checker.check("archive-not-found")

            for n in range(IP_LIMIT + 1):  # the per-address-of-sender limit, as a reader sees it
                page.goto(base_url + "/")
                time.sleep(0.1)
                _submit(page, f"reader{n}@example.org")
                if "press Subscribe again" in page.content():
                    page.get_by_role("button", name="Subscribe").click()
                    page.wait_for_load_state()
                if "Please wait" in page.content():
                    break
            assert re.search(r"try again in \d+ minutes?\.", page.content())
            checker.check("rate-limited")
        finally:
            browser.close()

    assert not checker.failures, "\n".join(checker.failures)
    shots = {p.name for p in ARTIFACTS.glob("*.png")}
    for name in checker.names:
        for width in WIDTHS:
            for scheme in SCHEMES:
                assert f"{name}-{width}-{scheme}.png" in shots
