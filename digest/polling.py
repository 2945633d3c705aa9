"""Poll the configured feeds: the one service the CLI (`digest poll`) and Celery call.

Per feed: fetch (conditional GET), parse, recover a gap through ``?paged=`` when a burst
pushed known posts off the first page, store, hide posts that vanished, and record the
outcome on the Feed row (failures counted, with backoff). The network is never touched inside
a database transaction, and a failing feed never stops the others.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx
from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session

from digest.bounded import clean, clip, fit_or_none
from digest.db import transaction
from digest.errors import FeedError, FeedGoneError
from digest.feedparse import ParsedEntry, ParsedFeed, parse_feed
from digest.fetch import FetchResult, feed_client, fetch_feed, is_local, local_path
from digest.models import Feed, FeedStatus, utcnow
from digest.posts import hide_vanished, is_first_poll, known_identities, store_entries
from digest.wiring import App

__all__ = ["Outcome", "PollReport", "ingest", "poll_feed_url", "poll_feeds"]

Outcome = Literal["new", "updated", "unchanged", "failed", "gone", "empty", "skipped"]

_BACKOFF_BASE = timedelta(minutes=30)
_BACKOFF_MAX = timedelta(hours=24)
_TITLES_SHOWN = 5
_URL_MAX = 2000  # Feed.url and Feed.configured_url

log = logging.getLogger(__name__)


@dataclass
class PollReport:
    """What one poll of one feed did, for the operator and the tests."""

    url: str
    outcome: Outcome
    new_titles: list[str] = field(default_factory=list)
    updated: int = 0
    error: str | None = None
    feed_id: int | None = None
    backlog: int = 0  # new posts recorded but not announced (first poll, older than window)
    hidden: int = 0  # posts that vanished from the feed before being sent
    pages: int = 1
    warning: str | None = None
    moved_to: str | None = None
    not_modified: bool = False  # the server answered 304

    def describe(self) -> str:
        """One line for the operator: what happened to this feed, and why."""
        text = f"{self.url}: "
        if self.outcome == "new":
            announced = len(self.new_titles) - self.backlog
            text += f"{len(self.new_titles)} new post{'s' if len(self.new_titles) != 1 else ''}"
            if self.backlog:
                text += f" ({announced} to announce, {self.backlog} older recorded as backlog)"
            shown = ", ".join(f"“{t}”" for t in self.new_titles[:_TITLES_SHOWN])
            more = len(self.new_titles) - _TITLES_SHOWN
            text += f": {shown}" + (f" and {more} more" if more > 0 else "")
            if self.updated:
                text += f"; {self.updated} updated"
        elif self.outcome == "updated":
            text += f"{self.updated} post{'s' if self.updated != 1 else ''} updated, nothing new"
        elif self.outcome == "unchanged":
            text += "unchanged" + (" (304 Not Modified)" if self.not_modified else "")
        elif self.outcome == "empty":
            text += "the feed has no entries; nothing changed"
        elif self.outcome == "skipped":
            text += f"skipped: {self.error}"
        elif self.outcome == "gone":
            text += f"gone: {self.error}"
        else:
            text += f"failed: {self.error}"
        if self.pages > 1:
            text += f" [read {self.pages} pages to close a gap]"
        if self.hidden:
            text += f"; {self.hidden} removed from the feed, left out of the digest"
        if self.moved_to:
            text += f"; moved permanently to {self.moved_to}"
        return text


def poll_feeds(
    app: App,
    urls: list[str] | None = None,
    *,
    client: httpx.Client | None = None,
    now: datetime | None = None,
    force: bool = False,
) -> list[PollReport]:
    """Poll ``urls`` (default: DIGEST_FEED_URL); one report per feed, failures included."""
    targets = list(urls) if urls is not None else app.settings.feed_urls
    own = client is None
    http = client or feed_client(app.settings.fetch_allow_private)
    try:
        return [_logged(_poll_isolated(app, url, http, now, force)) for url in targets]
    finally:
        if own:
            http.close()


def _logged(report: PollReport) -> PollReport:
    """One INFO line a feed a poll: the operator's line, with the counts as fields."""
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
        skip = None if force else _skip_reason(feed, now)
    if skip is not None:
        outcome: Outcome = "gone" if skip.startswith("disabled") else "skipped"
        return PollReport(url=current, outcome=outcome, error=skip, feed_id=feed_id)
    own = client is None
    http = client or feed_client(app.settings.fetch_allow_private)
    try:
        return _fetch_and_store(app, feed_id, current, (etag, last_modified), http, now)
    except FeedGoneError as exc:
        _record_failure(app, feed_id, exc, now, gone=True)
        return PollReport(url=current, outcome="gone", error=exc.reason, feed_id=feed_id)
    except Exception as exc:  # one hostile feed must not stop the others; it backs off
        if isinstance(exc, OperationalError):
            raise  # the database is down: not this feed's fault, nothing to record it in
        if not isinstance(exc, FeedError):  # e.g. a value PostgreSQL refused
            log.exception("polling %s failed", current)
            first_line = (str(exc).splitlines() or [""])[0][:300]
            what = "could not be stored" if isinstance(exc, SQLAlchemyError) else "failed"
            exc = FeedError(current, f"{what} ({type(exc).__name__}: {first_line})")
        failures = _record_failure(app, feed_id, exc, now, gone=False)
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
        _record_success(app, feed_id, fetched, None, now)
        return PollReport(
            url=current,
            outcome="unchanged",
            feed_id=feed_id,
            moved_to=fetched.moved_to,
            not_modified=True,
        )
    parsed = parse_feed(fetched.content, fetched.url, fetched.headers)
    older, pages = _recover_gap(app, feed_id, fetched, parsed, http)
    report = ingest(app, feed_id, parsed, now=now, extra=older, full_page=True)
    _record_success(app, feed_id, fetched, parsed, now)
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


def _skip_reason(feed: Feed, now: datetime) -> str | None:
    if feed.status == FeedStatus.GONE:
        return f"disabled: {feed.last_error or 'the server answered 410 Gone'}"
    if feed.next_poll_at is not None and feed.next_poll_at > now:
        last = (feed.last_error or "unknown").removeprefix(f"{feed.url}: ")  # URL is shown once
        return (
            f"backing off after {feed.consecutive_failures} failure(s) "
            f"(last: {last}); next try after {feed.next_poll_at:%Y-%m-%d %H:%M} UTC"
        )
    return None


def _recover_gap(
    app: App, feed_id: int, fetched: FetchResult, parsed: ParsedFeed, client: httpx.Client
) -> tuple[list[ParsedEntry], int]:
    """Older pages (?paged=2, 3, …) when every item on page 1 is new, until a known post.

    Returns the new entries found there and how many pages were read in all.
    """
    if not parsed.wordpress or not parsed.entries or is_local(fetched.url):
        return [], 1
    with transaction(app.sessions) as session:
        feed = session.get_one(Feed, feed_id)
        if is_first_poll(session, feed):
            return [], 1
        if known_identities(session, feed, [e.identity for e in parsed.entries]):
            return [], 1
    seen = {e.identity for e in parsed.entries}
    older: list[ParsedEntry] = []
    pages = 1
    for page in range(2, app.settings.max_pages + 1):
        try:
            result = fetch_feed(
                _page_url(fetched.url, page),
                client=client,
                timeout=app.settings.fetch_timeout,
                max_bytes=app.settings.fetch_max_bytes,
            )
            entries = parse_feed(result.content, result.url, result.headers).entries
        except FeedError:  # 404 past the last page, or a bad page: stop with what we have
            break
        pages = page
        fresh = [e for e in entries if e.identity not in seen]
        if not fresh:  # the server ignores ?paged= and repeats itself
            break
        seen.update(e.identity for e in fresh)
        with transaction(app.sessions) as session:
            feed = session.get_one(Feed, feed_id)
            known = known_identities(session, feed, [e.identity for e in fresh])
        older.extend(e for e in fresh if e.identity not in known)
        if known:
            break
    return older, pages


def _page_url(url: str, page: int) -> str:
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "paged"]
    query.append(("paged", str(page)))
    return urlunsplit(parts._replace(query=urlencode(query)))


def _record_success(
    app: App, feed_id: int, fetched: FetchResult, parsed: ParsedFeed | None, now: datetime
) -> None:
    with transaction(app.sessions) as session:
        feed = session.get_one(Feed, feed_id)
        if fetched.moved_to and fetched.moved_to != feed.url and len(fetched.moved_to) <= 2000:
            taken = session.scalars(select(Feed.id).where(Feed.url == fetched.moved_to)).first()
            if taken is None:
                feed.url = fetched.moved_to
        if not fetched.not_modified:  # a validator too long to store: the next GET is plain
            feed.etag = fit_or_none(fetched.etag, 500)
            feed.last_modified = fit_or_none(fetched.last_modified, 100)
        if parsed is not None:
            feed.title = clip(parsed.title, 500) if parsed.title else feed.title
            feed.site_url = fit_or_none(parsed.site_url, 2000) or feed.site_url
            hub, topic = fit_or_none(parsed.hub_url, 2000), fit_or_none(parsed.self_url, 2000)
            feed.hub_url = hub if topic or not parsed.self_url else None  # a hub needs its topic
            feed.topic_url = topic
        feed.status = FeedStatus.ACTIVE
        feed.consecutive_failures = 0
        feed.last_error = None
        feed.last_polled_at = now
        feed.next_poll_at = None


def _record_failure(app: App, feed_id: int, exc: FeedError, now: datetime, *, gone: bool) -> int:
    with transaction(app.sessions) as session:
        feed = session.get_one(Feed, feed_id)
        feed.consecutive_failures = (feed.consecutive_failures or 0) + 1
        feed.last_error = clean(str(exc))
        feed.last_polled_at = now
        if gone:
            feed.status = FeedStatus.GONE
            feed.next_poll_at = None
        else:
            feed.status = FeedStatus.FAILING
            delay = _BACKOFF_BASE * 2 ** min(feed.consecutive_failures - 1, 10)
            feed.next_poll_at = now + min(delay, _BACKOFF_MAX)
        return feed.consecutive_failures
