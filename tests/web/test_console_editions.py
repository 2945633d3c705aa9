"""Console editions: the history with outcome counts page by page, an edition's content and
delivery outcome by status, and "resend to those who did not get it" after a confirmation."""

from __future__ import annotations

import dataclasses
import html
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select, update

from digest.delivery.batch import send_batch
from digest.delivery.send import send_digest
from digest.store.models import Batch, Delivery, DeliveryStatus, Edition
from digest.store.sessions import transaction
from tests.delivery_helpers import add_post, add_readers
from tests.web.console_client import signed_in_client
from tests.web.test_console_send import Recording

NOW = datetime.now(UTC) - timedelta(days=2)


def _editions(app, count: int) -> list[int]:
    ids = []
    for i in range(count):
        add_post(app, f"Post {i}", first_seen=NOW + timedelta(minutes=i))
        ids.append(int(send_digest(app, manual=True).edition_id))
    return ids


def test_history_newest_first_with_counts_and_older_pages(app) -> None:
    add_readers(app, 3)
    ids = _editions(app, 27)
    client, _ = signed_in_client(app)
    first = client.get("/admin/editions")
    assert first.status_code == 200
    shown = [i for i in ids if f'data-testid="edition-{i}"' in first.text]
    assert shown == ids[2:]  # 25 a page
    assert first.text.index(f"edition-{ids[-1]}") < first.text.index(f"edition-{ids[2]}")
    row = first.text.split(f'data-testid="edition-{ids[-1]}"', 1)[1].split("</tr>", 1)[0]
    assert "Diplomatic Opinion: Post 26" in row and ">sent<" in row
    assert row.count('<td class="num">3</td>') == 1 and '<td class="num">1</td>' in row
    older = client.get(f"/admin/editions?before={ids[2]}")
    assert f'href="/admin/editions?before={ids[2]}"' in first.text
    assert [i for i in ids if f'data-testid="edition-{i}"' in older.text] == ids[:2]
    assert "editions-older" not in older.text
    assert client.get("/admin/editions?before=x%27").text.count("data-testid=\"edition-") == 25


def test_edition_page_shows_content_and_outcome_by_status(app) -> None:
    add_readers(app, 4)
    (edition_id,) = _editions(app, 1)
    with transaction(app.sessions) as s:
        s.execute(update(Delivery).where(Delivery.subscriber_id == 1)
                  .values(status=int(DeliveryStatus.BOUNCED)))
        s.execute(update(Delivery).where(Delivery.subscriber_id.in_([2, 3]))
                  .values(status=int(DeliveryStatus.DELIVERED)))
    client, _ = signed_in_client(app)
    page = client.get(f"/admin/editions/{edition_id}")
    assert page.status_code == 200
    assert 'data-testid="status-bounced">bounced: 1' in page.text
    assert 'data-testid="status-delivered">delivered: 2' in page.text
    assert 'data-testid="status-handed">handed: 1' in page.text
    with app.sessions() as s:
        stored = s.get(Edition, edition_id)
        assert html.escape(stored.subject, quote=False) in page.text
    assert '<iframe sandbox=""' in page.text and "Post 0" in page.text
    assert "[%" not in html.unescape(page.text)  # no placeholder, nobody's link
    assert 'data-testid="resend-confirm"' in page.text
    assert client.get("/admin/editions/424242").status_code == 404


def test_resend_to_those_who_did_not_get_it(app, transport) -> None:
    add_readers(app, 4)
    (edition_id,) = _editions(app, 1)
    with transaction(app.sessions) as s:
        s.execute(update(Delivery).where(Delivery.subscriber_id == 2)
                  .values(status=int(DeliveryStatus.BOUNCED)))
    add_readers(app, 1, start=50)  # joined since
    dispatch = Recording()
    queued = dataclasses.replace(app, dispatch=dispatch)
    client, csrf = signed_in_client(queued)
    unconfirmed = client.post(f"/admin/editions/{edition_id}/resend-missing",
                              data={"csrf_token": csrf})
    assert unconfirmed.status_code == 400 and "nothing was sent" in unconfirmed.text
    assert dispatch.ids == []
    before = len(transport.recipients)
    response = client.post(f"/admin/editions/{edition_id}/resend-missing",
                           data={"csrf_token": csrf, "confirm": "yes"}, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == f"/admin/sends/{edition_id}"
    for batch_id in dispatch.ids:
        send_batch(queued, batch_id)
    assert sorted(transport.recipients[before:]) == ["reader1@example.org",
                                                     "reader50@example.org"]
    again = client.post(f"/admin/editions/{edition_id}/resend-missing",
                        data={"csrf_token": csrf, "confirm": "yes"})
    assert again.status_code == 200 and "Nothing sent: every weekly reader already" in again.text
    with app.sessions() as s:
        assert s.scalar(select(func.count()).select_from(Batch)) == 2


def test_resend_needs_the_csrf_token(app, transport) -> None:
    add_readers(app, 1)
    (edition_id,) = _editions(app, 1)
    client, _ = signed_in_client(app)
    refused = client.post(f"/admin/editions/{edition_id}/resend-missing", data={"confirm": "yes"})
    assert refused.status_code == 403
