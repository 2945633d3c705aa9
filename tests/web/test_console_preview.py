"""Console preview: the next digest as a reader sees it (sandboxed, two widths, text part,
subject, preheader) per cadence, and a test copy sent to an address with the result shown."""

from __future__ import annotations

import html
from datetime import UTC, datetime, timedelta

from markupsafe import escape

from digest.delivery.nextdigest import next_digest
from digest.delivery.send import send_digest
from digest.store.models import Cadence, Edition
from tests.delivery_helpers import add_post, add_readers
from tests.web.console_client import signed_in_client


def _srcdocs(page: str) -> list[str]:
    """The HTML each iframe on ``page`` shows (its srcdoc attribute, unescaped)."""
    found, rest = [], page
    while 'srcdoc="' in rest:
        rest = rest.split('srcdoc="', 1)[1]
        value, rest = rest.split('"', 1)
        found.append(html.unescape(value))
    return found


def test_preview_shows_the_mail_sandboxed_at_two_widths(app) -> None:
    add_readers(app, 1)
    add_post(app, 'Talks <resume> & "hope"')
    client, _ = signed_in_client(app)
    response = client.get("/admin/next")
    assert response.status_code == 200
    page = response.text
    shown = next_digest(app, Cadence.WEEKLY).mail
    assert shown is not None
    assert f'data-testid="preview-subject">{escape(shown.subject)}<' in page
    assert f'data-testid="preview-preheader">{escape(shown.preheader)}<' in page
    assert page.count('<iframe sandbox=""') == 2
    assert 'width="640"' in page and 'width="375"' in page
    # The mail's HTML is in the attribute, escaped: it cannot close the attribute or the tag.
    assert _srcdocs(page) == [shown.html, shown.html]
    assert f'data-testid="preview-text">{escape(shown.text)}</pre>' in page
    assert "Talks &amp; &#34;hope&#34;" in page  # the title, escaped, in the post list
    assert "<resume>" not in page


def test_preview_per_cadence_after_a_weekly_send(app) -> None:
    add_readers(app, 1)
    add_post(app, "Weekly news")
    send_digest(app, manual=True)  # weekly readers have had it; daily ones have not
    client, _ = signed_in_client(app)
    weekly = client.get("/admin/next?cadence=weekly")
    assert weekly.status_code == 200
    assert 'data-testid="preview-empty"' in weekly.text and "<iframe" not in weekly.text
    daily = client.get("/admin/next?cadence=daily")
    assert daily.status_code == 200 and "Weekly news" in daily.text
    assert 'href="/admin/next?cadence=daily" aria-current="page"' in daily.text


def test_send_a_test_copy_shows_where_it_went(app, transport) -> None:
    add_readers(app, 3)
    add_post(app, "Test me")
    client, csrf = signed_in_client(app)
    response = client.post("/admin/next/test", data={"csrf_token": csrf, "cadence": "weekly",
                                                      "to": "Editor@Example.org"})
    assert response.status_code == 200
    assert 'data-testid="test-result"' in response.text
    assert "test copy sent to Editor@example.org" in response.text
    assert len(transport.sent) == 1
    mail, recipients = transport.sent[0]
    assert [r.email for r in recipients] == ["Editor@example.org"]
    assert mail.subject.startswith("[Test] ") and "Test me" in mail.text
    with app.sessions() as s:
        assert s.query(Edition).count() == 0  # nothing claimed, no reader mailed


def test_a_bad_test_address_is_shown_and_nothing_sent(app, transport) -> None:
    add_post(app, "Test me")
    client, csrf = signed_in_client(app)
    response = client.post("/admin/next/test", data={"csrf_token": csrf, "to": "not an address"})
    assert response.status_code == 400
    assert 'data-testid="test-error"' in response.text and "not a valid email" in response.text
    assert 'value="not an address"' in response.text and transport.sent == []


def test_a_test_copy_with_nothing_ever_sent_says_so(app, transport) -> None:
    old = datetime.now(UTC) - timedelta(days=400)
    add_post(app, "Ancient", first_seen=old)
    client, csrf = signed_in_client(app)
    response = client.post("/admin/next/test", data={"csrf_token": csrf, "to": "a@example.org"})
    assert response.status_code == 409 and "no new posts" in response.text
    assert transport.sent == []


def test_preview_needs_signing_in_and_the_test_needs_the_csrf_token(app, transport) -> None:
    add_post(app, "Test me")
    client, _ = signed_in_client(app)
    refused = client.post("/admin/next/test", data={"to": "a@example.org"})
    assert refused.status_code == 403 and transport.sent == []
    client.cookies.clear()
    for path in ("/admin/next", "/admin/send-now", "/admin/editions", "/admin/editions/1",
                 "/admin/sends/1", "/admin/sends/1/progress"):
        response = client.get(path, follow_redirects=False)
        assert response.status_code == 303, path
        assert response.headers["location"].startswith("/admin/sign-in?next=")
    for path in ("/admin/next/test", "/admin/send-now", "/admin/sends/1/pause",
                 "/admin/sends/1/resume", "/admin/editions/1/resend-missing"):
        assert client.post(path, data={"confirm": "yes"}).status_code == 403, path
    assert transport.sent == []
    schema = client.get("/openapi.json").json()["paths"]
    pages = {"/admin/next", "/admin/next/test", "/admin/send-now", "/admin/editions",
             "/admin/editions/{edition_id}", "/admin/editions/{edition_id}/resend-missing"}
    assert not pages & set(schema) and not [p for p in schema if p.startswith("/admin/sends")]
