"""The provider's side of the metrics: how long each request took, and how it failed.

Both real transports (SendGrid, SMTP) wrap their provider call in ``provider_call``; the
outbox and memory transports reach no provider and are not measured.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from digest.errors import DeliveryError
from digest.metrics import PROVIDER_ERRORS, PROVIDER_LATENCY

__all__ = ["provider_call"]


@contextmanager
def provider_call(provider: str) -> Iterator[None]:
    """Time the request to ``provider``; a ``DeliveryError`` leaving it is counted by status
    code (``none`` when no answer came: unreachable, timed out, connection dropped)."""
    start = time.perf_counter()
    try:
        yield
    except DeliveryError as exc:
        PROVIDER_ERRORS.labels(provider, str(exc.status) if exc.status else "none").inc()
        raise
    finally:
        PROVIDER_LATENCY.labels(provider).observe(time.perf_counter() - start)
