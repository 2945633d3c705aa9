"""The console's reader pages: search, a reader's page, add, unsubscribe, erase, export."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime

from sqlalchemy import select

from digest.readers import roster
from digest.readers.additions import add_readers
from digest.readers.addresses import email_hash
from digest.store.models import (
    Cadence,
    Delivery,
    DeliveryStatus,
    Edition,
    EditionStatus,
    Subscriber,
    SubscriberStatus,
    WebhookEvent,
)
from tests.web.console_client import console_app, signed_in_client

ROW = re.compile(r'<tr data-testid="reader-row">\s*<td><a href="/admin/readers/(\d+)">([^<]+)</a>')


def _rows(html: str) -> list[str]:
    return [m.group(2) for m in ROW.finditer(html)]


def _reader(app, address):
    with app.sessions() as s:
        return s.scalars(select(Subscriber).where(
            Subscriber.email_hash == email_hash(address, app.address_key))).one()


def test_pages_need_a_session_and_posts_a_csrf_token(app):
    from fastapi.testclient import TestClient

    anonymous = TestClient(console_app(app), base_url="https://news.example.org",
                           follow_redirects=False)
    answer = anonymous.get("/admin/readers?q=ann")
    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/admin/sign-in?next=")
    client, _ = signed_in_client(app)
    forged = client.post("/admin/readers/add", data={"email": "a@example.org"})
    assert forged.status_code == 403
    assert list(roster.list_subscribers(app)) == []


def test_search_any_case_with_filters_and_next_page(app):
    add_readers(app, [f"reader{n:02d}@example.org" for n in range(55)] + ["Ann@Example.org",
                                                                         "annie@example.org"])
    roster.remove(app, "annie@example.org")
    client, _ = signed_in_client(app)
    page = client.get("/admin/readers", params={"q": "ANN"})
    assert page.status_code == 200
    assert _rows(page.text) == ["Ann@example.org", "annie@example.org"]
    only_active = client.get("/admin/readers", params={"q": "ann", "status": "unsubscribed"})
    assert _rows(only_active.text) == ["annie@example.org"]
    first = client.get("/admin/readers", params={"q": "Reader"})
    assert len(_rows(first.text)) == 50
    link = re.search(r'href="([^"]+)" rel="next"', first.text)
    assert link is not None
    second = client.get(link.group(1).replace("&amp;", "&"))
    assert _rows(second.text) == [f"reader{n:02d}@example.org" for n in range(50, 55)]
    assert 'rel="next"' not in second.text
    everyone = client.get("/admin/readers", params={"cadence": "weekly"})
    assert len(_rows(everyone.text)) == 50 and 'rel="next"' in everyone.text
    bad = client.get("/admin/readers", params={"status": "nonsense"})
    assert bad.status_code == 400 and "not a reader status" in bad.text


def test_add_a_reader_and_refusals(app):
    client, csrf = signed_in_client(app)
    added = client.post("/admin/readers/add",
                        data={"csrf_token": csrf, "email": "Jörg+news@Bücher.de", "name": "J"})
    assert added.status_code == 200, added.text
    assert "added: Jörg+news@xn--bcher-kva.de" in added.text
    assert _rows(added.text) == ["Jörg+news@xn--bcher-kva.de"]
    assert _reader(app, "Jörg+news@xn--bcher-kva.de").status is SubscriberStatus.ACTIVE
    bad = client.post("/admin/readers/add", data={"csrf_token": csrf, "email": "not-an-addr"})
    assert bad.status_code == 400 and "not a valid email address" in bad.text
    roster.remove(app, "Jörg+news@xn--bcher-kva.de")
    left = client.post("/admin/readers/add",
                       data={"csrf_token": csrf, "email": "jörg+news@bücher.de"})
    assert left.status_code == 400 and "only the reader can sign up again" in left.text
    assert _reader(app, "Jörg+news@xn--bcher-kva.de").status is SubscriberStatus.UNSUBSCRIBED


def _history(app, reader_id, address):
    at = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
    with app.sessions.begin() as s:
        s.add(Edition(id=7, key="weekly:2026-11-30", cadence=Cadence.WEEKLY,
                      status=EditionStatus.SENT, subject="Seven <b>posts</b>"))
        s.flush()
        s.add(Delivery(edition_id=7, subscriber_id=reader_id, status=int(DeliveryStatus.BOUNCED),
                       at=at))
        s.add(WebhookEvent(sg_event_id="e1", event="bounce", edition_id=7, received_at=at,
                           email_hash=email_hash(address, app.address_key)))


def test_reader_page_unsubscribe_and_erase_with_confirmation(app):
    roster.add(app, "bob@example.org", name="Bob <script>")
    bob = _reader(app, "bob@example.org")
    _history(app, bob.id, "bob@example.org")
    client, csrf = signed_in_client(app)
    shown = client.get(f"/admin/readers/{bob.id}")
    assert shown.status_code == 200
    assert "bob@example.org" in shown.text and "Bob &lt;script&gt;" in shown.text
    assert "operator" in shown.text  # the consent source
    editions = re.search(r'data-testid="reader-editions".*?</table>', shown.text, re.S)
    assert editions and "Seven &lt;b&gt;posts&lt;/b&gt;" in editions.group(0)
    assert "bounced" in editions.group(0)
    events = re.search(r'data-testid="reader-events".*?</table>', shown.text, re.S)
    assert events and "bounce" in events.group(0) and "#7" in events.group(0)
    assert client.get("/admin/readers/999999").status_code == 404
    assert client.get("/admin/readers/" + "9" * 40).status_code == 404

    ask = client.post(f"/admin/readers/{bob.id}/unsubscribe", data={"csrf_token": csrf})
    assert ask.status_code == 200 and 'data-testid="confirm-unsubscribe"' in ask.text
    assert _reader(app, "bob@example.org").status is SubscriberStatus.ACTIVE  # asked only
    done = client.post(f"/admin/readers/{bob.id}/unsubscribe",
                       data={"csrf_token": csrf, "confirm": "yes"})
    assert done.status_code == 303
    assert _reader(app, "bob@example.org").status is SubscriberStatus.UNSUBSCRIBED
    assert "Unsubscribed" in client.get(done.headers["location"]).text

    ask = client.post(f"/admin/readers/{bob.id}/erase", data={"csrf_token": csrf})
    assert ask.status_code == 200 and "cannot be undone" in ask.text
    assert _reader(app, "bob@example.org").email == "bob@example.org"
    forged = client.post(f"/admin/readers/{bob.id}/erase", data={"confirm": "yes"})
    assert forged.status_code == 403
    done = client.post(f"/admin/readers/{bob.id}/erase",
                       data={"csrf_token": csrf, "confirm": "yes"})
    assert done.status_code == 303
    with app.sessions() as s:
        row = s.get(Subscriber, bob.id)
        assert (row.email, row.name, row.status) == (None, None, SubscriberStatus.DELETED)
    after = client.get(done.headers["location"]).text
    assert f"Erased reader #{bob.id}" in after and "bob@example.org" not in after
    assert "Erase…" not in after


def test_export_streams_every_reader_with_formulas_neutralised(app):
    add_readers(app, ["ann@example.org", "-2+3@example.org"])
    client, _ = signed_in_client(app)
    answer = client.get("/admin/readers/export.csv")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/csv")
    assert "attachment" in answer.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(answer.text)))
    assert [r["email"] for r in rows] == ["ann@example.org", "'-2+3@example.org"]
