"""Digests worth opening: which of a cadence's new posts go in this edition, and which wait.

``editions.new_posts`` finds what no edition of the cadence holds yet (oldest first); four
operator settings then shape the edition from it, in this order:

1. The hold (``DIGEST_HOLD_MINUTES``; instant and daily only): a post first seen less than
   that long ago waits. A post unpublished meanwhile is marked ``in_feed=False`` by the next
   poll and is never found again; an edited one is stored in its new form, and an edition is
   rendered when it is claimed, so it goes out as it is by then. Both need a poll to see the
   change inside the window (hourly, or a WebSub push), so the hold should exceed the poll
   interval. Weekly is left alone: a digest a week apart is its own hold.
2. The minimum (``DIGEST_MIN_POSTS``; weekly and daily): fewer ready posts than that and the
   edition waits (the scheduled claim records an EMPTY edition saying so), unless its oldest
   post was first seen ``DIGEST_MAX_WAIT_DAYS`` ago or more: then it goes with what there is.
   Instant has no minimum (it means "every post"), and a send by hand ignores it.
3. The maximum (``DIGEST_MAX_POSTS``; every cadence, sends by hand too; 0: no limit): the
   oldest posts go, the rest are in no edition and so are new again for the next one.

Everything here is a pure function of the posts and the clock; nothing is written.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from digest.config import Settings
from digest.store.models import Cadence, Post
from digest.wording import plural

__all__ = ["HOLD_CADENCES", "MINIMUM_CADENCES", "Leftover", "Rules", "Waiting", "choose"]

HOLD_CADENCES = frozenset({Cadence.INSTANT, Cadence.DAILY})
MINIMUM_CADENCES = frozenset({Cadence.WEEKLY, Cadence.DAILY})


@dataclass(frozen=True)
class Rules:
    """The operator's thresholds, as ``choose`` applies them."""

    min_posts: int = 1
    max_wait: timedelta = timedelta(days=14)
    max_posts: int = 0  # 0: no limit
    hold: timedelta = timedelta(0)

    @classmethod
    def of(cls, settings: Settings) -> Rules:
        """The rules ``settings`` set."""
        return cls(min_posts=settings.min_posts,
                   max_wait=timedelta(days=settings.max_wait_days),
                   max_posts=settings.max_posts,
                   hold=timedelta(minutes=settings.hold_minutes))


@dataclass(frozen=True)
class Waiting:
    """An edition below the minimum: how many posts it wants, has, and when it goes anyway."""

    needed: int
    new: int
    until: datetime

    def describe(self) -> str:
        return (f"waiting for {plural(self.needed, 'post')} ({self.new} new); goes anyway "
                f"from {self.until:%Y-%m-%d %H:%M} UTC if still fewer")


@dataclass(frozen=True)
class Leftover:
    """New posts an edition leaves for a later one, and why."""

    held: int = 0  # first seen inside the hold window
    held_until: datetime | None = None  # when the first of them is out of it
    carried: int = 0  # past the maximum: in the next edition
    waiting: Waiting | None = None  # below the minimum: every ready post waits

    def held_note(self) -> str | None:
        """Why some posts are not in the edition yet, or None."""
        if not self.held or self.held_until is None:
            return None
        return (f"{plural(self.held, 'post')} first seen less than DIGEST_HOLD_MINUTES ago "
                f"{'waits' if self.held == 1 else 'wait'} (the first until "
                f"{self.held_until:%Y-%m-%d %H:%M} UTC)")

    def carried_note(self) -> str | None:
        """What the maximum leaves for the next edition, or None."""
        if not self.carried:
            return None
        return (f"{plural(self.carried, 'more post')} "
                f"{'waits' if self.carried == 1 else 'wait'} for the next edition "
                "(DIGEST_MAX_POSTS)")


def _oldest_first(post: Post) -> tuple[datetime, int]:
    return post.first_seen_at, post.id


def choose(posts: Sequence[Post], cadence: Cadence, rules: Rules, *, now: datetime,
           manual: bool = False) -> tuple[list[Post], Leftover]:
    """The posts this edition holds now (oldest first) and what it leaves for later."""
    ordered = sorted(posts, key=_oldest_first)
    ready, held_until = ordered, None
    if rules.hold > timedelta(0) and cadence in HOLD_CADENCES:
        cutoff = now - rules.hold
        ready = [p for p in ordered if p.first_seen_at <= cutoff]
        held = [p for p in ordered if p.first_seen_at > cutoff]
        held_until = held[0].first_seen_at + rules.hold if held else None
    held_count = len(ordered) - len(ready)
    if (ready and not manual and cadence in MINIMUM_CADENCES
            and len(ready) < rules.min_posts):
        until = ready[0].first_seen_at + rules.max_wait
        if now < until:
            waiting = Waiting(rules.min_posts, len(ready), until)
            return [], Leftover(held_count, held_until, 0, waiting)
    carried = 0
    if rules.max_posts and len(ready) > rules.max_posts:
        carried = len(ready) - rules.max_posts
        ready = ready[:rules.max_posts]
    return ready, Leftover(held_count, held_until, carried)
