"""The signup door: bot checks, the rate limiter's windows, the body size limit."""

from __future__ import annotations

import uuid

import pytest
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient

from digest.errors import RateLimitedError
from digest.readers.ratelimit import Limit, RateLimiter
from digest.readers.signup import (
    SignupRequest,
    StaleFormError,
    SubmittedTooFastError,
    check_form,
    form_stamp,
    is_bot,
    second_press_stamp,
)
from digest.web.limits import BodySizeLimit
from tests.conftest import make_settings


@pytest.fixture
def settings(tmp_path):
    return make_settings(tmp_path, min_fill_seconds=3)


def _req(**kw):
    return SignupRequest(email="r@example.org", ip="203.0.113.1", **kw)


def test_people_pass(settings):
    assert not is_bot(settings, _req())
    assert not is_bot(settings, _req(stamp=form_stamp(settings, 1000.0)), now=1004.0)


@pytest.mark.parametrize("request_, now", [
    (dict(honeypot="http://spam.example"), None),
    (dict(stamp="1000.000.forged"), 1004.0),
    (dict(stamp="not-a-stamp"), 1004.0),
])
def test_bots_are_recognised(settings, request_, now):
    assert is_bot(settings, _req(**request_), now=now)


def test_too_fast_and_stale_stamps(settings):
    stamp = form_stamp(settings, 1000.0)
    # Too fresh is a person with autofill as often as a bot: asked to press again, not dropped.
    assert not is_bot(settings, _req(stamp=stamp), now=1001.0)
    with pytest.raises(SubmittedTooFastError):
        check_form(settings, _req(stamp=stamp), now=1001.0)
    check_form(settings, _req(stamp=second_press_stamp(settings, 1001.0)), now=1001.0)
    # Stale (a tab left open) or ahead of our clock (a skewed replica), but signed by us:
    # a person may be behind it, so they are asked to press again too.
    for now in (1000.0 + 2 * 24 * 3600, 1000.0 - 60):
        assert not is_bot(settings, _req(stamp=stamp), now=now)
        with pytest.raises(StaleFormError, match="press Subscribe again"):
            check_form(settings, _req(stamp=stamp), now=now)
    other = make_settings(settings.outbox_dir.parent, secret_key="another")
    assert is_bot(settings, _req(stamp=form_stamp(other, 1000.0)), now=1010.0)


def test_fixed_window_counts_and_retry_after(redis_url):
    clock = [1_000_000.0]
    limiter = RateLimiter(redis_url, prefix=f"test:{uuid.uuid4().hex}",
                          limits={"ip": Limit(2, 60)}, clock=lambda: clock[0])
    limiter.hit("ip", "203.0.113.1")
    limiter.hit("ip", "203.0.113.1")
    limiter.hit("ip", "203.0.113.2")  # another key has its own count
    clock[0] += 10
    with pytest.raises(RateLimitedError) as exc:
        limiter.hit("ip", "203.0.113.1")
    assert 1 <= exc.value.retry_after <= 61
    clock[0] += exc.value.retry_after
    limiter.hit("ip", "203.0.113.1")  # a new window
    limiter.close()


def test_body_limit_by_path_prefix():
    api = FastAPI()
    api.add_middleware(BodySizeLimit, default=10, prefixes={"/admin/": 100})

    @api.post("/{path:path}")
    async def echo(request: Request) -> dict[str, int]:
        return {"size": len(await request.body())}

    client = TestClient(api)
    assert client.post("/form", content=b"x" * 10).json() == {"size": 10}
    assert client.post("/form", content=b"x" * 11).status_code == 413
    assert client.post("/admin/import", content=b"x" * 100).status_code == 200
    assert client.post("/admin/import", content=b"x" * 101).status_code == 413
    chunked = client.post("/form", content=iter([b"x" * 6, b"x" * 6]))
    assert chunked.status_code == 413
