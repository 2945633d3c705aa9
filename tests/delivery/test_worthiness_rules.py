"""``worthiness.choose`` on its own (no database): the order the rules apply in, and edges;
and the settings it reads, refused when out of range."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from digest.config import load_settings
from digest.delivery.worthiness import Rules, choose
from digest.errors import ConfigError
from digest.store.models import Cadence, Post

NOW = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)


def _post(n: int, age: timedelta) -> Post:
    return Post(id=n, title=f"Post {n}", first_seen_at=NOW - age)


def test_nothing_new_is_nothing_left() -> None:
    posts, left = choose([], Cadence.DAILY, Rules(min_posts=3, max_posts=2,
                                                  hold=timedelta(minutes=30)), now=NOW)
    assert posts == [] and left.waiting is None and (left.held, left.carried) == (0, 0)


def test_exactly_the_minimum_goes_and_exactly_the_maximum_carries_nothing() -> None:
    found = [_post(n, timedelta(hours=10 - n)) for n in range(3)]
    posts, left = choose(found, Cadence.WEEKLY, Rules(min_posts=3, max_posts=3), now=NOW)
    assert posts == found and left.waiting is None and left.carried_note() is None


def test_the_oldest_go_whatever_order_they_came_in() -> None:
    found = [_post(3, timedelta(hours=1)), _post(1, timedelta(hours=3)),
             _post(2, timedelta(hours=3))]  # 1 and 2 first seen together: by id
    posts, left = choose(found, Cadence.INSTANT, Rules(max_posts=2), now=NOW)
    assert [p.id for p in posts] == [1, 2] and left.carried == 1


def test_held_posts_do_not_count_towards_the_minimum_and_the_reason_says_both() -> None:
    found = [_post(1, timedelta(hours=2)), _post(2, timedelta(minutes=5)),
             _post(3, timedelta(minutes=1))]
    posts, left = choose(found, Cadence.DAILY,
                         Rules(min_posts=2, hold=timedelta(minutes=30)), now=NOW)
    assert posts == [] and left.waiting is not None and left.waiting.new == 1
    assert left.held == 2 and left.held_until == NOW + timedelta(minutes=25)
    assert left.held_note() == ("2 posts first seen less than DIGEST_HOLD_MINUTES ago wait "
                                "(the first until 2026-03-02 06:25 UTC)")


@pytest.mark.parametrize("cadence", list(Cadence))
def test_a_post_exactly_as_old_as_the_hold_goes(cadence: Cadence) -> None:
    found = [_post(1, timedelta(minutes=30))]
    posts, _ = choose(found, cadence, Rules(hold=timedelta(minutes=30)), now=NOW)
    assert posts == found


def test_the_maximum_wait_counts_from_the_oldest_ready_post() -> None:
    rules = Rules(min_posts=5, max_wait=timedelta(days=14))
    found = [_post(1, timedelta(days=14)), _post(2, timedelta(days=1))]
    assert choose(found, Cadence.WEEKLY, rules, now=NOW)[0] == found  # exactly 14 days: goes
    posts, left = choose(found[1:], Cadence.WEEKLY, rules, now=NOW)
    assert posts == [] and left.waiting is not None
    assert left.waiting.until == NOW + timedelta(days=13)


# Settings an operator may get wrong


@pytest.mark.parametrize(("name", "value"), [
    ("min_posts", 0), ("min_posts", -3), ("max_posts", -1), ("max_wait_days", 0),
    ("max_wait_days", "inf"), ("max_wait_days", "nan"), ("max_wait_days", 1e12),
    ("hold_minutes", -1), ("hold_minutes", "inf"), ("min_posts", "three"),
])
def test_a_threshold_out_of_range_is_refused_naming_the_setting(name: str, value: object) -> None:
    with pytest.raises(ConfigError, match=f"DIGEST_{name.upper()}"):
        load_settings(_env_file=None, **{name: value})
