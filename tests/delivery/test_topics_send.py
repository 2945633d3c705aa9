"""The send by topics: a reader following a topic gets only its posts (and posts without a
topic); a reader whose topics had no post gets nothing and no record; each distinct set of
posts is rendered once. Mail is read as the bytes a reader receives, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import email
from email.policy import default

from sqlalchemy import select

from digest.delivery import received
from digest.delivery.send import send_digest
from digest.delivery.topicfilter import posts_for_reader, reader_posts
from digest.delivery.variants import variants
from digest.feeds.topic_catalog import hide_topic, merge_topic
from digest.mail.message import build_mime
from digest.runtime import App
from digest.store.models import Batch, BatchStatus, Delivery, Post, Subscriber, Topic
from digest.store.sessions import transaction
from tests.delivery_helpers import add_post, add_readers


def _mails(transport) -> dict[str, list[str]]:
    """Each address -> the plain text of every digest it received, from the raw bytes."""
    got: dict[str, list[str]] = {}
    for mail, recipients in transport.sent:
        for recipient in recipients:
            raw = build_mime(mail, recipient, "news.example.org").as_bytes()
            body = email.message_from_bytes(raw, policy=default).get_body(("plain",))
            assert body is not None
            got.setdefault(recipient.email, []).append(body.get_content())
    return got


def _topic(app: App, key: str) -> int:
    with transaction(app.sessions) as s:
        topic = Topic(key=key.casefold(), name=key)
        s.add(topic)
        s.flush()
        return topic.id


def _post(app: App, title: str, *topic_ids: int) -> int:
    pid = add_post(app, title)
    with transaction(app.sessions) as s:
        s.get_one(Post, pid).topic_ids = list(topic_ids)
    return pid


def _follow(app: App, choices: dict[int, list[int] | None]) -> None:
    with transaction(app.sessions) as s:
        for sid, chosen in choices.items():
            s.get_one(Subscriber, sid).topic_ids = chosen


def _deliveries(app: App) -> set[int]:
    with app.sessions() as s:
        return {int(i) for i in s.scalars(select(Delivery.subscriber_id))}


def _world(app: App) -> dict[str, int]:
    """Topics Russia, Trade, Sport; posts in Russia, Trade, none; readers:
    1 Russia, 2 Trade, 3 everything, 4 Sport (no post), 5 Russia+Trade."""
    ids = {name: _topic(app, name) for name in ("Russia", "Trade", "Sport")}
    _post(app, "Moscow talks open", ids["Russia"])
    _post(app, "Tariffs cut", ids["Trade"])
    _post(app, "Editor's note")  # no category: everyone gets it
    add_readers(app, 5)
    _follow(app, {1: [ids["Russia"]], 2: [ids["Trade"]], 3: None, 4: [ids["Sport"]],
                  5: [ids["Russia"], ids["Trade"]]})
    return ids


def test_a_reader_following_one_topic_gets_only_its_posts(app: App, transport) -> None:
    _world(app)
    result = send_digest(app)
    assert result.status == "sent"
    got = _mails(transport)
    (russia,) = got["reader0@example.org"]
    assert "Moscow talks open" in russia and "Editor's note" in russia
    assert "Tariffs cut" not in russia
    (trade,) = got["reader1@example.org"]
    assert "Tariffs cut" in trade and "Editor's note" in trade
    assert "Moscow talks open" not in trade
    for everything in (got["reader2@example.org"][0], got["reader4@example.org"][0]):
        assert all(t in everything for t in ("Moscow talks open", "Tariffs cut",
                                             "Editor's note"))


def test_a_reader_whose_topics_had_no_post_gets_nothing_and_no_record(app: App,
                                                                        transport) -> None:
    ids = {name: _topic(app, name) for name in ("Russia", "Sport")}
    _post(app, "Moscow talks open", ids["Russia"])
    add_readers(app, 3)
    _follow(app, {1: [ids["Sport"]], 2: [ids["Russia"]], 3: [ids["Sport"]]})
    result = send_digest(app)
    assert result.status == "sent"
    assert result.recipients == 1  # planned: only the reader with a post in their topics
    assert set(_mails(transport)) == {"reader1@example.org"}
    assert _deliveries(app) == {2}  # not recorded, so never counted as skipped
    with app.sessions() as s:
        assert [b.status for b in s.scalars(select(Batch))] == [BatchStatus.SENT]


def test_posts_without_a_topic_reach_everyone(app: App, transport) -> None:
    ids = {name: _topic(app, name) for name in ("Russia", "Sport")}
    _post(app, "Editor's note")
    _post(app, "Moscow talks open", ids["Russia"])
    add_readers(app, 2)
    _follow(app, {1: [ids["Sport"]], 2: [ids["Russia"]]})
    send_digest(app)
    got = _mails(transport)
    assert "Editor's note" in got["reader0@example.org"][0]
    assert "Moscow talks open" not in got["reader0@example.org"][0]
    assert "Moscow talks open" in got["reader1@example.org"][0]


def test_hidden_and_merged_topics_change_who_gets_what(app: App, transport) -> None:
    ids = _world(app)
    with transaction(app.sessions) as s:
        hide_topic(s, ids["Trade"])  # "Tariffs cut" now has no topic: everyone gets it
        merge_topic(s, ids["Sport"], ids["Russia"])  # reader 4 now follows Russia
    send_digest(app)
    got = _mails(transport)
    assert "Tariffs cut" in got["reader0@example.org"][0]
    (sport,) = got["reader3@example.org"]
    assert "Moscow talks open" in sport
    # reader 2 chose only a hidden topic: everything
    assert "Moscow talks open" in got["reader1@example.org"][0]


def test_each_distinct_set_of_posts_is_rendered_once(app: App, transport, monkeypatch) -> None:
    ids = _world(app)
    add_readers(app, 40, start=5)
    _follow(app, {sid: [ids["Russia"]] if sid % 2 else [ids["Trade"]] for sid in range(6, 46)})
    renders: list[frozenset[int]] = []
    real = received.render_variant

    def counted(session, settings, edition, post_ids):
        renders.append(frozenset(post_ids))
        return real(session, settings, edition, post_ids)

    monkeypatch.setattr("digest.delivery.variants.render_variant", counted)
    app.settings.batch_size = 7  # with 4 sets of posts, ledger batches of 4 x 7 = 28 readers
    result = send_digest(app)
    assert result.status == "sent" and result.batches == 2
    # One request per set of posts in each batch: the first has readers of all four sets,
    # the second (readers 29-45, Russia or Trade) of two.
    assert len(transport.sent) == 6
    # Three variants (Russia + note, Trade + note, the note alone for Sport); the rest get
    # the stored edition. Rendered once each, though every batch has readers of two of them.
    assert len(renders) == len(set(renders)) == 3
    assert variants.renders == 3
    got = _mails(transport)
    assert len(got) == 45 and all(len(m) == 1 for m in got.values())
    (sport,) = got["reader3@example.org"]
    assert "Editor's note" in sport and "Moscow talks open" not in sport


def test_the_pure_rule_and_the_preview_helper(app: App) -> None:
    both = frozenset({1, 2})
    posts = {10: frozenset({1}), 11: frozenset({2}), 12: frozenset(), 13: both}
    assert reader_posts(posts, None) == {10, 11, 12, 13}
    assert reader_posts(posts, frozenset()) == {10, 11, 12, 13}
    assert reader_posts(posts, frozenset({1})) == {10, 12, 13}
    assert reader_posts(posts, frozenset({3})) == {12}
    ids = _world(app)
    with app.sessions() as s:
        all_posts = [p.id for p in s.scalars(select(Post).order_by(Post.id))]
        assert posts_for_reader(s, all_posts, [ids["Trade"]]) == [all_posts[1], all_posts[2]]
        assert posts_for_reader(s, all_posts, None) == all_posts
        assert posts_for_reader(s, all_posts, [9999]) == all_posts  # unknown: everything
        hostile = [[ids["Trade"]], {"a": 1}, "x", None, True, ids["Trade"]]
        assert posts_for_reader(s, all_posts, hostile) == [all_posts[1], all_posts[2]]


def test_topics_and_posts_received_elsewhere_combine(app: App, transport) -> None:
    """Weekly readers switched to daily: each gets the posts of their topics they have not
    had yet; one whose topic posts all came in the weekly digest is ALREADY_RECEIVED."""
    from digest.store.models import Cadence, DeliveryStatus

    ids = {name: _topic(app, name) for name in ("Russia", "Trade")}
    _post(app, "Moscow talks open", ids["Russia"])
    _post(app, "Editor's note")
    add_readers(app, 2)
    _follow(app, {1: [ids["Russia"]], 2: [ids["Trade"]]})
    assert send_digest(app, cadence=Cadence.WEEKLY).status == "sent"
    transport.sent.clear()
    with transaction(app.sessions) as s:
        for sid in (1, 2):
            s.get_one(Subscriber, sid).cadence = Cadence.DAILY
    _post(app, "Tariffs cut", ids["Trade"])

    daily = send_digest(app, cadence=Cadence.DAILY)

    got = _mails(transport)
    assert set(got) == {"reader1@example.org"}
    (trade,) = got["reader1@example.org"]
    assert "Tariffs cut" in trade and "Editor's note" not in trade
    with app.sessions() as s:
        rows = dict(s.execute(select(Delivery.subscriber_id, Delivery.status)
                              .where(Delivery.edition_id == daily.edition_id)).all())
    assert rows == {1: DeliveryStatus.ALREADY_RECEIVED, 2: DeliveryStatus.HANDED}


def test_a_batch_interrupted_mid_send_resumes_without_mailing_anyone_twice(app: App) -> None:
    """The connection drops after the first reader of a request: the retry resumes after the
    readers handed over and passes the readers with nothing in their topics, and the batch
    ends sent."""
    from digest.mail.transports.base import BatchInterrupted
    from digest.mail.transports.memory import MemoryTransport

    ids = {name: _topic(app, name) for name in ("Russia", "Sport")}
    _post(app, "Moscow talks open", ids["Russia"])
    add_readers(app, 6)
    _follow(app, {1: [ids["Sport"]], 2: [ids["Russia"]], 3: [ids["Sport"]], 4: None,
                  5: [ids["Sport"]], 6: [ids["Russia"]]})
    flaky = MemoryTransport()
    calls = {"n": 0}
    real = flaky.send_batch

    def send_batch(mail, recipients):
        calls["n"] += 1
        if calls["n"] == 1:
            real(mail, recipients[:1])
            raise BatchInterrupted("connection dropped", accepted=1)
        return real(mail, recipients)

    flaky.send_batch = send_batch  # type: ignore[method-assign]
    app.transport = lambda: flaky  # type: ignore[method-assign]
    result = send_digest(app)
    assert result.status == "sent" and calls["n"] == 2
    assert sorted(flaky.recipients) == ["reader1@example.org", "reader3@example.org",
                                        "reader5@example.org"]
    assert _deliveries(app) == {2, 4, 6}
    with app.sessions() as s:
        assert [b.status for b in s.scalars(select(Batch))] == [BatchStatus.SENT]


def test_the_dry_run_says_who_gets_fewer_posts_by_topic(app: App, transport) -> None:
    _world(app)
    plan = send_digest(app, dry_run=True)
    assert plan.status == "dry-run" and plan.recipients == 5
    assert sorted(plan.by_topic) == [
        (1, ("Editor's note",)),  # Sport: only the post without a topic
        (1, ("Moscow talks open", "Editor's note")),
        (1, ("Tariffs cut", "Editor's note")),
    ]
    text = plan.describe()
    assert "1 reader follows topics that leave out some posts and will get only: " \
        "Moscow talks open; Editor's note" in text
    assert transport.sent == []


def test_the_dry_run_counts_readers_with_no_post_in_their_topics(app: App) -> None:
    ids = {name: _topic(app, name) for name in ("Russia", "Sport")}
    _post(app, "Moscow talks open", ids["Russia"])
    add_readers(app, 3)
    _follow(app, {1: [ids["Sport"]], 2: [ids["Sport"]]})
    plan = send_digest(app, dry_run=True)
    assert plan.by_topic == ((2, ()),)
    assert "2 readers follow topics with no post in this digest and will get no mail" \
        in plan.describe()


def test_a_resend_leaves_out_readers_whose_topics_had_nothing(app: App, transport) -> None:
    """They have no record, yet they did not miss it: a resend neither plans them nor counts
    them again, however often it runs; a reader who did miss it still gets it."""
    from digest.delivery.resend import resend_edition
    from digest.store.models import Edition

    ids = {name: _topic(app, name) for name in ("Russia", "Sport")}
    _post(app, "Moscow talks open", ids["Russia"])
    add_readers(app, 3)
    _follow(app, {1: [ids["Sport"]], 2: [ids["Russia"]], 3: None})
    sent = send_digest(app)
    with app.sessions() as s:
        planned = s.get_one(Edition, sent.edition_id).recipient_count
    for _ in range(2):
        again = resend_edition(app, sent.edition_id)
        assert again.status == "empty" and "already received" in (again.reason or "")
    add_readers(app, 1, start=3)  # joined later, follows everything
    late = resend_edition(app, sent.edition_id)
    assert late.status == "sent" and late.recipients == 1
    with app.sessions() as s:
        assert s.get_one(Edition, sent.edition_id).recipient_count == planned + 1
    assert sorted(r for _, batch in transport.sent for r in (x.email for x in batch)) == [
        "reader1@example.org", "reader2@example.org", "reader3@example.org"]


def test_posts_no_reader_follows_are_announced_and_the_next_digest_moves_on(
        app: App, transport) -> None:
    """With a maximum of one post, the oldest (Sport) first: no reader follows it, so it
    counts as sent to nobody, and the next digest carries the Russia post instead of picking
    the Sport one again for ever."""
    from digest.delivery.plan import NO_FOLLOWERS

    ids = {name: _topic(app, name) for name in ("Russia", "Sport")}
    _post(app, "Match report", ids["Sport"])
    _post(app, "Moscow talks open", ids["Russia"])
    add_readers(app, 2)
    _follow(app, {1: [ids["Russia"]], 2: [ids["Russia"]]})
    app.settings.max_posts = 1
    first = send_digest(app, manual=True)
    assert (first.status, first.reason, first.posts) == ("sent", NO_FOLLOWERS, ("Match report",))
    assert transport.sent == []
    second = send_digest(app, manual=True)
    assert second.status == "sent" and second.posts == ("Moscow talks open",)
    assert sorted(_mails(transport)) == ["reader0@example.org", "reader1@example.org"]
