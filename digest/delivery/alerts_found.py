"""What is wrong right now, as the operator should hear it: one ``Finding`` per alert.

Each check reads the database (or beat's heartbeat in Redis) and returns the findings of its
kind, each under a key that names what it is about (``feed:3``, ``breaker:12``), with what
happened and what to do. ``delivery.alerts`` turns them into episodes mailed once. A check
that cannot judge (Redis down for the heartbeat) returns None: its open alerts stay as
they are rather than being closed by a guess.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import redis
from sqlalchemy import func, select

from digest.delivery.heartbeat import connect, last_tick
from digest.runtime import App
from digest.store.models import Batch, BatchStatus, Edition, EditionStatus, Feed, FeedStatus

__all__ = ["BEAT_SILENT", "FEED_FAILING", "IN_DOUBT_AGE", "KINDS", "Finding", "findings"]

FEED_FAILING = timedelta(days=1)  # a feed failing this long is worth a mail
BEAT_SILENT = timedelta(hours=2)
IN_DOUBT_AGE = timedelta(hours=1)
FAILED_RECENT = timedelta(days=2)  # an edition that finished with failures stays open this long
_RUNBOOK = "docs/operating.md"


@dataclass(frozen=True)
class Finding:
    """One thing the operator should hear about, once per episode."""

    key: str  # "<kind>:<what>": one open episode per key
    subject: str
    body: str  # what happened, then what to do
    since: datetime | None = None  # when it started, when known (else: when first seen)
    grace: timedelta = timedelta(0)  # how long it must last before anyone is told


def _stamp(at: datetime | None) -> str:
    return f"{at:%Y-%m-%d %H:%M} UTC" if at is not None else "an unknown time"


def _feeds(app: App, now: datetime) -> list[Finding]:
    """Stored feeds (all are polled on schedule) that fail (for a day before a mail) or are
    gone."""
    with app.sessions() as session:
        feeds = session.scalars(select(Feed).where(
            Feed.status.in_((FeedStatus.FAILING, FeedStatus.GONE)))).all()
    found = []
    for feed in feeds:
        gone = feed.status is FeedStatus.GONE
        what = "is gone (410)" if gone else "has been failing for over a day"
        todo = (
            "If the blog moved, put its new feed URL in DIGEST_FEED_URL and restart; tidy up "
            "with `digest feeds list` and `digest feeds remove URL`." if gone else
            "Open the feed URL in a browser and fix what the error names (the blog down, a "
            "broken or too large feed, a certificate), then `digest poll --force` to try at "
            "once; `digest feeds list` shows every feed's status. Posts missed meanwhile are "
            "picked up on the next good poll.")
        found.append(Finding(
            key=f"feed:{feed.id}",
            subject=f"feed {what}: {feed.url}",
            body=(f"The feed {feed.url} {what}: {feed.consecutive_failures} failed poll(s) in "
                  f"a row, the last at {_stamp(feed.last_polled_at)}.\n"
                  f"Last error: {feed.last_error or 'none recorded'}\n\n"
                  f"What to do ({_RUNBOOK}, \"A feed failing, or gone\"): {todo}"),
            since=feed.last_polled_at if gone else None,
            grace=timedelta(0) if gone else FEED_FAILING))
    return found


def _failed_batches(app: App, now: datetime) -> list[Finding]:
    """Editions that finished lately with some (or all) batches failed."""
    with app.sessions() as session:
        editions = session.scalars(select(Edition).where(
            Edition.status.in_((EditionStatus.SENT, EditionStatus.FAILED)),
            Edition.reason.like("% batches failed"),
            Edition.finished_at >= now - FAILED_RECENT)).all()
        errors: dict[int, list[str]] = {e.id: [str(error) for error in session.scalars(
            select(Batch.error).where(Batch.edition_id == e.id,
                                      Batch.status == BatchStatus.FAILED,
                                      Batch.error.is_not(None)).distinct().limit(3))]
            for e in editions}
    found = []
    for edition in editions:
        said = "\n".join(f"  - {error}" for error in errors[edition.id]) or "  (none recorded)"
        key_hint = ""
        if any(code in error for error in errors[edition.id] for code in ("401", "403")):
            key_hint = ("SendGrid refused the key (401/403): check SENDGRID_API_KEY "
                        "(DIGEST_SENDGRID_API_KEY) has Mail Send permission and that "
                        "DIGEST_FROM_EMAIL is on a sender you authenticated, set the new key and "
                        "restart the web app and every worker. ")
        found.append(Finding(
            key=f"failed-batches:{edition.id}",
            subject=f"edition {edition.id} ({edition.key}) finished with {edition.reason}",
            body=(f"Edition {edition.id} ({edition.key}, \"{edition.subject}\") finished at "
                  f"{_stamp(edition.finished_at)} with {edition.reason}; their readers did not "
                  f"get it. The provider said:\n{said}\n\n"
                  f"What to do ({_RUNBOOK}, \"SendGrid answers 401 or 403\"): {key_hint}"
                  f"Once the cause is fixed, `digest resend {edition.id}` sends the edition "
                  "only to its readers who have no record of receiving it."),
            since=edition.finished_at))
    return found


def _beat(app: App, now: datetime) -> list[Finding] | None:
    """Beat silent (no heartbeat) for BEAT_SILENT; None when Redis cannot be read."""
    client = connect(app)
    try:
        ticked = last_tick(client)
    except redis.RedisError:
        return None  # /readyz names Redis; the heartbeat cannot be judged
    finally:
        client.close()
    if ticked is not None and now - ticked <= BEAT_SILENT:
        return []
    last = f"since {_stamp(ticked)}" if ticked else "for hours (no heartbeat in Redis)"
    return [Finding(
        key="beat:heartbeat",
        subject="beat has been silent for over 2 hours",
        body=(f"Beat's heartbeat has not ticked {last}. Without beat nothing polls the feeds, "
              "no scheduled digest starts and no stuck batch is re-driven (the heartbeat is "
              "written by a worker, so it also stops when no worker runs).\n\n"
              f"What to do ({_RUNBOOK}, \"Beat down\"): start exactly one beat "
              "(`docker compose up -d beat`, or `celery -A worker beat`) and at least one "
              "worker; `/readyz` then says beat is well within a minute. A digest whose time "
              "passed meanwhile goes out with `digest send --cadence weekly` (or daily)."),
        since=ticked, grace=BEAT_SILENT)]


def _in_doubt(app: App, now: datetime) -> list[Finding]:
    """Batches in doubt for over IN_DOUBT_AGE, one finding per edition."""
    with app.sessions() as session:
        rows = session.execute(
            select(Batch.edition_id, func.count(), func.min(Batch.claimed_at))
            .where(Batch.status == BatchStatus.IN_DOUBT, Batch.claimed_at < now - IN_DOUBT_AGE)
            .group_by(Batch.edition_id)).all()
    return [Finding(
        key=f"in-doubt:{edition_id}",
        subject=f"edition {edition_id}: {count} batch(es) in doubt for over an hour",
        body=(f"{count} batch(es) of edition {edition_id} have been in doubt since "
              f"{_stamp(oldest)}: their worker died after the request went out, and SendGrid's "
              "\"processed\" events, which say who got it, have not settled them.\n\n"
              f"What to do ({_RUNBOOK}, \"Stuck or in-doubt batches\"): check that beat and the "
              "workers run (reconcile settles these every minute), that SendGrid's Event "
              "Webhook points at /webhooks/sendgrid with \"processed\" selected, and that "
              "DIGEST_SENDGRID_WEBHOOK_PUBLIC_KEY matches; `digest stats` shows the edition."),
        since=oldest, grace=IN_DOUBT_AGE) for edition_id, count, oldest in rows]


def _breaker(app: App, now: datetime) -> list[Finding]:
    """Editions paused by the complaint breaker."""
    with app.sessions() as session:
        editions = session.scalars(select(Edition).where(
            Edition.paused_at.is_not(None), Edition.pause_reason.like("complaints:%"))).all()
    return [Finding(
        key=f"breaker:{edition.id}",
        subject=f"edition {edition.id} ({edition.key}) paused: too many spam complaints",
        body=(f"The complaint breaker paused edition {edition.id} ({edition.key}, "
              f"\"{edition.subject}\") at {_stamp(edition.paused_at)}: {edition.pause_reason}. "
              "No new batch is sent; nothing already sent is lost or sent twice.\n\n"
              f"What to do ({_RUNBOOK}, \"A spam-complaint spike\"): look at `digest "
              "stats` and at the edition itself for the cause (a broken feed item, a list "
              f"imported without consent); once it is understood, `digest resume {edition.id}` "
              "sends the rest."),
        since=edition.paused_at) for edition in editions]


Check = Callable[[App, datetime], "list[Finding] | None"]
KINDS: dict[str, Check] = {"feed": _feeds, "failed-batches": _failed_batches, "beat": _beat,
                           "in-doubt": _in_doubt, "breaker": _breaker}


def findings(app: App, now: datetime) -> dict[str, list[Finding] | None]:
    """Every kind's findings at ``now``; None for a kind that could not be judged."""
    return {kind: check(app, now) for kind, check in KINDS.items()}
