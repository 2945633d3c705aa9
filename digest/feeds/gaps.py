"""Gap recovery: when every item on a feed's first page is new, follow WordPress-style pages
(?paged=2, ...) back to a known post.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx

from digest.errors import FeedError
from digest.feeds.fetch import FetchResult, fetch_feed, is_local
from digest.feeds.parse import ParsedEntry, ParsedFeed, parse_feed
from digest.feeds.posts import is_first_poll, known_identities
from digest.runtime import App
from digest.store.models import Feed
from digest.store.sessions import transaction


def recover_gap(
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
