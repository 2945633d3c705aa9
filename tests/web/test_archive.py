"""The archive pages: past sent digests in the browser, with nobody's token in them."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from digest.mail.compose import outgoing_mail
from digest.mail.render import render_digest
from digest.store.models import Cadence, Edition, EditionStatus, Feed, Post
from digest.tokens import Purpose
from digest.web.archive import router
from tests.mail_samples import LEAD_LINK, LEAD_TITLE, sample_posts, sample_sections


@pytest.fixture
def client(sqlite_app):
    web = FastAPI()
    web.state.digest = sqlite_app
    web.include_router(router)
    return TestClient(web)


def _edition(app, key: str, status: EditionStatus, html: str, subject: str,
             post_ids: list[int] | None = None) -> int:
    with app.sessions() as session, session.begin():
        edition = Edition(key=key, cadence=Cadence.WEEKLY, status=status, subject=subject,
                          html=html, text="", post_ids=post_ids or [],
                          finished_at=datetime(2022, 1, 10, 8, tzinfo=UTC))
        session.add(edition)
        session.flush()
        return edition.id


def test_archive_lists_only_sent_editions(client, sqlite_app) -> None:
    settings = sqlite_app.settings
    rendered = render_digest(settings, sample_sections(2))
    sent = _edition(sqlite_app, "weekly:2022-01-10", EditionStatus.SENT, rendered.html,
                    rendered.subject)
    _edition(sqlite_app, "weekly:2022-01-17", EditionStatus.SENDING, rendered.html,
             "Still sending <b>secret</b>")
    _edition(sqlite_app, "weekly:2022-01-24", EditionStatus.EMPTY, "", "Nothing new")
    response = client.get("/archive")
    assert response.status_code == 200
    assert "text/html" in response.headers["content-type"]
    assert "Russia-West Negotiations Start (+1 more)" in response.text
    assert f'href="https://news.example.org/archive/{sent}"' in response.text
    assert "10 January 2022" in response.text
    assert "Still sending" not in response.text and "Nothing new" not in response.text


def test_archive_lists_each_set_of_posts_once(app) -> None:
    """On SQLite and PostgreSQL (post ids are stored as JSON)."""
    web = FastAPI()
    web.state.digest = app
    web.include_router(router)
    client, sqlite_app = TestClient(web), app
    settings = sqlite_app.settings
    rendered = render_digest(settings, sample_sections(2))
    # The same two posts went out by hand and then by the schedule; a third edition differs.
    by_hand = _edition(sqlite_app, "weekly:manual:after-0", EditionStatus.SENT, rendered.html,
                       "By hand", post_ids=[1, 2])
    scheduled = _edition(sqlite_app, "weekly:2022-01-10", EditionStatus.SENT, rendered.html,
                         "Scheduled", post_ids=[2, 1])
    other = _edition(sqlite_app, "weekly:2022-01-17", EditionStatus.SENT, rendered.html,
                     "Another week", post_ids=[3])
    page = client.get("/archive").text
    assert "Scheduled" in page and "Another week" in page and "By hand" not in page
    assert f"/archive/{scheduled}\"" in page and f"/archive/{other}\"" in page
    assert f"/archive/{by_hand}\"" not in page
    assert client.get(f"/archive/{by_hand}").status_code == 200  # its own page stays


def test_archive_is_empty_before_the_first_digest(client) -> None:
    response = client.get("/archive")
    assert response.status_code == 200
    assert "No digest has been sent yet." in response.text


def test_an_edition_page_has_generic_links_and_no_token(client, sqlite_app) -> None:
    settings = sqlite_app.settings
    rendered = render_digest(settings, sample_sections(3))
    # Even a stored HTML that was personalised by mistake must not leak the token.
    token = sqlite_app.tokens.make(Purpose.PREFERENCES, 5, "AnyReadersLinkKey")
    leaked = rendered.html.replace(
        "[%preferences_url%]", f"https://news.example.org/preferences/{token}"
    )
    edition_id = _edition(sqlite_app, "weekly:2022-01-10", EditionStatus.SENT, leaked,
                          rendered.subject)
    response = client.get(f"/archive/{edition_id}")
    assert response.status_code == 200
    page = response.text
    assert LEAD_TITLE in page and LEAD_LINK in page
    assert "[%" not in page
    assert token not in page
    assert "/unsubscribe/" not in page and "/preferences/" not in page
    assert 'href="https://news.example.org/"' in page  # the signup page stands in
    assert f"https://news.example.org/archive/{edition_id}" not in page  # no link to itself
    assert "default-src 'none'" in response.headers["content-security-policy"]


def test_the_mailed_html_also_works_as_stored_html(client, sqlite_app) -> None:
    settings = sqlite_app.settings
    mail = outgoing_mail(settings, render_digest(settings, sample_sections(1)), edition_id=1)
    edition_id = _edition(sqlite_app, "weekly:2022-01-10", EditionStatus.SENT, mail.html,
                          mail.subject)
    page = client.get(f"/archive/{edition_id}").text
    assert "[%" not in page and LEAD_TITLE in page


@pytest.mark.parametrize("status", [EditionStatus.SENDING, EditionStatus.FAILED])
def test_unsent_or_unknown_editions_are_not_found(client, sqlite_app, status) -> None:
    edition_id = _edition(sqlite_app, "weekly:x", status, "<p>draft</p>", "Draft")
    assert client.get(f"/archive/{edition_id}").status_code == 404
    for unknown in ("9999", "not-a-number", str(2**63), str(2**64 + 5), "0", "-1", "1e3"):
        page = client.get(f"/archive/{unknown}", headers={"accept": "text/html"})
        assert page.status_code == 404, unknown
        assert "text/html" in page.headers["content-type"]
        assert "No such digest" in page.text and 'href="/archive"' in page.text


def test_a_long_edition_is_shown_whole_in_the_archive(client, sqlite_app) -> None:
    settings = sqlite_app.settings
    with sqlite_app.sessions() as session, session.begin():
        feed = Feed(url="https://diplomaticopinion.com/feed/",
                    configured_url="https://diplomaticopinion.com/feed/",
                    title="Diplomatic Opinion", site_url="https://diplomaticopinion.com")
        session.add(feed)
        session.flush()
        posts = []
        for i, view in enumerate(sample_posts(25)):
            post = Post(feed_id=feed.id, identity=f"p{i}", link=view.link, title=view.title,
                        summary=view.summary, content_hash=f"h{i}",
                        published_at=view.published_at)
            session.add(post)
            posts.append(post)
        session.flush()
        ids = [p.id for p in posts]
    mailed = render_digest(settings, sample_sections(25))
    assert mailed.html.count('class="title"') == 20
    edition_id = _edition(sqlite_app, "weekly:2022-01-10", EditionStatus.SENT, mailed.html,
                          mailed.subject, post_ids=ids)
    page = client.get(f"/archive/{edition_id}").text
    assert page.count('class="title"') == 25
    assert "more posts in this edition" not in page


def test_an_archived_edition_has_its_own_header_and_footer(client, sqlite_app) -> None:
    settings = sqlite_app.settings
    mail = outgoing_mail(settings, render_digest(settings, sample_sections(2)), edition_id=1)
    edition_id = _edition(sqlite_app, "weekly:2022-01-10", EditionStatus.SENT, mail.html,
                          mail.subject)
    page = client.get(f"/archive/{edition_id}").text
    assert "You are receiving this" not in page
    assert ">Unsubscribe<" not in page and ">Preferences<" not in page
    assert "View in browser" not in page
    assert page.count("All past digests") == 2  # header and footer
    assert 'href="https://news.example.org/archive"' in page
    assert "Subscribe to " in page
    assert page.count("<main>") == 1 and page.index("<main>") < page.index('class="post')
    assert settings.postal_address in page


def test_an_unknown_edition_id_past_bigint_is_a_404_on_postgresql(app) -> None:
    web = FastAPI()
    web.state.digest = app
    web.include_router(router)
    with TestClient(web) as c:
        assert c.get(f"/archive/{2**63}").status_code == 404
        assert c.get(f"/archive/{2**63 - 1}").status_code == 404


def test_an_edition_being_resent_stays_in_the_archive(app) -> None:
    from digest.delivery.resend import resend_edition
    from digest.delivery.send import send_digest
    from tests.delivery_helpers import add_post, add_readers

    web = FastAPI()
    web.state.digest = app
    web.include_router(router)
    client = TestClient(web)
    add_readers(app, 1)
    add_post(app, "Resent post")
    edition_id = send_digest(app).edition_id
    add_readers(app, 1, start=1)
    queued = resend_edition(app, edition_id, queue=True, dispatch=lambda ids: None)
    assert queued.status == "queued"  # its new batch waits for a worker
    assert "Resent post" in client.get("/archive").text
    assert client.get(f"/archive/{edition_id}").status_code == 200
