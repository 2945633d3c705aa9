"""Shared by the web tests: a rate limiter on the real Redis with limits no test reaches
(its own key prefix, so tests never share counters); tests of the limits build their own."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from digest.readers.ratelimit import Limit, RateLimiter


@pytest.fixture
def limiter(redis_url: str) -> Iterator[RateLimiter]:
    made = RateLimiter(redis_url, prefix=f"test:{uuid.uuid4().hex}",
                       limits={"ip": Limit(1000, 60), "email": Limit(1000, 60)})
    yield made
    made.close()
