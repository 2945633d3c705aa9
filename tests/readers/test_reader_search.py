"""Reader search for the console: address prefix in any case, filters, keyset pages (both DBs)."""

from __future__ import annotations

import pytest
from sqlalchemy import update

from digest.errors import SubscriberError
from digest.readers import roster
from digest.readers.search import like_pattern, search_readers
from digest.store.models import Cadence, Subscriber, SubscriberStatus


def _emails(page):
    return [r.email for r in page.readers]


def _set(app, email, **values):
    with app.sessions() as s, s.begin():
        s.execute(update(Subscriber).where(Subscriber.email == email).values(**values))


def test_prefix_ignores_case_and_pages_by_address(app):
    for address in ["ann@example.org", "Anna@example.org", "ANNE@example.org", "anne.b@example.org",
                    "bob@example.org", "Annabel@Example.ORG", "an@example.org"]:
        roster.add(app, address)
    page = search_readers(app, prefix="ANN", limit=2)
    assert _emails(page) == ["ann@example.org", "Anna@example.org"]  # lower-cased order
    seen = _emails(page)
    while page.next_after is not None:
        page = search_readers(app, prefix="ann", after=page.next_after, limit=2)
        seen += _emails(page)
    assert seen == ["ann@example.org", "Anna@example.org", "Annabel@example.org",
                    "anne.b@example.org", "ANNE@example.org"]
    assert _emails(search_readers(app, prefix="annab")) == ["Annabel@example.org"]
    assert _emails(search_readers(app, prefix="  Annabel@EXAMPLE.org ")) == [
        "Annabel@example.org"]
    assert search_readers(app, prefix="zed").readers == []


def test_prefix_wildcards_are_literal(app):
    for address in ["a_b@example.org", "axb@example.org", "a%b@example.org", "a\\b@example.org",
                    "aab@example.org"]:
        roster.add(app, address if "\\" not in address else "ab@example.org")
    assert _emails(search_readers(app, prefix="a_")) == ["a_b@example.org"]
    assert _emails(search_readers(app, prefix="a%")) == ["a%b@example.org"]
    assert search_readers(app, prefix="a\\").readers == []
    assert like_pattern("a\\_%") == "a\\\\\\_\\%%"


def test_international_addresses(app):
    roster.add(app, "Jörg@bücher.de")
    roster.add(app, "jo+news@example.org")
    assert _emails(search_readers(app, prefix="jörg@BÜCHER.de")) == ["Jörg@xn--bcher-kva.de"]
    assert _emails(search_readers(app, prefix="jö")) == ["Jörg@xn--bcher-kva.de"]
    assert _emails(search_readers(app, prefix="jo+")) == ["jo+news@example.org"]


def test_filters_and_id_pages(app):
    for n in range(7):
        roster.add(app, f"r{n}@example.org")
    _set(app, "r1@example.org", cadence=Cadence.DAILY)
    _set(app, "r3@example.org", cadence=Cadence.DAILY)
    _set(app, "r4@example.org", cadence=Cadence.DAILY, status=SubscriberStatus.BOUNCED)
    roster.remove(app, "r5@example.org")
    everyone = search_readers(app, limit=3)
    assert _emails(everyone) == ["r0@example.org", "r1@example.org", "r2@example.org"]
    rest = search_readers(app, limit=3, after=everyone.next_after)
    assert _emails(rest) == ["r3@example.org", "r4@example.org", "r5@example.org"]
    last = search_readers(app, limit=3, after=rest.next_after)
    assert (_emails(last), last.next_after) == (["r6@example.org"], None)
    daily = search_readers(app, cadence="daily", status="active")
    assert _emails(daily) == ["r1@example.org", "r3@example.org"]
    assert _emails(search_readers(app, status=SubscriberStatus.UNSUBSCRIBED)) == [
        "r5@example.org"]
    assert _emails(search_readers(app, prefix="R", cadence="daily")) == [
        "r1@example.org", "r3@example.org", "r4@example.org"]
    assert [r.status for r in search_readers(app, prefix="r4").readers] == ["bounced"]


def test_exact_page_has_no_next(app):
    for n in range(4):
        roster.add(app, f"p{n}@example.org")
    assert search_readers(app, limit=4).next_after is None
    assert search_readers(app, prefix="p", limit=4).next_after is None
    assert search_readers(app, prefix="p", limit=3).next_after == "p2@example.org"


@pytest.mark.parametrize("bad", [{"status": "gone"}, {"cadence": "hourly"},
                                 {"after": "p@example.org"}, {"after": "9" * 40}])
def test_bad_filters_are_named(app, bad):
    with pytest.raises(SubscriberError):
        search_readers(app, **bad)


@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
def test_postgres_reads_a_prefix_through_the_lower_cased_index(app):
    """With 200,000 readers the planner's own choice (no enable_seqscan tricks): a prefix page
    is a range of ix_subscribers_email_lower, a reader's events ix_webhook_events_reader."""
    from sqlalchemy import event, text

    from digest.readers.profile import reader_profile_by_id

    with app.engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO subscribers (email, email_hash, status, cadence, paused, created_at) "
            "SELECT (CASE WHEN g % 3 = 0 THEN initcap(md5(g::text)) ELSE md5(g::text) END) "
            "|| '@example.org', 'h' || g, CASE WHEN g % 5 = 0 THEN 'unsubscribed' "
            "ELSE 'active' END, 'weekly', false, now() FROM generate_series(1, 200000) g"))
        conn.execute(text(
            "INSERT INTO webhook_events (sg_event_id, event, email_hash, received_at) "
            "SELECT 'e' || g, 'open', 'h' || (g % 200000), now() "
            "FROM generate_series(1, 200000) g"))
        conn.execute(text("ANALYZE subscribers"))
        conn.execute(text("ANALYZE webhook_events"))
    statements: list[tuple[str, object]] = []

    def keep(conn, cursor, statement, parameters, context, executemany):
        statements.append((statement, parameters))

    def plan_of(call):
        statements.clear()
        event.listen(app.engine, "before_cursor_execute", keep)
        try:
            result = call()
        finally:
            event.remove(app.engine, "before_cursor_execute", keep)
        with app.engine.connect() as conn:
            lines = []
            for statement, parameters in statements:
                lines += [row[0] for row in conn.exec_driver_sql(
                    "EXPLAIN " + statement, parameters)]
        return result, "\n".join(lines)

    page, plan = plan_of(lambda: search_readers(app, prefix="ABC", status="active"))
    assert page.readers and all(r.email.lower().startswith("abc") for r in page.readers)
    assert "ix_subscribers_email_lower" in plan and "Seq Scan on subscribers" not in plan, plan
    _, plan = plan_of(lambda: search_readers(app, prefix="ab", after=page.readers[0].email))
    assert "ix_subscribers_email_lower" in plan and "Seq Scan on subscribers" not in plan, plan
    profile, plan = plan_of(lambda: reader_profile_by_id(app, 4242))
    assert profile is not None and "ix_webhook_events_reader" in plan, plan
    assert "Seq Scan on webhook_events" not in plan, plan


def test_a_whole_address_in_any_case_is_found(app):
    """Case past the first letters counts as little as in them: an address typed in capitals
    (or a stored one with capitals further on) is found."""
    roster.add(app, "anne.b@example.org")
    roster.add(app, "Grace.Mensah4@example.org")
    assert _emails(search_readers(app, prefix="ANNE.B@EXAMPLE.ORG")) == ["anne.b@example.org"]
    assert _emails(search_readers(app, prefix="GRACE.MENSAH4")) == ["Grace.Mensah4@example.org"]
    assert _emails(search_readers(app, prefix="grace.mensah")) == ["Grace.Mensah4@example.org"]
