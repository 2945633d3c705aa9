"""Import the operator's list from CSV (columns are read in ``csvcolumns``, the export is
``csvexport``).

Import reads what bloggers actually have: a WordPress.com/Jetpack subscriber export, a
Mailchimp audience export ("Email Address", "First Name", "Last Name"), any CSV with an
``email`` column, or a bare one-column list without a header. It never creates a duplicate:
an address already in the file or in the database (whatever its status, including the hash a
deleted reader left behind) is skipped and reported with its line number and the reason.
Imported readers are active at once (it is the operator's own list) with the consent source
``import:<file name>``. Rows are written in bulk, a few thousand per statement.

The reader's consent record is carried over when the file has it (headers are matched
case-insensitively):

- ``consent_at``: the opt-in time -- Mailchimp ``OPTIN_TIME``; a Jetpack/WordPress.com
  subscription date (``date_subscribed``, ``date subscribed``, ``subscribed``,
  ``subscribed on``, ``subscribed_on``, ``subscribed at``, ``subscribed_at``,
  ``subscription date``, ``subscription_date``, ``subscribe date``); or ``consent_at`` of
  our own export -- else Mailchimp ``CONFIRM_TIME``, else the import time.
- ``consent_ip``: Mailchimp ``OPTIN_IP`` (or our ``consent_ip``), else ``CONFIRM_IP``. A value
  that is not an IP address is dropped.
- ``confirmed_at``: Mailchimp ``CONFIRM_TIME`` (or our ``confirmed_at``), else the import time.

Dates are read as ISO 8601 (``2021-03-04 10:11:12``, ``2021-03-04``, ``2021-03-04T10:11:12Z``,
with or without an offset), ``2021/03/04 10:11:12``, ``2021/03/04``, ``March 4, 2021``,
``Mar 4, 2021`` or ``4 March 2021``; a date without an offset is UTC. A date that cannot be
read, or that lies after the import, falls back to the import time; it is not an error.

The first row is a header if it names an email column. A first row whose first cell holds an
``@`` is data: a bare list of addresses without a header. Any other first row is a header
without an email column, and the whole file is refused (``SubscriberError``) before anything
is imported.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from sqlalchemy import insert, select

from digest.errors import InvalidEmailError, SubscriberError
from digest.readers import lifecycle
from digest.readers.addresses import email_hash, legacy_email_hash, normalise
from digest.readers.csvcolumns import (
    Columns,
    cell_at,
    find_columns,
    read_date,
    read_ip,
    row_name,
)
from digest.runtime import App
from digest.store.models import Subscriber, SubscriberStatus, utcnow
from digest.store.sessions import transaction
from digest.wording import plural

_CHUNK = 2000


# Rows a source list marks as not (or no longer) subscribed are never imported as active.
_NOT_SUBSCRIBED = {"unsubscribed", "cleaned", "bounced", "complained", "spam", "blocked",
                   "deleted", "pending", "unconfirmed", "archived", "not subscribed",
                   "not confirmed", "not sending"}



@dataclass(frozen=True)
class Skipped:
    """One row that was not imported: its line number in the file and why."""

    line: int
    value: str
    reason: str


@dataclass
class ImportReport:
    """What an import did: how many were added and every row skipped, with the reason."""

    source: str
    rows: int = 0
    imported: int = 0
    skipped: list[Skipped] = field(default_factory=list)

    def describe(self, limit: int = 50) -> str:
        """A human summary: counts, then the first ``limit`` skipped rows."""
        lines = [f"{self.source}: {plural(self.rows, 'row')} read, {self.imported} imported, "
                 f"{len(self.skipped)} skipped"]
        for item in self.skipped[:limit]:
            lines.append(f"  line {item.line}: {item.value!r}: {item.reason}")
        if len(self.skipped) > limit:
            lines.append(f"  ... and {len(self.skipped) - limit} more")
        return "\n".join(lines)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form for the admin endpoint."""
        return {
            "source": self.source, "rows": self.rows, "imported": self.imported,
            "skipped": [{"line": s.line, "value": s.value, "reason": s.reason}
                        for s in self.skipped],
        }


@dataclass(frozen=True)
class Candidate:
    """A row the import would add: its line and the reader's fields."""

    line: int
    address: str
    email_hash: str
    name: str | None
    consent_at: datetime
    consent_ip: str | None
    confirmed_at: datetime


def _candidate(line: int, address: str, digest: str, row: list[str], cols: Columns,
               now: datetime) -> Candidate:
    confirmed = read_date(cell_at(row, cols.confirm), now)
    consent = read_date(cell_at(row, cols.optin), now) or confirmed or now
    ip = read_ip(cell_at(row, cols.optin_ip)) or read_ip(cell_at(row, cols.confirm_ip))
    return Candidate(line, address, digest, row_name(row, cols), consent, ip, confirmed or now)


def _rows(stream: IO[str]) -> Iterator[tuple[int, list[str]]]:
    """(line number, cells) for each non-blank record; line numbers are the file's own."""
    reader = csv.reader(stream)
    for row in reader:
        if any(cell.strip() for cell in row):
            yield reader.line_num, row


def _known_hashes(app: App, candidates: dict[str, Candidate]) -> dict[str, SubscriberStatus]:
    """The status of each candidate (by keyed hash) already on file, under either hash form."""
    forms = {}  # stored form -> keyed hash
    for keyed, item in candidates.items():
        forms[keyed] = keyed
        forms[legacy_email_hash(item.address)] = keyed
    stored = list(forms)
    found: dict[str, SubscriberStatus] = {}
    with app.sessions() as session:
        for start in range(0, len(stored), 500):
            part = stored[start:start + 500]
            query = select(Subscriber.email_hash, Subscriber.status).where(
                Subscriber.email_hash.in_(part))
            found.update({forms[h]: s for h, s in session.execute(query)})
    return found


def _open(path_or_stream: str | Path | IO[str]) -> tuple[str, IO[str], bool]:
    if isinstance(path_or_stream, str | Path):
        path = Path(path_or_stream)
        return path.name, path.open(encoding="utf-8-sig", newline=""), True
    return getattr(path_or_stream, "name", None) or "upload.csv", path_or_stream, False


@dataclass
class ImportPlan:
    """What importing a file would do, decided without writing: the readers it would add (in
    file order) and every row it would skip, with the reason. ``import_csv`` writes exactly
    ``to_import`` of a plan; a preview shows the same plan."""

    source: str
    rows: int = 0
    to_import: list[Candidate] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)

    def fingerprint(self) -> str:
        """The decision in a few characters: who would be added and which lines skipped, why."""
        mac = hashlib.sha256()
        for item in self.to_import:
            mac.update(f"+{item.line}:{item.address}\n".encode())
        for skip in self.skipped:
            mac.update(f"-{skip.line}:{skip.reason}\n".encode())
        return mac.hexdigest()[:32]

    def report(self, imported: int) -> ImportReport:
        """The import's report once ``imported`` readers were written."""
        return ImportReport(self.source, self.rows, imported, list(self.skipped))


def plan_import(app: App, path_or_stream: str | Path | IO[str], *, name: str | None = None,
                now: datetime | None = None) -> ImportPlan:
    """Read a CSV and decide, row by row, what an import would add and skip; writes nothing.

    Raises SubscriberError (nothing decided) for a file that is not a readable CSV or whose
    header names no email column.
    """
    now = _aware(now or utcnow())
    label, stream, owned = _open(path_or_stream)
    label = Path(name or label).name
    plan = ImportPlan(source=label)
    candidates: dict[str, Candidate] = {}  # by email hash
    try:
        rows = _rows(stream)
        cols: Columns | None = None
        for line, row in rows:
            if cols is None:
                header = find_columns(row, label)
                cols = header or Columns(0)
                if header is not None:
                    continue
            plan.rows += 1
            raw = cell_at(row, cols.email)
            shown = _clip(raw)
            if not raw:
                plan.skipped.append(Skipped(line, shown, "no email address in this row"))
                continue
            state = cell_at(row, cols.status).lower()
            if state in _NOT_SUBSCRIBED:
                plan.skipped.append(Skipped(line, shown, f"marked {_clip(state)!r} in the file"))
                continue
            try:
                address = normalise(raw, app.settings.blocked_domains)
            except InvalidEmailError as exc:
                plan.skipped.append(Skipped(line, shown, _clip(str(exc))))
                continue
            digest = email_hash(address, app.address_key)
            if digest in candidates:
                first = candidates[digest].line
                plan.skipped.append(Skipped(line, shown, f"duplicate of line {first}"))
                continue
            candidates[digest] = _candidate(line, address, digest, row, cols, now)
    except (csv.Error, UnicodeDecodeError) as exc:
        raise SubscriberError(f"{label}: not a readable CSV file: {exc}") from exc
    finally:
        if owned:
            stream.close()
    known = _known_hashes(app, candidates)
    for digest, item in candidates.items():
        if digest in known:
            plan.skipped.append(Skipped(item.line, item.address,
                                        f"already known ({known[digest].value})"))
        else:
            plan.to_import.append(item)
    plan.skipped.sort(key=lambda s: s.line)
    return plan


def import_csv(app: App, path_or_stream: str | Path | IO[str], *, name: str | None = None,
               now: datetime | None = None, expect: str | None = None) -> ImportReport:
    """Import readers from CSV as active; never duplicates; reports skipped rows and why.

    ``expect`` is the fingerprint of a plan the operator saw (``plan_import``): if the file
    would now be imported differently (a reader signed up meanwhile), nothing is written and
    SubscriberError says so.
    """
    now = _aware(now or utcnow())
    plan = plan_import(app, path_or_stream, name=name, now=now)
    if expect is not None and plan.fingerprint() != expect:
        raise SubscriberError(
            f"{plan.source}: the list changed since the preview (now {len(plan.to_import)} "
            f"to import, {len(plan.skipped)} to skip); nothing was imported: look at the "
            "preview again")
    label = plan.source
    fresh = [{
        "email": item.address, "email_hash": item.email_hash,
        "name": item.name, "status": lifecycle.IMPORTED, "created_at": now,
        "confirmed_at": item.confirmed_at, "consent_at": item.consent_at,
        "consent_ip": item.consent_ip, "consent_source": f"import:{label}"[:100],
    } for item in plan.to_import]
    with transaction(app.sessions) as session:
        for start in range(0, len(fresh), _CHUNK):
            session.execute(insert(Subscriber), fresh[start:start + _CHUNK])
    return plan.report(len(fresh))


def _aware(now: datetime) -> datetime:
    return now.replace(tzinfo=UTC) if now.tzinfo is None else now


_SHOWN = 200  # characters of a skipped cell kept in a report (a hostile cell can be huge)


def _clip(text: str) -> str:
    return text if len(text) <= _SHOWN else text[:_SHOWN] + "\u2026"


def read_text(data: bytes) -> io.StringIO:
    """An uploaded CSV body as text (UTF-8, with or without a byte-order mark)."""
    try:
        return io.StringIO(data.decode("utf-8-sig"), newline="")
    except UnicodeDecodeError as exc:
        raise SubscriberError("the CSV file must be UTF-8 encoded") from exc
