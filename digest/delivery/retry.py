"""How long to wait before retrying a transient delivery failure.

Exponential backoff with full jitter (spread retries so workers do not stampede the
provider), honouring the provider's own ``Retry-After`` when it gives one, and capped at
``MAX_DELAY`` so that a retried Celery task always comes back well inside the Redis
``visibility_timeout`` (``digest.tasks.VISIBILITY_TIMEOUT``).
"""

from __future__ import annotations

import random
from collections.abc import Callable

BASE_DELAY = 1.0  # seconds before the first retry, doubled each attempt
MAX_DELAY = 300.0  # never wait longer than this between attempts


def backoff(
    attempt: int,
    retry_after: float | None = None,
    *,
    base: float = BASE_DELAY,
    cap: float = MAX_DELAY,
    rand: Callable[[], float] = random.random,
) -> float:
    """Seconds to wait before attempt ``attempt + 1`` (``attempt`` counts from 1)."""
    if retry_after is not None and retry_after >= 0:
        # The provider said when; add up to one second of jitter so workers do not align.
        return min(cap, retry_after + rand())
    ceiling = min(cap, base * 2.0 ** max(0, attempt - 1))
    return rand() * ceiling
