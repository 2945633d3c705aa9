"""The operator adds several readers at once: every address is checked before any is added.

An address that is not valid, or belongs to a reader who left (only they can come back,
through the signup page), is *bad*: one bad address and nothing is added, unless the operator
asked to skip the bad ones. A reader already on the list is named as such, not added twice.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.orm import Session

from digest.errors import SubscriberError
from digest.readers import lifecycle
from digest.readers.addresses import email_hash, normalise
from digest.readers.lookup import by_address
from digest.runtime import App
from digest.store.models import Subscriber, SubscriberStatus, utcnow
from digest.store.sessions import transaction
from digest.wording import plural


@dataclass
class AddReport:
    """What became of each address the operator gave."""

    added: list[str] = field(default_factory=list)
    existing: list[tuple[str, str]] = field(default_factory=list)  # (address, status)
    bad: list[tuple[str, str]] = field(default_factory=list)  # (as given, why)
    skipped_bad: bool = False

    @property
    def refused(self) -> bool:
        """True when bad addresses stopped the whole addition."""
        return bool(self.bad) and not self.skipped_bad

    def describe(self) -> str:
        """One line per address, then the totals."""
        lines = [f"not added: {given}: {why}" for given, why in self.bad]
        if self.refused:
            lines.append(f"nothing added: {plural(len(self.bad), 'bad address', 'bad addresses')}"
                         "; fix or leave them out, or pass --skip-invalid to add the others")
            return "\n".join(lines)
        lines += [f"added: {address}" for address in self.added]
        lines += [f"already a reader ({status}): {address}" for address, status in self.existing]
        lines.append(f"{plural(len(self.added), 'reader')} added"
                     + (f", {len(self.existing)} already on the list" if self.existing else "")
                     + (f", {len(self.bad)} skipped" if self.bad else ""))
        return "\n".join(lines)


def add_readers(app: App, emails: list[str], *, name: str | None = None,
                skip_invalid: bool = False, now: datetime | None = None) -> AddReport:
    """Check every address, then add the good ones in one transaction (or none, see above)."""
    now = now or utcnow()
    report = AddReport(skipped_bad=skip_invalid)
    good: list[str] = []
    for given in emails:
        try:
            address = normalise(given, app.settings.blocked_domains)
        except SubscriberError as exc:
            report.bad.append((given, str(exc)))
            continue
        if address not in good:
            good.append(address)
    with app.sessions() as session:  # look only: nothing is written unless all is well
        for address in good:
            sub = by_address(session, app, address)
            if sub is not None and sub.status not in lifecycle.RECEIVING:
                report.bad.append((address, f"{sub.status.value}; only the reader can sign up "
                                            "again (through the signup page)"))
        session.rollback()
    if report.refused:
        return report
    left = {given for given, _ in report.bad}
    with transaction(app.sessions) as session:
        for address in good:
            if address not in left:
                _add_one(session, app, report, address, name, now)
    return report


def _add_one(session: Session, app: App, report: AddReport, address: str, name: str | None,
             now: datetime) -> None:
    sub = by_address(session, app, address)
    if sub is None:
        sub = Subscriber(email=address, email_hash=email_hash(address, app.address_key),
                         created_at=now, consent_at=now, consent_source="operator")
        session.add(sub)
        report.added.append(address)
    elif sub.status is SubscriberStatus.PENDING:
        report.existing.append((str(sub.email), "was pending, now active"))
    else:
        report.existing.append((str(sub.email), sub.status.value))
    lifecycle.operator_add(sub, now)
    if name:
        sub.name = name.strip()[:200]
