"""The import's preview: the same decision as the import, nothing written (both databases)."""

from __future__ import annotations

import io

import pytest
from sqlalchemy import func, select

from digest.errors import SubscriberError
from digest.readers import optin, roster
from digest.readers.csvio import import_csv, plan_import, read_text
from digest.store.models import Subscriber

ODD = (
    "Email,Name\n"
    "ann@example.org,Ann\n"
    "Jörg@Bücher.de,Jörg\n"                 # IDN domain: stored in its ASCII form
    "jo+news@example.org,Plus\n"             # plus-address
    '"""quoted.local""@example.org",Quote\n'  # a quoted local part: refused, with why
    "ANN@example.org,Again\n"                # the same reader as line 2
    "old@example.org,Old\n"                  # already a reader
    "gone@example.org,Gone\n"                # erased: only the hash is left
    "left@example.org,Left\n"                # unsubscribed
    "not-an-address,X\n"
    "o'brien@example.org,Apostrophe\n"
    "=HYPERLINK(\"https://evil.example\")@x.org,Evil\n"
    ",Nobody\n"
)


def _count(app):
    with app.sessions() as s:
        return s.scalar(select(func.count()).select_from(Subscriber))


def _known(app):
    roster.add(app, "old@example.org")
    roster.add(app, "gone@example.org")
    roster.erase(app, "gone@example.org")
    roster.add(app, "left@example.org")
    roster.remove(app, "left@example.org")


def test_preview_says_what_the_import_does_and_writes_nothing(app, transport):
    _known(app)
    before = _count(app)
    plan = plan_import(app, io.StringIO(ODD), name="list.csv")
    assert _count(app) == before
    assert [(c.line, c.address) for c in plan.to_import] == [
        (2, "ann@example.org"), (3, "Jörg@xn--bcher-kva.de"), (4, "jo+news@example.org"),
        (11, "o'brien@example.org")]
    reasons = {s.line: s.reason for s in plan.skipped}
    assert "Quoting the part before the @-sign is not allowed" in reasons[5]
    assert reasons[6] == "duplicate of line 2"
    assert reasons[7] == "already known (active)"
    assert reasons[8] == "already known (deleted)"
    assert reasons[9] == "already known (unsubscribed)"
    assert reasons[10].startswith("not a valid email address")
    assert reasons[12].startswith("not a valid email address")  # the formula
    assert reasons[13] == "no email address in this row"
    assert plan.rows == 12 and len(plan.skipped) == 8

    report = import_csv(app, io.StringIO(ODD), name="list.csv", expect=plan.fingerprint())
    assert report.imported == 4 == len(plan.to_import)
    assert [(s.line, s.reason) for s in report.skipped] == [
        (s.line, s.reason) for s in plan.skipped]
    with app.sessions() as s:
        added = set(s.scalars(select(Subscriber.email).where(Subscriber.id > before)))
    assert added == {c.address for c in plan.to_import}
    assert len(transport.sent) == 0


def test_confirm_refuses_when_the_list_changed_since_the_preview(app):
    plan = plan_import(app, io.StringIO(ODD), name="list.csv")
    optin.subscribe(app, "jo+news@example.org", ip=None, source="web")  # signs up meanwhile
    with pytest.raises(SubscriberError, match="changed since the preview"):
        import_csv(app, io.StringIO(ODD), name="list.csv", expect=plan.fingerprint())
    assert _count(app) == 1


@pytest.mark.parametrize("body, words", [
    (b"email\n\xff\xfeann@example.org\n", "must be UTF-8"),
    (b"email,name\nann@example.org," + b"x" * 200_000 + b"\n", "not a readable CSV"),
    (b"email,name\n\"ann@example.org,unterminated\n" + b"y" * 200_000, "not a readable CSV"),
    (b"first,second\nann@example.org,Ann\n", "no email column"),
])
def test_hostile_files_are_refused_before_anything_is_written(app, body, words):
    with pytest.raises(SubscriberError, match=words):
        plan_import(app, read_text(body), name="bad.csv")
    with pytest.raises(SubscriberError, match=words):
        import_csv(app, read_text(body), name="bad.csv")
    assert _count(app) == 0


def test_a_huge_cell_is_skipped_and_shown_clipped(app):
    plan = plan_import(app, io.StringIO("email\n" + "x" * 100_000 + "@example.org\n"), name="a")
    [skipped] = plan.skipped
    assert len(skipped.value) == 201 and skipped.value.endswith("\u2026")
    assert "at most 320 characters" in skipped.reason


def test_an_upload_is_held_by_token_then_dropped(redis_url):
    import uuid

    from digest.readers.uploads import HeldUploads

    held = HeldUploads(redis_url, prefix=f"test:{uuid.uuid4().hex}:", seconds=60)
    try:
        kept = held.hold("list.csv", b"email\nann@example.org\n")
        assert len(kept.token) == 32
        assert held.get(kept.token) == kept
        assert 0 < held._redis.ttl(held._prefix + kept.token) <= 60  # it expires by itself
        for forged in ("../../etc/passwd", "x" * 32 + "*", "", kept.token[:-1]):
            assert held.get(forged) is None
        held.drop(kept.token)
        assert held.get(kept.token) is None
    finally:
        held.close()
