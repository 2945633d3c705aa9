"""`digest subscribers add|show`, as an operator types them."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select, update
from typer.testing import CliRunner

from digest.bootstrap import build
from digest.cli import cli
from digest.config import SAMPLE_FEED
from digest.delivery import record
from digest.store.models import DeliveryStatus, Edition, Subscriber
from digest.store.sessions import transaction

runner = CliRunner()


def _listed() -> str:
    return runner.invoke(cli, ["subscribers", "list"]).output


def test_add_with_bad_addresses_adds_nothing_and_names_each(env: dict[str, str]) -> None:
    result = runner.invoke(cli, ["subscribers", "add", "good@example.com", "not-an-address",
                                 "also@bad@example.com", "fine@example.org"])
    assert result.exit_code == 1
    assert "not added: not-an-address:" in result.output
    assert "not added: also@bad@example.com:" in result.output
    assert "nothing added: 2 bad addresses" in result.output
    assert "--skip-invalid" in result.output
    listed = _listed()
    assert "good@example.com" not in listed and "fine@example.org" not in listed
    assert "0 readers" in listed


def test_skip_invalid_adds_the_good_ones_and_still_names_the_bad(env: dict[str, str]) -> None:
    result = runner.invoke(cli, ["subscribers", "add", "--skip-invalid", "good@example.com",
                                 "not-an-address"])
    assert result.exit_code == 0, result.output
    assert "not added: not-an-address:" in result.output
    assert "added: good@example.com" in result.output
    assert "1 reader added, 1 skipped" in result.output
    assert "1 reader\n" in _listed()


def test_adding_an_existing_reader_says_so(env: dict[str, str]) -> None:
    assert runner.invoke(cli, ["subscribers", "add", "a@example.com"]).exit_code == 0
    again = runner.invoke(cli, ["subscribers", "add", "A@Example.com", "b@example.com"])
    assert again.exit_code == 0, again.output
    assert "already a reader (active): a@example.com" in again.output
    assert "added: b@example.com" in again.output
    assert "1 reader added, 1 already on the list" in again.output
    assert "2 readers" in _listed()


def test_a_reader_who_left_is_bad_and_stops_the_addition(env: dict[str, str]) -> None:
    runner.invoke(cli, ["subscribers", "add", "gone@example.com"])
    runner.invoke(cli, ["subscribers", "remove", "gone@example.com"])
    result = runner.invoke(cli, ["subscribers", "add", "new@example.com", "gone@example.com"])
    assert result.exit_code == 1
    assert "not added: gone@example.com: unsubscribed; only the reader" in result.output
    assert "new@example.com" not in _listed()


def test_show_prints_the_consent_record_and_last_editions(env: dict[str, str]) -> None:
    assert runner.invoke(cli, ["poll"]).exit_code == 0
    assert runner.invoke(cli, ["subscribers", "add", "reader@example.com",
                               "other@example.org"]).exit_code == 0
    sent = runner.invoke(cli, ["send"])
    assert sent.exit_code == 0, sent.output
    app = build()
    consented = datetime(2026, 3, 4, 9, 30, tzinfo=UTC)
    with transaction(app.sessions) as s:  # as a sign-up through the form records it
        s.execute(update(Subscriber).where(Subscriber.email == "reader@example.com").values(
            consent_at=consented, consent_ip="203.0.113.7", consent_source="signup form"))
        reader = s.scalar(select(Subscriber.id).where(Subscriber.email == "reader@example.com"))
        edition = s.scalars(select(Edition)).one()
        record.apply_event(s, edition.id, int(reader or 0), DeliveryStatus.DELIVERED,
                           datetime.now(UTC))
        key, subject = edition.key, edition.subject
    app.engine.dispose()

    stats = runner.invoke(cli, ["stats"])
    assert stats.exit_code == 0, stats.output
    assert "2 readers: 2 active" in stats.output
    assert (f"#{edition.id} {key} sent: 1 batch (1 sent, 0 failed, 0 pending)\n"
            "    readers: 2 planned, 2 handed over, 1 delivered, 0 bounced") in stats.output

    shown = runner.invoke(cli, ["subscribers", "show", "Reader@Example.com"])
    assert shown.exit_code == 0, shown.output
    assert "status: active" in shown.output
    assert "consent: 2026-03-04 09:30 UTC from 203.0.113.7 via signup form" in shown.output
    assert "preferences: weekly" in shown.output
    assert "when: Mondays at 08:00 (Europe/Istanbul); topics: everything" in shown.output
    assert f"#{edition.id} {key} \u201c{subject}\u201d: delivered" in shown.output

    unknown = runner.invoke(cli, ["subscribers", "show", "nobody@example.com"])
    assert unknown.exit_code == 1
    assert "nobody@example.com is not on the list" in unknown.output


def test_feeds_list_and_remove_what_a_one_off_poll_left(env: dict[str, str],
                                                        tmp_path: Path) -> None:
    one_off = tmp_path / "other.xml"
    one_off.write_bytes(SAMPLE_FEED.read_bytes())
    assert runner.invoke(cli, ["poll", "--feed", str(one_off)]).exit_code == 0
    listed = runner.invoke(cli, ["feeds", "list"])
    assert listed.exit_code == 0, listed.output
    assert "no (one-off)" in listed.output and "1 feed\n" in listed.output
    removed = runner.invoke(cli, ["feeds", "remove", str(one_off)])
    assert removed.exit_code == 0, removed.output
    assert removed.output.startswith(f"removed: {one_off}")
    assert "posts)" in removed.output
    assert "0 feeds" in runner.invoke(cli, ["feeds", "list"]).output
    again = runner.invoke(cli, ["feeds", "remove", str(one_off)])
    assert again.exit_code == 1 and "no such feed is stored" in again.output


def test_feeds_add_stores_a_feed_by_polling_it_once(env: dict[str, str], tmp_path: Path) -> None:
    extra = tmp_path / "extra.xml"
    extra.write_bytes(SAMPLE_FEED.read_bytes())
    added = runner.invoke(cli, ["feeds", "add", str(extra)])
    assert added.exit_code == 0, added.output
    assert "new post" in added.output
    listed = runner.invoke(cli, ["feeds", "list"]).output
    assert "no (one-off)" in listed and "1 feed\n" in listed
    missing = runner.invoke(cli, ["feeds", "add", str(tmp_path / "absent.xml")])
    assert missing.exit_code == 1
    assert "1 feed\n" in runner.invoke(cli, ["feeds", "list"]).output  # nothing left behind


def test_remove_says_what_it_did_for_each_address(env: dict[str, str]) -> None:
    runner.invoke(cli, ["subscribers", "add", "a@example.com"])
    first = runner.invoke(cli, ["subscribers", "remove", "a@example.com"])
    assert first.exit_code == 0 and first.output == "removed: a@example.com\n"
    again = runner.invoke(cli, ["subscribers", "remove", "a@example.com", "nobody@example.com"])
    assert again.exit_code == 0, again.output
    assert again.output.splitlines() == [
        "already unsubscribed, nothing changed: a@example.com",
        "not on the list: nobody@example.com"]


def test_erase_asks_first_then_erases_for_good(env: dict[str, str]) -> None:
    runner.invoke(cli, ["subscribers", "add", "e@example.com"])
    kept = runner.invoke(cli, ["subscribers", "erase", "e@example.com"], input="n\n")
    assert kept.exit_code == 1 and "e@example.com" in _listed()
    done = runner.invoke(cli, ["subscribers", "erase", "e@example.com", "nobody@example.com",
                               "--yes"])
    assert done.exit_code == 0, done.output
    assert done.output.splitlines() == ["erased: e@example.com",
                                        "not on the list: nobody@example.com"]
    assert "e@example.com" not in _listed() and "(deleted)" in _listed()
    again = runner.invoke(cli, ["subscribers", "erase", "e@example.com", "--yes"])
    assert again.output == "already erased: e@example.com\n"
