"""The `digest` command line, as an operator uses it."""

from __future__ import annotations

import email
import html as html_lib
from email import policy
from pathlib import Path

import pytest
from typer.main import get_command
from typer.testing import CliRunner

from digest.cli import cli
from digest.demo import run_demo

runner = CliRunner()

LEAD_TITLE = "Russia-West Negotiations Start"
LEAD_LINK = "https://diplomaticopinion.com/2022/01/10/russia-west-negotiations-start/"


def _all_commands() -> list[list[str]]:
    root = get_command(cli)
    paths: list[list[str]] = [[]]
    for name, command in root.commands.items():  # type: ignore[attr-defined]
        paths.append([name])
        for sub in getattr(command, "commands", {}):
            paths.append([name, sub])
    return paths


def test_every_command_explains_itself() -> None:
    paths = _all_commands()
    names = {" ".join(p) for p in paths}
    assert {"init", "poll", "preview", "send", "resend", "serve", "stats", "demo",
            "subscribers add", "subscribers list", "subscribers remove",
            "subscribers import", "subscribers export"} <= names
    for path in paths:
        result = runner.invoke(cli, [*path, "--help"])
        assert result.exit_code == 0, (path, result.output)
        assert "Usage:" in result.output
        body = result.output.split("Usage:", 1)[1]
        assert len(body.strip().splitlines()) >= 3, (path, result.output)
    send_help = runner.invoke(cli, ["send", "--help"]).output
    for option in ("--dry-run", "--to", "--queue"):
        assert option in send_help
    assert "--force" not in send_help
    assert "EDITION" in runner.invoke(cli, ["resend", "--help"]).output


def test_bad_setting_stops_with_its_name(env: dict[str, str], monkeypatch) -> None:
    monkeypatch.setenv("DIGEST_MAIL_BACKEND", "carrier-pigeon")
    result = runner.invoke(cli, ["init"])
    assert result.exit_code == 1
    assert "DIGEST_MAIL_BACKEND" in result.output


def test_poll_twice_stores_each_post_once(env: dict[str, str]) -> None:
    first = runner.invoke(cli, ["poll"])
    assert first.exit_code == 0, first.output
    assert LEAD_TITLE in first.output
    second = runner.invoke(cli, ["poll"])
    assert second.exit_code == 0, second.output
    assert LEAD_TITLE not in second.output

    from sqlalchemy import create_engine, text

    engine = create_engine(env["DIGEST_DATABASE_URL"])
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT identity, COUNT(*) FROM posts GROUP BY identity")).all()
    engine.dispose()
    assert len(rows) >= 3
    assert all(count == 1 for _, count in rows)


def test_send_twice_sends_only_what_is_new(env: dict[str, str], tmp_path: Path) -> None:
    assert runner.invoke(cli, ["poll"]).exit_code == 0
    added = runner.invoke(cli, ["subscribers", "add", "reader@example.com", "other@example.org"])
    assert added.exit_code == 0, added.output
    listed = runner.invoke(cli, ["subscribers", "list"])
    assert "reader@example.com" in listed.output and "active" in listed.output

    first = runner.invoke(cli, ["send"])
    assert first.exit_code == 0, first.output
    assert LEAD_TITLE in first.output
    outbox = tmp_path / "outbox"
    assert len(list(outbox.glob("*.eml"))) == 2

    second = runner.invoke(cli, ["send"])
    assert second.exit_code == 0, second.output
    assert "nothing new to send" in second.output
    assert len(list(outbox.glob("*.eml"))) == 2

    forced = runner.invoke(cli, ["send", "--force"])
    assert forced.exit_code == 2
    assert "--force is gone" in forced.output and "digest resend" in forced.output
    assert len(list(outbox.glob("*.eml"))) == 2


def test_resend_reaches_only_readers_who_did_not_get_it(env: dict[str, str],
                                                        tmp_path: Path) -> None:
    runner.invoke(cli, ["poll"])
    runner.invoke(cli, ["subscribers", "add", "reader@example.com"])
    assert runner.invoke(cli, ["send"]).exit_code == 0
    runner.invoke(cli, ["subscribers", "add", "late@example.org"])
    outbox = tmp_path / "outbox"
    got = runner.invoke(cli, ["resend", "1", "--to", "reader@example.com"])
    assert got.exit_code == 0, got.output
    assert "reader@example.com already received edition 1" in got.output
    resent = runner.invoke(cli, ["resend", "1"])
    assert resent.exit_code == 0, resent.output
    assert "1 reader in 1 batch" in resent.output
    files = sorted(outbox.glob("*.eml"), key=lambda f: f.stat().st_mtime)
    assert len(files) == 2 and "late@example.org" in files[-1].read_text()
    again = runner.invoke(cli, ["resend", "1"])
    assert again.exit_code == 0 and "already received edition 1" in again.output
    assert len(list(outbox.glob("*.eml"))) == 2
    missing = runner.invoke(cli, ["resend", "7"])
    assert missing.exit_code == 1 and "there is no edition 7" in missing.output


def test_dry_run_prints_who_would_get_which_posts(env: dict[str, str], tmp_path: Path) -> None:
    runner.invoke(cli, ["poll"])
    runner.invoke(cli, ["subscribers", "add", "reader@example.com", "other@example.org"])
    dry = runner.invoke(cli, ["send", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    head, *titles = dry.output.strip().splitlines()
    assert head.startswith("dry-run (weekly): would send ") and "to 2 readers in 1 batch" in head
    assert f"  - {LEAD_TITLE}" in titles
    real = runner.invoke(cli, ["send"])
    assert real.exit_code == 0, real.output
    assert real.output.strip().splitlines()[-len(titles):] == titles
    assert "to 2 readers in 1 batch" in real.output
    assert len(list((tmp_path / "outbox").glob("*.eml"))) == 2


def test_dry_run_and_test_copy_do_not_claim_the_period(env: dict[str, str],
                                                       tmp_path: Path) -> None:
    runner.invoke(cli, ["poll"])
    runner.invoke(cli, ["subscribers", "add", "reader@example.com"])
    dry = runner.invoke(cli, ["send", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert not list((tmp_path / "outbox").glob("*.eml"))
    copy = runner.invoke(cli, ["send", "--to", "editor@example.com"])
    assert copy.exit_code == 0, copy.output
    files = list((tmp_path / "outbox").glob("*.eml"))
    assert len(files) == 1
    assert "editor@example.com" in files[0].read_text()
    real = runner.invoke(cli, ["send"])
    assert real.exit_code == 0, real.output
    assert len(list((tmp_path / "outbox").glob("*.eml"))) == 2


def test_preview_writes_html(env: dict[str, str], tmp_path: Path) -> None:
    runner.invoke(cli, ["poll"])
    out = tmp_path / "preview.html"
    result = runner.invoke(cli, ["preview", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert LEAD_TITLE in out.read_text()


def test_preview_says_why_nothing_goes_yet(env: dict[str, str],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DIGEST_MIN_POSTS", "500")
    runner.invoke(cli, ["poll"])
    result = runner.invoke(cli, ["preview"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("Nothing to send: waiting for 500 posts (")
    assert "goes anyway from" in result.output


def _parts(path: Path) -> tuple[str, str]:
    msg = email.message_from_bytes(path.read_bytes(), policy=policy.default)
    text = msg.get_body(preferencelist=("plain",))
    html = msg.get_body(preferencelist=("html",))
    assert text is not None and html is not None
    return text.get_content(), html.get_content()


def test_demo_leaves_readable_eml_files(tmp_path: Path) -> None:
    result = run_demo(tmp_path / "demo", echo=lambda _line: None)
    assert len(result.files) == 3
    for path in result.files:
        msg = email.message_from_bytes(path.read_bytes(), policy=policy.default)
        assert msg.get_content_type() == "multipart/alternative"
        assert [p.get_content_type() for p in msg.iter_parts()] == ["text/plain", "text/html"]
        text, html = _parts(path)
        for body in (text, html):
            assert LEAD_TITLE in body
            assert LEAD_LINK in body
            assert "/unsubscribe/" in body
        # The stored summary of the lead post appears in both parts.
        lead_summary = _stored_summary(tmp_path / "demo" / "digest.db")
        assert len(lead_summary.split()) >= 20
        assert lead_summary in " ".join(text.split())
        assert lead_summary in " ".join(html_lib.unescape(html).split())


def _stored_summary(db: Path) -> str:
    import sqlite3

    with sqlite3.connect(db) as conn:
        (summary,) = conn.execute("SELECT summary FROM posts WHERE title = ?",
                                  (LEAD_TITLE,)).fetchone()
    return " ".join(str(summary).split())


def test_subscribers_list_refuses_an_unknown_status_without_a_traceback(
        env: dict[str, str]) -> None:
    result = runner.invoke(cli, ["subscribers", "list", "--status", "bogus"])
    assert result.exit_code == 2
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "pending" in result.output and "active" in result.output  # says what is allowed
    ok = runner.invoke(cli, ["subscribers", "list", "--status", "active"])
    assert ok.exit_code == 0, ok.output


def test_one_name_is_not_given_to_several_addresses(env: dict[str, str]) -> None:
    result = runner.invoke(cli, ["subscribers", "add", "a@example.com", "b@example.com",
                                 "--name", "Carol"])
    assert result.exit_code == 2 and "--name" in result.output
    assert "a@example.com" not in runner.invoke(cli, ["subscribers", "list"]).output


def test_an_unreachable_database_is_one_clear_line(env: dict[str, str], monkeypatch) -> None:
    monkeypatch.setenv("DIGEST_DATABASE_URL", "postgresql+psycopg://u:s3cret@127.0.0.1:1/x")
    result = runner.invoke(cli, ["init"])
    assert result.exit_code == 1
    assert "DIGEST_DATABASE_URL" in result.output and "s3cret" not in result.output
    assert "Traceback" not in result.output


def test_init_says_whether_it_created_or_found_the_schema(env: dict[str, str]) -> None:
    first = runner.invoke(cli, ["init"])
    assert first.exit_code == 0 and "created" in first.output
    again = runner.invoke(cli, ["init"])
    assert again.exit_code == 0 and "already at the newest schema" in again.output


def test_init_stores_the_configured_feeds_once(env: dict[str, str]) -> None:
    """DIGEST_FEED_URL seeds the database on init; after that the database is the record."""
    first = runner.invoke(cli, ["init"])
    assert f"feed stored from DIGEST_FEED_URL: {env['DIGEST_FEED_URL']}" in first.output
    again = runner.invoke(cli, ["init"])
    assert "feed stored" not in again.output
    listed = runner.invoke(cli, ["feeds", "list"])
    assert listed.exit_code == 0 and listed.output.rstrip().endswith("1 feed")
    polled = runner.invoke(cli, ["poll"])
    assert polled.exit_code == 0
    listed = runner.invoke(cli, ["feeds", "list"])
    assert listed.output.rstrip().endswith("1 feed")  # the poll found the seeded row


def test_demo_never_deletes_what_it_did_not_make(tmp_path: Path) -> None:
    keep = tmp_path / "notes.txt"
    keep.write_text("mine")
    (tmp_path / "outbox").mkdir()
    (tmp_path / "outbox" / "draft.txt").write_text("also mine")
    first = run_demo(tmp_path, echo=lambda _line: None)
    again = run_demo(tmp_path, echo=lambda _line: None)
    assert keep.read_text() == "mine"
    assert (tmp_path / "outbox" / "draft.txt").read_text() == "also mine"
    assert len(first.files) == len(again.files) == 3  # the second run replaced the first's
