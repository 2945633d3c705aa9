"""Seeding helpers shared by the delivery tests and the fan-out benchmark."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

from sqlalchemy import insert

from digest.runtime import App
from digest.store.models import Cadence, Feed, Post, Subscriber, SubscriberStatus
from digest.store.sessions import transaction


def add_post(app: App, title: str = "Russia-West Negotiations Start",
             first_seen: datetime | None = None, announce: bool = True) -> int:
    """One post in the (single) test feed; returns its id."""
    with transaction(app.sessions) as s:
        feed = s.query(Feed).first()
        if feed is None:
            feed = Feed(url="https://blog.example.org/feed/",
                        configured_url="https://blog.example.org/feed/", title="Blog")
            s.add(feed)
            s.flush()
        n = s.query(Post).count() + 1
        post = Post(feed_id=feed.id, identity=f"p{n}-{title}", link=f"https://blog.example.org/{n}/",
                    title=title, summary="A summary.", content_hash=f"h{n}",
                    first_seen_at=first_seen or datetime.now(UTC) - timedelta(minutes=1),
                    announce=announce)
        s.add(post)
        s.flush()
        return post.id


def add_readers(app: App, count: int, *, start: int = 0, cadence: Cadence = Cadence.WEEKLY,
                status: SubscriberStatus = SubscriberStatus.ACTIVE, paused: bool = False,
                chunk: int = 5000) -> None:
    """``count`` readers reader<i>@example.org with Unicode display names, in bulk."""
    for base in range(start, start + count, chunk):
        rows = []
        for i in range(base, min(base + chunk, start + count)):
            email = f"reader{i}@example.org"
            rows.append({"email": email, "email_hash": hashlib.sha256(email.encode()).hexdigest(),
                         "name": f"Zoë Çelik {i} 读者", "status": status, "cadence": cadence,
                         "paused": paused})
        with transaction(app.sessions) as s:
            s.execute(insert(Subscriber), rows)
