"""One test copy of the next digest to one address; claims nothing."""

from __future__ import annotations

import dataclasses
from datetime import datetime

from sqlalchemy import select

from digest.delivery.batch import outgoing_mail
from digest.delivery.editions import draft, latest_sent_edition, render_posts
from digest.delivery.outcomes import SendResult
from digest.mail.links import recipient_for
from digest.mail.message import Recipient
from digest.readers.addresses import email_hashes, normalise
from digest.runtime import App
from digest.store.models import (
    Cadence,
    Edition,
    EditionStatus,
    Subscriber,
)


def send_test_copy(app: App, to: str, *, cadence: Cadence = Cadence.WEEKLY,
                   now: datetime | None = None) -> SendResult:
    """Send one copy of the next digest (or the last one, if nothing is new) to ``to``.

    A reader gets their own links; any other address gets the generic ones (the sign-up
    page), never a token that belongs to nobody.
    """
    to = normalise(to)
    with app.sessions() as session:
        upcoming = draft(session, app.settings, cadence, now)
        if upcoming.posts:
            rendered = render_posts(session, app.settings, upcoming.posts)
            edition = Edition(id=0, subject=rendered.subject, html=rendered.html,
                              text=rendered.text, post_ids=[p.id for p in upcoming.posts])
        else:
            last = latest_sent_edition(session, cadence)
            if last is None:
                return SendResult(None, EditionStatus.EMPTY.value, upcoming.reason, 0, 0, 0, 0)
            session.expunge(last)
            edition = last
        reader = session.execute(
            select(Subscriber.id, Subscriber.link_key)
            .where(Subscriber.email_hash.in_(email_hashes(to, app.address_key)))).first()
    mail = outgoing_mail(app.settings, edition)
    mail = dataclasses.replace(mail, subject=f"[Test] {mail.subject}")
    recipient = (Recipient(to) if reader is None
                 else recipient_for(app.settings, app.tokens, reader.id, to,
                                    link_key=reader.link_key))
    transport = app.transport()
    try:
        transport.send_batch(mail, [recipient])
    finally:
        transport.close()
    return SendResult(None, "test", f"test copy sent to {to}", 1, 0, 1, 0)
