"""Every Prometheus metric digest exports, defined here once (``docs/operating.md``, Metrics).

Counters and the provider latency histogram are counted where the thing happens, in the
services (a poll in ``feeds.poll``, a batch in ``delivery.batch``, a status change in
``readers.lifecycle``, a provider call in ``mail.transports``). What is a state rather than
an event (readers by status, editions by status, feeds by status, the age of the last good
poll and of beat's last tick) is read from the database and Redis when scraped
(``delivery.gauges``) and built into metric families here (``state_families``).

Several processes count (the web app, every Celery child): with ``PROMETHEUS_MULTIPROC_DIR``
set in their environment, ``prometheus_client`` keeps each process's values in a file there
and ``registry()`` adds them up at scrape time. The library decides this when it is first
imported, from the environment, which is why it is an environment variable and not a setting.

A change made inside a database transaction is counted when that transaction commits
(``on_commit``): a sign-up rolled back by a race is not a sign-up.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from sqlalchemy import event
from sqlalchemy.orm import Session

if TYPE_CHECKING:
    from digest.config import Settings

__all__ = [
    "BATCHES", "BOUNCES", "COMPLAINTS", "CONFIRMATIONS", "CONTENT_TYPE", "POLLS", "POSTS_STORED",
    "PROVIDER_ERRORS", "PROVIDER_LATENCY", "READERS_HANDED_OVER", "READERS_REFUSED", "SIGNUPS",
    "UNSUBSCRIBES", "WEBHOOK_EVENTS", "multiprocess_dir", "on_commit", "render", "scrape_token",
    "state_families",
]

CONTENT_TYPE = CONTENT_TYPE_LATEST
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

# Feeds (feeds.poll)
POLLS = Counter("digest_polls", "Feed polls, by outcome (new, updated, unchanged, empty, "
                "skipped, failed, gone)", ["outcome"])
POSTS_STORED = Counter("digest_posts_stored", "New posts stored from feeds (polls and pushes)")

# Delivery (delivery.batch)
BATCHES = Counter("digest_batches", "Ledger batch attempts, by outcome (sent, failed, pending: "
                  "to be retried, in_doubt, skipped: claimed elsewhere, paused: its edition "
                  "is paused)", ["outcome"])
READERS_HANDED_OVER = Counter("digest_readers_handed_over",
                              "Readers whose digest the provider accepted")
READERS_REFUSED = Counter("digest_readers_refused",
                          "Readers the provider refused one by one while taking the rest")

# The provider (mail.transports): every request, digests and readers' own mails alike.
PROVIDER_LATENCY = Histogram(
    "digest_provider_request_seconds", "Time of one provider request (a SendGrid POST, an "
    "SMTP session), successful or not", ["provider"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0))
PROVIDER_ERRORS = Counter("digest_provider_errors", "Failed provider requests, by provider and "
                          "status code (none: no answer or no connection)",
                          ["provider", "status"])

# Readers (readers.lifecycle, readers.events)
SIGNUPS = Counter("digest_signups", "Sign-ups that started a double opt-in")
CONFIRMATIONS = Counter("digest_confirmations", "Sign-ups confirmed")
UNSUBSCRIBES = Counter("digest_unsubscribes", "Readers unsubscribed, by who asked (reader, "
                       "operator, provider: a SendGrid unsubscribe event)", ["by"])
BOUNCES = Counter("digest_bounces", "Readers suppressed after a bounce")
COMPLAINTS = Counter("digest_complaints", "Readers suppressed after a spam complaint")
WEBHOOK_EVENTS = Counter("digest_webhook_events", "SendGrid Event Webhook events applied "
                         "(duplicates left out), by kind", ["kind"])

_PENDING = "digest_metrics_pending"


def on_commit(session: Session | None, counter: Any, amount: float = 1) -> None:
    """Count ``amount`` on ``counter`` (a metric or a labelled child) once ``session``'s
    transaction commits; at once when there is no session."""
    if amount <= 0:
        return
    if session is None:
        counter.inc(amount)
        return
    session.info.setdefault(_PENDING, []).append((counter, amount))


@event.listens_for(Session, "after_commit")
def _count_committed(session: Session) -> None:
    for counter, amount in session.info.pop(_PENDING, ()):
        counter.inc(amount)


@event.listens_for(Session, "after_rollback")
def _drop_rolled_back(session: Session) -> None:
    session.info.pop(_PENDING, None)


def scrape_token(settings: Settings) -> str | None:
    """The bearer token a scrape needs: DIGEST_METRICS_TOKEN, else DIGEST_ADMIN_TOKEN; None
    when neither is set (metrics are off)."""
    for secret in (settings.metrics_token, settings.admin_token):
        if secret is not None and secret.get_secret_value().strip():
            return secret.get_secret_value().strip()
    return None


def multiprocess_dir() -> str | None:
    """Where every process writes its counts (``PROMETHEUS_MULTIPROC_DIR``), if set."""
    path = os.environ.get(MULTIPROC_ENV, "").strip()
    return path or None


def state_families(
    *,
    readers: Mapping[str, int],
    editions: Mapping[str, int],
    feeds: Mapping[str, int],
    paused: int = 0,
    last_poll_age: float | None,
    beat_age: float | None,
    beat_read: bool = True,
) -> list[GaugeMetricFamily]:
    """The scrape-time gauges. An age that is not known (no successful poll, no heartbeat)
    is +Inf, so "older than" alerts fire; an age that could not be read is left out."""
    families = []
    for name, text, label, values in (
        ("digest_readers", "Readers by status", "status", readers),
        ("digest_editions", "Editions by status (sending: still going out)", "status", editions),
        ("digest_feeds", "Stored feeds by status (failing: backing off)", "status", feeds),
    ):
        family = GaugeMetricFamily(name, text, labels=[label])
        for key, value in sorted(values.items()):
            family.add_metric([key], value)
        families.append(family)
    families.append(GaugeMetricFamily(
        "digest_editions_paused", "Editions sending but paused (the complaint breaker, or the "
        "operator), waiting for a resume", value=paused))
    families.append(GaugeMetricFamily(
        "digest_last_successful_poll_age_seconds",
        "Seconds since the newest successful poll of a feed that is not failing (+Inf: none)",
        value=math.inf if last_poll_age is None else last_poll_age))
    if beat_read:  # Redis answered
        families.append(GaugeMetricFamily(
            "digest_beat_last_tick_age_seconds",
            "Seconds since beat's last heartbeat (+Inf: none in the last 6 hours)",
            value=math.inf if beat_age is None else beat_age))
    return families


class _Families:
    """A collector that hands out families computed by the caller (``render``)."""

    def __init__(self, families: Iterable[Any]) -> None:
        self._families = list(families)

    def collect(self) -> Iterable[Any]:
        return self._families


def registry(extra: Iterable[Any] = ()) -> CollectorRegistry:
    """What a scrape reads: every process's counts (the multiprocess directory) or this
    process's own, plus ``extra`` families (the scrape-time gauges)."""
    path = multiprocess_dir()
    if path is None:
        collected: CollectorRegistry = CollectorRegistry()
        collected.register(_Merged(REGISTRY))
    else:
        collected = CollectorRegistry()
        MultiProcessCollector(collected, path=path)  # type: ignore[no-untyped-call]
    collected.register(_Families(extra))
    return collected


class _Merged:
    """This process's default registry, as one collector of another registry."""

    def __init__(self, source: CollectorRegistry) -> None:
        self._source = source

    def collect(self) -> Iterable[Any]:
        return self._source.collect()


def render(extra: Iterable[Any] = ()) -> bytes:
    """The text exposition of ``registry(extra)``."""
    return generate_latest(registry(extra))
