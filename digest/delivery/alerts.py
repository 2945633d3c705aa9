"""Alerts for the operator: each problem is one episode, mailed once to DIGEST_OPERATOR_EMAIL.

``check_alerts`` runs every five minutes from beat and from the web process (a dead beat
cannot report itself), so two runners may check at the same moment. The episode row
(``models.OperatorAlert``) makes that harmless: the open episode of a key lives under the
bare key, inserted with ON CONFLICT DO NOTHING, and whoever turns its ``notified_at`` from
NULL to a time in one conditional UPDATE is the one who tells the operator. When the problem
clears the episode closes: kept under ``key@closed-at`` if the operator was told, deleted if
not (a feed that failed for an hour), so the same problem later opens a new episode and a
new mail. Without DIGEST_OPERATOR_EMAIL an alert is logged instead, as WARNING, once.
"""

from __future__ import annotations

import html
import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from digest.delivery.alerts_found import Finding, findings
from digest.errors import DeliveryError
from digest.mail.message import OutgoingMail, Recipient
from digest.runtime import App
from digest.store.models import OperatorAlert
from digest.store.sessions import transaction

__all__ = ["OpenAlert", "check_alerts", "open_alerts"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class OpenAlert:
    key: str
    opened_at: datetime
    notified_at: datetime | None  # when the operator was told (or it was logged); None: not yet
    detail: str


def check_alerts(app: App, now: datetime) -> list[str]:
    """Open and close episodes for what is wrong at ``now`` and tell the operator of each new
    one that is due; returns the subjects told (mailed, or logged without an address)."""
    found = findings(app, now)
    due: list[Finding] = []
    with transaction(app.sessions) as session:
        for kind, current in found.items():
            if current is None:
                continue  # not judged: its open episodes stay open
            for finding in current:
                _open(session, finding, now)
            _close_cleared(session, kind, {f.key for f in current}, now)
        due = [f for current in found.values() for f in current or []]
    return [f.subject for f in due if _claim(app, f, now) and _tell(app, f, now)]


def open_alerts(app: App) -> list[OpenAlert]:
    """The episodes open now, oldest first (``digest alerts``)."""
    with app.sessions() as session:
        rows = session.scalars(select(OperatorAlert).where(OperatorAlert.closed_at.is_(None))
                               .order_by(OperatorAlert.opened_at, OperatorAlert.key)).all()
        return [OpenAlert(r.key, r.opened_at, r.notified_at, r.detail) for r in rows]


def _open(session: Session, finding: Finding, now: datetime) -> None:
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    session.execute(dialect.insert(OperatorAlert).values(
        key=finding.key, opened_at=finding.since or now, detail=finding.subject,
    ).on_conflict_do_nothing())


def _close_cleared(session: Session, kind: str, current: set[str], now: datetime) -> None:
    """Close the open episodes of ``kind`` whose problem is gone."""
    rows = session.execute(select(OperatorAlert.key, OperatorAlert.notified_at).where(
        OperatorAlert.key.like(f"{kind}:%"), OperatorAlert.closed_at.is_(None))).all()
    for key, notified_at in rows:
        if key in current:
            continue
        if notified_at is None:  # nobody was told: nothing to keep
            session.execute(delete(OperatorAlert).where(OperatorAlert.key == key,
                                                        OperatorAlert.notified_at.is_(None)))
            continue
        session.execute(update(OperatorAlert)
                        .where(OperatorAlert.key == key, OperatorAlert.closed_at.is_(None))
                        .values(key=f"{key}@{now.isoformat()}", closed_at=now)
                        .execution_options(synchronize_session=False))
        log.info("alert cleared: %s", key, extra={"alert": key})


def _claim(app: App, finding: Finding, now: datetime) -> bool:
    """Take the telling of an open, due, untold episode: exactly one runner gets True."""
    with transaction(app.sessions) as session:
        result = session.execute(
            update(OperatorAlert)
            .where(OperatorAlert.key == finding.key, OperatorAlert.closed_at.is_(None),
                   OperatorAlert.notified_at.is_(None),
                   OperatorAlert.opened_at <= now - finding.grace)
            .values(notified_at=now, detail=finding.subject)
            .execution_options(synchronize_session=False))
        return bool(getattr(result, "rowcount", 0) == 1)


def _tell(app: App, finding: Finding, now: datetime) -> bool:
    """Mail the operator (or log, without an address); a failed mail is untold again, so the
    next check tries once more."""
    to = app.settings.operator_email
    if not to:
        log.warning("alert: %s\n%s", finding.subject, finding.body,
                    extra={"alert": finding.key})
        return True
    transport = app.transport()
    try:
        transport.send_batch(operator_mail(app, finding), [Recipient(to)])
    except (DeliveryError, OSError) as exc:
        log.error("alert %s could not be mailed to DIGEST_OPERATOR_EMAIL (%s); it is tried "
                  "again at the next check: %s", finding.key, exc, finding.subject,
                  extra={"alert": finding.key})
        with transaction(app.sessions) as session:
            session.execute(update(OperatorAlert)
                            .where(OperatorAlert.key == finding.key,
                                   OperatorAlert.notified_at == now)
                            .values(notified_at=None)
                            .execution_options(synchronize_session=False))
        return False
    finally:
        transport.close()
    log.warning("alert mailed to the operator: %s", finding.subject, extra={"alert": finding.key})
    return True


def operator_mail(app: App, finding: Finding) -> OutgoingMail:
    """A plain mail to the operator: what happened, then what to do."""
    settings = app.settings
    text = (f"{finding.body}\n\n-- \ndigest at {settings.base_url}: `digest alerts` lists the "
            "open alerts. This mail is sent once per episode.\n")
    body = html.escape(text).replace("\n", "<br>\n")
    return OutgoingMail(
        subject=f"[{settings.blog_name} digest] {finding.subject}"[:300],
        html=f"<!doctype html><html><body><p style=\"font-family:monospace\">{body}</p>"
             "</body></html>",
        text=text,
        from_email=settings.from_email,
        from_name=settings.from_name,
        custom_args={"kind": "alert"},
        categories=("alert",),
    )
