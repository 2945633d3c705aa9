"""Readers spread over 24 time zones and 16 topic choices, for ``bench.fanout --spread``.

Reader ``i`` lives in ``ZONES[i % 24]``, wants the weekly digest at 08:00 there, and follows
``COMBINATIONS[(i // 24) % 16]`` of four topics (everything, or one of the 15 non-empty sets).
The sample feed's posts get one of the four topics each, every fifth none (it goes to all).
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from itertools import combinations

from sqlalchemy import insert, select, update

from digest.runtime import App
from digest.schedule import weekly_period
from digest.slots import Slot, parse_slot, period_date, release_at
from digest.store.models import Cadence, Post, Topic
from digest.store.sessions import transaction

ZONES = (
    "Pacific/Kiritimati", "Pacific/Auckland", "Pacific/Noumea", "Australia/Brisbane",
    "Asia/Tokyo", "Asia/Shanghai", "Asia/Bangkok", "Asia/Dhaka", "Asia/Kolkata",
    "Asia/Karachi", "Asia/Dubai", "Europe/Istanbul", "Africa/Cairo", "Europe/Berlin",
    "Europe/London", "Atlantic/Azores", "Atlantic/South_Georgia", "America/Sao_Paulo",
    "America/Halifax", "America/New_York", "America/Chicago", "America/Denver",
    "America/Los_Angeles", "Pacific/Honolulu",
)
TOPICS = ("Diplomacy", "Security", "Economy", "Europe")
# None: everything; then every non-empty set of the four topics' positions (15).
COMBINATIONS: tuple[tuple[int, ...] | None, ...] = (None, *(
    combo for size in range(1, 5) for combo in combinations(range(4), size)))
HOUR = 8


def reader_columns(i: int, topic_ids: list[int]) -> tuple[str, int, str, str | None]:
    """(zone, hour, slot key, topic ids as JSON or None) of reader ``i``."""
    zone = ZONES[i % len(ZONES)]
    combo = COMBINATIONS[(i // len(ZONES)) % len(COMBINATIONS)]
    chosen = None if combo is None else json.dumps([topic_ids[k] for k in combo])
    return zone, HOUR, Slot(zone, None, HOUR).key, chosen


def add_posts(app: App, count: int) -> None:
    """Copies of the first post until there are ``count``: a week's worth for the digest."""
    with transaction(app.sessions) as session:
        first = session.scalars(select(Post).order_by(Post.id)).first()
        have = len(list(session.scalars(select(Post.id))))
        if first is None:
            return
        session.execute(insert(Post), [
            {"feed_id": first.feed_id, "identity": f"spread-{n}", "link": f"{first.link}?n={n}",
             "title": f"{first.title} ({n})", "summary": first.summary,
             "content_hash": f"spread-{n}", "reading_minutes": first.reading_minutes,
             "published_at": first.published_at, "first_seen_at": first.first_seen_at,
             "updated_at": first.updated_at, "announce": True, "in_feed": True}
            for n in range(have, count)])


def add_topics(app: App) -> list[int]:
    """The four topics, and one of them on each of ten posts (every fifth post: none)."""
    add_posts(app, 10)
    with transaction(app.sessions) as session:
        session.execute(insert(Topic), [{"key": name.lower(), "name": name} for name in TOPICS])
        ids = [int(i) for i in session.scalars(select(Topic.id).order_by(Topic.id))]
        posts = list(session.scalars(select(Post.id).order_by(Post.id)))
        for n, post_id in enumerate(posts):
            chosen = [] if n % 5 == 4 else [ids[n % 4]]
            session.execute(update(Post).where(Post.id == post_id).values(topic_ids=chosen))
    return ids


def release_times(app: App, now: datetime) -> list[datetime]:
    """When each zone's readers get the weekly edition of a period wholly past (so that the
    workers, on the real clock, may claim every batch): the ticks to run, in order."""
    period = weekly_period(app.settings.schedule, app.settings.tz, now - timedelta(days=9))
    day = period_date(app.settings, period.end)
    keys = {Slot(zone, None, HOUR).key for zone in ZONES}
    return sorted({release_at(app.settings, Cadence.WEEKLY, day, parse_slot(k)) for k in keys})
