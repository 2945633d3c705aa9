"""Poll the configured feeds: the one service the CLI (`digest poll`) and Celery call.

Per feed: fetch (conditional GET), parse, recover a gap through ``?paged=`` when a burst
pushed known posts off the first page, store, hide posts that vanished, and record the
outcome on the Feed row (failures counted, with backoff). The network is never touched inside
a database transaction, and a failing feed never stops the others.
"""

from __future__ import annotations

import logging
from datetime import datetime
from urllib.parse import urlsplit

import httpx
from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session

from digest.errors import FeedError, FeedGoneError
from digest.feeds.backoff import record_failure, record_success, skip_reason
from digest.feeds.fetch import feed_client, fetch_feed, is_local, local_path
from digest.feeds.gaps import recover_gap
from digest.feeds.parse import ParsedEntry, ParsedFeed, parse_feed
from digest.feeds.posts import hide_vanished, is_first_poll, store_entries
from digest.feeds.report import Outcome, PollReport
from digest.metrics import POLLS, POSTS_STORED, on_commit
from digest.runtime import App
from digest.store.models import Feed, FeedStatus, utcnow
from digest.store.sessions import transaction

log = logging.getLogger(__name__)


_URL_MAX = 2000  # Feed.url and Feed.configured_url


def poll_feeds(
    app: App,
    urls: list[str] | None = None,
    *,
    client: httpx.Client | None = None,
    now: datetime | None = None,
    force: bool = False,
) -> list[PollReport]:
    """Poll ``urls`` (default: every feed on schedule, ``scheduled_urls``); one report per
    feed, failures included."""
    targets = list(urls) if urls is not None else scheduled_urls(app)
    own = client is None
    http = client or feed_client(app.settings.fetch_allow_private)
    try:
        return [_logged(_poll_isolated(app, url, http, now, force)) for url in targets]
    finally:
        if own:
            http.close()


def scheduled_urls(app: App) -> list[str]:
    """What a scheduled poll reads: DIGEST_FEED_URL (which seeds the database on first
    poll) and then every other stored feed but those gone (410), each by the URL it was
    added with. After the first poll the database is the record: a feed added with
    ``digest feeds add`` or in the console is polled with the rest until it is removed."""
    configured = list(app.settings.feed_urls)
    seen = set(configured)
    with app.sessions() as session:
        stored = session.execute(
            select(Feed.url, Feed.configured_url).where(Feed.status != FeedStatus.GONE)
            .order_by(Feed.id)).all()
    extra = [str(given or url) for url, given in stored
             if url not in seen and (given or url) not in seen]
    return configured + list(dict.fromkeys(extra))


def _logged(report: PollReport) -> PollReport:
    """One INFO line a feed a poll: the operator's line, with the counts as fields; and the
    poll counted by outcome."""
    POLLS.labels(report.outcome).inc()
    level = logging.WARNING if report.outcome == "failed" else logging.INFO
    log.log(level, "poll %s", report.describe(), extra={
        "feed": report.url, "feed_id": report.feed_id, "outcome": report.outcome,
        "new": len(report.new_titles), "updated": report.updated})
    return report


def _poll_isolated(
    app: App, url: str, client: httpx.Client, now: datetime | None, force: bool
) -> PollReport:
    """Poll one feed; whatever goes wrong with it is its report, never the other feeds'."""
    try:
        return poll_feed_url(app, url, client=client, now=now, force=force)
    except OperationalError:
        raise  # the database itself is unreachable: every feed would fail the same way
    except Exception as exc:  # one hostile feed must not stop the others
        log.exception("polling %s failed", url)
        return PollReport(url=url, outcome="failed", error=f"unexpected error: {exc}")


def poll_feed_url(
    app: App,
    url: str,
    *,
    client: httpx.Client | None = None,
    now: datetime | None = None,
    force: bool = False,
) -> PollReport:
    """Poll one feed, creating its Feed row on first sight; never raises a FeedError."""
    now = now or utcnow()
    with transaction(app.sessions) as session:
        unusable = _unusable_new_url(session, url)
        if unusable is not None:
            return PollReport(url=url, outcome="failed", error=unusable)
        feed = _feed_for(session, url)
        feed_id, current = feed.id, feed.url
        etag, last_modified = feed.etag, feed.last_modified
        skip = None if force else skip_reason(feed, now)
    if skip is not None:
        outcome: Outcome = "gone" if skip.startswith("disabled") else "skipped"
        return PollReport(url=current, outcome=outcome, error=skip, feed_id=feed_id)
    own = client is None
    http = client or feed_client(app.settings.fetch_allow_private)
    try:
        return _fetch_and_store(app, feed_id, current, (etag, last_modified), http, now)
    except FeedGoneError as exc:
        record_failure(app, feed_id, exc, now, gone=True)
        return PollReport(url=current, outcome="gone", error=exc.reason, feed_id=feed_id)
    except Exception as exc:  # one hostile feed must not stop the others; it backs off
        if isinstance(exc, OperationalError):
            raise  # the database is down: not this feed's fault, nothing to record it in
        if not isinstance(exc, FeedError):  # e.g. a value PostgreSQL refused
            log.exception("polling %s failed", current)
            first_line = (str(exc).splitlines() or [""])[0][:300]
            what = "could not be stored" if isinstance(exc, SQLAlchemyError) else "failed"
            exc = FeedError(current, f"{what} ({type(exc).__name__}: {first_line})")
        failures = record_failure(app, feed_id, exc, now, gone=False)
        return PollReport(
            url=current,
            outcome="failed",
            error=f"{exc.reason} (failure {failures} in a row; retrying with backoff)",
            feed_id=feed_id,
        )
    finally:
        if own:
            http.close()


def _fetch_and_store(
    app: App,
    feed_id: int,
    current: str,
    validators: tuple[str | None, str | None],
    http: httpx.Client,
    now: datetime,
) -> PollReport:
    settings = app.settings
    fetched = fetch_feed(
        current,
        client=http,
        timeout=settings.fetch_timeout,
        max_bytes=settings.fetch_max_bytes,
        etag=validators[0],
        last_modified=validators[1],
    )
    if fetched.not_modified:
        record_success(app, feed_id, fetched, None, now)
        return PollReport(
            url=current,
            outcome="unchanged",
            feed_id=feed_id,
            moved_to=fetched.moved_to,
            not_modified=True,
        )
    parsed = parse_feed(fetched.content, fetched.url, fetched.headers)
    older, pages = recover_gap(app, feed_id, fetched, parsed, http)
    report = ingest(app, feed_id, parsed, now=now, extra=older, full_page=True)
    record_success(app, feed_id, fetched, parsed, now)
    report.url = current
    report.moved_to = fetched.moved_to
    report.pages = pages
    return report


def ingest(
    app: App,
    feed_id: int,
    parsed: ParsedFeed,
    *,
    now: datetime | None = None,
    extra: list[ParsedEntry] | None = None,
    full_page: bool = False,
) -> PollReport:
    """Store a parsed document's entries (from a poll or a WebSub push) for one feed.

    ``full_page`` says the entries are the feed's whole first page, so posts missing from it
    may be hidden; a push may carry only the new entries, so it never hides anything.
    """
    now = now or utcnow()
    settings = app.settings
    entries = parsed.entries + list(extra or [])
    with transaction(app.sessions) as session:
        feed = session.get_one(Feed, feed_id)
        first = is_first_poll(session, feed)
        result = store_entries(
            session,
            feed,
            entries,
            now=now,
            first_poll=first,
            window_days=settings.first_poll_window_days,
            summary_words=settings.summary_words,
        )
        hidden = hide_vanished(session, feed, parsed.entries, now=now) if full_page else 0
        on_commit(session, POSTS_STORED, len(result.new))
        new_titles = [p.title for p in result.new]
        backlog = sum(1 for p in result.new if not p.announce)
        url = feed.url
    if not parsed.entries:
        outcome: Outcome = "empty"
    elif result.new:
        outcome = "new"
    elif result.updated:
        outcome = "updated"
    else:
        outcome = "unchanged"
    return PollReport(
        url=url,
        outcome=outcome,
        new_titles=new_titles,
        updated=len(result.updated),
        feed_id=feed_id,
        backlog=backlog,
        hidden=hidden,
        warning=parsed.warning,
    )


def _unusable_new_url(session: Session, url: str) -> str | None:
    """Why ``url`` cannot become a feed (a typo must not become a feed that backs off)."""
    known = session.scalar(
        select(Feed.id).where(or_(Feed.configured_url == url, Feed.url == url)))
    if known is not None:
        return None
    if len(url) > _URL_MAX:
        return f"the URL is longer than {_URL_MAX} characters"
    if not is_local(url):
        return None if urlsplit(url).netloc else "not a feed URL: the host name is missing"
    if local_path(url).is_file():
        return None
    return "not an http(s) URL or an existing file"


def _feed_for(session: Session, url: str) -> Feed:
    found = session.scalars(
        select(Feed).where(or_(Feed.configured_url == url, Feed.url == url)).order_by(Feed.id)
    ).first()
    if found is not None:
        return found
    feed = Feed(url=url, configured_url=url, status=FeedStatus.ACTIVE, consecutive_failures=0)
    try:
        with session.begin_nested():
            session.add(feed)
            session.flush()
    except IntegrityError:  # another poller created it a moment ago
        return session.scalars(select(Feed).where(Feed.url == url)).one()
    return feed
