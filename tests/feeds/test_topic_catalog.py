"""The operator's catalog: rename, merge (chains, cycles refused), hide; counts; what readers
may choose and how their choice is stored. On SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from digest.errors import NoSuchTopicError, TopicError
from digest.feeds.topic_catalog import (
    hide_topic,
    list_topics,
    merge_topic,
    rename_topic,
    unhide_topic,
    unmerge_topic,
    visible_topics,
)
from digest.feeds.topics import load_resolver
from digest.readers import choices
from digest.runtime import App
from digest.store.models import Post, Subscriber, SubscriberStatus, Topic
from digest.store.sessions import transaction
from tests.delivery_helpers import add_post, add_readers


def _seed(app: App) -> dict[str, int]:
    """Topics a, b, c, d; posts in a, b, a+c, none; readers following a, b+c, everything."""
    with transaction(app.sessions) as s:
        topics = {k: Topic(key=k, name=k.upper()) for k in "abcd"}
        s.add_all(topics.values())
        s.flush()
        ids = {k: t.id for k, t in topics.items()}
    for title, keys in (("pa", "a"), ("pb", "b"), ("pac", "ac"), ("none", "")):
        pid = add_post(app, title)
        with transaction(app.sessions) as s:
            s.get_one(Post, pid).topic_ids = [ids[k] for k in keys]
    add_readers(app, 4)
    add_readers(app, 1, start=4, status=SubscriberStatus.UNSUBSCRIBED)
    with transaction(app.sessions) as s:
        choices = {1: [ids["a"]], 2: [ids["b"], ids["c"]], 3: None, 4: [ids["a"]],
                   5: [ids["a"]]}
        for sid, chosen in choices.items():
            s.get_one(Subscriber, sid).topic_ids = chosen
    return ids


def _rows(app: App) -> dict[str, tuple[int, int, str]]:
    with app.sessions() as s:
        return {t.key: (t.posts, t.readers,
                        "hidden" if t.hidden else (t.merged_into_name or "shown"))
                for t in list_topics(s)}


def test_topics_are_listed_with_posts_and_active_readers(app: App) -> None:
    _seed(app)
    assert _rows(app) == {"a": (2, 2, "shown"), "b": (1, 1, "shown"), "c": (1, 1, "shown"),
                          "d": (0, 0, "shown")}


def test_merge_counts_for_the_root_and_chains_resolve(app: App) -> None:
    ids = _seed(app)
    with transaction(app.sessions) as s:
        merge_topic(s, ids["c"], ids["b"])
        merge_topic(s, ids["b"], ids["a"])  # c -> b -> a
    rows = _rows(app)
    assert rows["a"] == (3, 3, "shown")  # pa, pb, pac; readers 1, 2, 4
    assert rows["b"] == (2, 1, "A") and rows["c"] == (1, 1, "B")
    with app.sessions() as s:
        resolver = load_resolver(s)
        assert resolver.effective(ids["c"]) == ids["a"]
        assert [t.name for t in visible_topics(s)] == ["A", "D"]
    with transaction(app.sessions) as s:
        unmerge_topic(s, ids["b"])
    with app.sessions() as s:
        assert load_resolver(s).effective(ids["c"]) == ids["b"]


def test_merging_into_itself_or_in_a_cycle_is_refused_and_changes_nothing(app: App) -> None:
    ids = _seed(app)
    with transaction(app.sessions) as s:
        merge_topic(s, ids["a"], ids["b"])
        merge_topic(s, ids["b"], ids["c"])
    for topic, into in ((ids["d"], ids["d"]), (ids["c"], ids["a"]), (ids["c"], ids["b"])):
        with pytest.raises(TopicError) as refused, transaction(app.sessions) as s:
            merge_topic(s, topic, into)
        assert "itself" in str(refused.value) or "cycle" in str(refused.value)
    with app.sessions() as s:
        assert {t.key: t.merged_into_id for t in s.scalars(select(Topic))} == {
            "a": ids["b"], "b": ids["c"], "c": None, "d": None}
    with pytest.raises(NoSuchTopicError), transaction(app.sessions) as s:
        merge_topic(s, ids["a"], 999)


def test_rename_cleans_the_name_and_refuses_an_empty_one(app: App) -> None:
    ids = _seed(app)
    with transaction(app.sessions) as s:
        assert rename_topic(s, ids["a"], "  Foreign\n policy\u202e ").name == "Foreign policy"
        assert s.get_one(Topic, ids["a"]).key == "a"  # the category it comes from stays
    for bad in ("", "   ", "\x00\x07"):
        with pytest.raises(TopicError), transaction(app.sessions) as s:
            rename_topic(s, ids["a"], bad)
    with pytest.raises(NoSuchTopicError), transaction(app.sessions) as s:
        rename_topic(s, 12345, "x")


def test_hidden_topics_count_as_no_topic_and_cannot_be_chosen(app: App) -> None:
    ids = _seed(app)
    with transaction(app.sessions) as s:
        hide_topic(s, ids["b"])
        merge_topic(s, ids["d"], ids["b"])  # merged into a hidden topic: hidden too
    with app.sessions() as s:
        resolver = load_resolver(s)
        assert resolver.effective(ids["b"]) is None and resolver.effective(ids["d"]) is None
        assert resolver.effective_set([ids["b"], ids["a"], "x", True, 999]) == {ids["a"]}
        assert [t.name for t in visible_topics(s)] == ["A", "C"]
    assert _rows(app)["b"][2] == "hidden"
    with transaction(app.sessions) as s:
        unhide_topic(s, ids["b"])
    with app.sessions() as s:
        assert load_resolver(s).effective(ids["d"]) == ids["b"]


def test_a_readers_choice_is_offered_only_visible_topics_and_everything_is_sql_null(
        app: App) -> None:
    ids = _seed(app)
    with transaction(app.sessions) as s:
        hide_topic(s, ids["d"])
        merge_topic(s, ids["c"], ids["a"])
    with transaction(app.sessions) as s:
        assert [t.id for t in choices.visible_topics(s)] == [ids["a"], ids["b"]]
        reader = s.get_one(Subscriber, 1)
        for foreign in ([str(ids["c"])], [str(ids["d"])], ["999"], ["1e3"], ["٣"]):
            with pytest.raises(choices.ChoiceError):
                choices.parse_topics(s, foreign)
        assert choices.parse_topics(s, [str(ids["b"]), str(ids["a"]), str(ids["a"])]) == \
            sorted([ids["a"], ids["b"]])
        reader.topic_ids = choices.parse_topics(s, [])  # none ticked: everything
    with app.sessions() as s:
        assert s.get_one(Subscriber, 1).topic_ids is None
        assert s.scalar(select(Subscriber.id).where(Subscriber.id == 1,
                                                    Subscriber.topic_ids.is_(None))) == 1
