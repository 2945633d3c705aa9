"""A TestClient signed in to the console, for the console's page tests.

    client, csrf = signed_in_client(app)   # app: the `app` fixture (an App) or a FastAPI app
    client.post("/admin/readers/add", data={"csrf_token": csrf, "email": "a@example.org"})

It signs in through the real form with the test settings' admin token (no argon2 cost), so
the cookie is the one a browser gets. The client's base URL is https://news.example.org (the
test settings' DIGEST_BASE_URL), which the Secure cookie needs; redirects are not followed.
"""

from __future__ import annotations

import re
import uuid

from fastapi import FastAPI
from fastapi.testclient import TestClient

from digest.readers.ratelimit import Limit, RateLimiter
from digest.runtime import App
from digest.web.app import create_app
from tests.conftest import REDIS_TEST_URL

ADMIN_TOKEN = "test-admin-token"  # tests.conftest.make_settings
BASE_URL = "https://news.example.org"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def console_limiter() -> RateLimiter:
    """A limiter on the test Redis with its own prefix and limits no page test reaches."""
    return RateLimiter(REDIS_TEST_URL, prefix=f"test:console:{uuid.uuid4().hex}",
                       limits={"ip": Limit(1000, 60), "sign-in": Limit(1000, 60)})


def console_app(app: App | FastAPI) -> FastAPI:
    """The web app for a digest App (with a test limiter), or ``app`` itself."""
    if isinstance(app, FastAPI):
        return app
    return create_app(app, limiter=console_limiter())


def csrf_of(html: str) -> str:
    """The CSRF token a console page prints in its forms."""
    found = _CSRF.search(html)
    assert found, "no csrf_token field on the page"
    return found.group(1)


def signed_in_client(app: App | FastAPI) -> tuple[TestClient, str]:
    """(a TestClient holding a console session, the session's CSRF token)."""
    client = TestClient(console_app(app), base_url=BASE_URL, follow_redirects=False)
    answer = client.post("/admin/sign-in", data={"password": ADMIN_TOKEN, "next": "/admin"})
    assert answer.status_code == 303, answer.text
    page = client.get("/admin")
    assert page.status_code == 200, page.text
    return client, csrf_of(page.text)
