"""The console's topics page: the table with counts, rename, merge (a cycle refused),
hide and show, each behind the session and its CSRF token."""

from __future__ import annotations

import html

from fastapi.testclient import TestClient
from sqlalchemy import select

from digest.store.models import Post, Subscriber, SubscriberStatus, Topic
from digest.store.sessions import transaction
from tests.delivery_helpers import add_post, add_readers
from tests.web.console_client import BASE_URL, console_app, signed_in_client


def _seed(app) -> dict[str, int]:
    with transaction(app.sessions) as s:
        topics = {k: Topic(key=k.casefold(), name=k) for k in ("Russia", "Trade")}
        topics["evil"] = Topic(key="<script>", name="<script>alert(1)</script>")
        s.add_all(topics.values())
        s.flush()
        ids = {k: t.id for k, t in topics.items()}
    pid = add_post(app, "Moscow talks open")
    add_readers(app, 2)
    with transaction(app.sessions) as s:
        s.get_one(Post, pid).topic_ids = [ids["Russia"]]
        s.get_one(Subscriber, 1).topic_ids = [ids["Russia"]]
        s.get_one(Subscriber, 2).status = SubscriberStatus.UNSUBSCRIBED
        s.get_one(Subscriber, 2).topic_ids = [ids["Russia"]]
    return ids


def _topics(app) -> dict[str, tuple[str, bool, int | None]]:
    with app.sessions() as s:
        return {t.key: (t.name, t.hidden, t.merged_into_id) for t in s.scalars(select(Topic))}


def test_the_page_lists_topics_with_counts_and_escapes_names(app) -> None:
    ids = _seed(app)
    client, _ = signed_in_client(app)
    page = client.get("/admin/topics")
    assert page.status_code == 200
    assert 'data-testid="nav-topics"' in page.text
    row = page.text.split(f'id="topic-{ids["Russia"]}"')[1].split("</tr>")[0]
    assert "Russia" in row and '<td class="num" data-label="Posts">1</td>' in row
    assert '<td class="num" data-label="Readers following">1</td>' in row  # active only
    assert "<script>alert(1)" not in page.text and html.escape("<script>alert(1)") in page.text


def test_rename_merge_hide_and_show_from_the_page(app) -> None:
    ids = _seed(app)
    client, csrf = signed_in_client(app)
    base = "/admin/topics"
    renamed = client.post(f"{base}/{ids['Russia']}/rename",
                          data={"csrf_token": csrf, "name": " Russia \n and CIS "})
    assert renamed.status_code == 303 and renamed.headers["location"] == f"{base}?done=renamed"
    assert "The topic was renamed." in client.get(renamed.headers["location"]).text
    assert _topics(app)["russia"][0] == "Russia and CIS"

    merged = client.post(f"{base}/{ids['Trade']}/merge",
                         data={"csrf_token": csrf, "into": str(ids["Russia"])})
    assert merged.status_code == 303
    assert _topics(app)["trade"][2] == ids["Russia"]
    cycle = client.post(f"{base}/{ids['Russia']}/merge",
                        data={"csrf_token": csrf, "into": str(ids["Trade"])})
    assert cycle.status_code == 400 and "cycle" in cycle.text
    none = client.post(f"{base}/{ids['Russia']}/merge", data={"csrf_token": csrf, "into": ""})
    assert none.status_code == 400 and "choose a topic" in none.text
    empty = client.post(f"{base}/{ids['Russia']}/rename", data={"csrf_token": csrf, "name": ""})
    assert empty.status_code == 400 and _topics(app)["russia"][0] == "Russia and CIS"
    assert client.post(f"{base}/{ids['Trade']}/unmerge",
                       data={"csrf_token": csrf}).status_code == 303
    assert _topics(app)["trade"][2] is None

    assert client.post(f"{base}/{ids['Trade']}/hide", data={"csrf_token": csrf}).status_code \
        == 303
    assert _topics(app)["trade"][1] is True
    assert "Show" in client.get(base).text
    assert client.post(f"{base}/{ids['Trade']}/unhide",
                       data={"csrf_token": csrf}).status_code == 303
    assert _topics(app)["trade"][1] is False
    assert client.post(f"{base}/999/hide", data={"csrf_token": csrf}).status_code == 404


def test_changes_need_the_csrf_token_and_a_session(app) -> None:
    ids = _seed(app)
    before = _topics(app)
    client, csrf = signed_in_client(app)
    for action, data in (("rename", {"name": "Hacked"}), ("hide", {}), ("unhide", {}),
                         ("merge", {"into": str(ids["Trade"])}), ("unmerge", {})):
        path = f"/admin/topics/{ids['Russia']}/{action}"
        assert client.post(path, data=data).status_code == 403
        assert client.post(path, data={**data, "csrf_token": "wrong"}).status_code == 403
        stranger = TestClient(console_app(app), base_url=BASE_URL, follow_redirects=False)
        assert stranger.post(path, data={**data, "csrf_token": csrf}).status_code == 403
    assert _topics(app) == before
    stranger = TestClient(console_app(app), base_url=BASE_URL, follow_redirects=False)
    assert stranger.get("/admin/topics").status_code == 303


def test_the_send_page_says_who_gets_fewer_posts_by_topic(app) -> None:
    ids = _seed(app)
    add_post(app, "Editor's note")
    add_readers(app, 1, start=2)
    with transaction(app.sessions) as s:
        s.get_one(Subscriber, 3).topic_ids = [ids["Trade"]]
    client, _ = signed_in_client(app)
    page = client.get("/admin/send-now")
    assert page.status_code == 200
    said = page.text.split('data-testid="send-by-topic">')[1].split("</p>")[0]
    assert said == ("1 of them follow topics that leave out some posts and will get only: "
                    "Editor&#39;s note.")
