"""`digest topics ...` over the bundled sample feed's categories."""

from __future__ import annotations

from typer.testing import CliRunner

from digest.cli.commands import cli

runner = CliRunner()


def _ids(output: str) -> dict[str, str]:
    """Category -> id, from `digest topics list`'s table."""
    found: dict[str, str] = {}
    for line in output.splitlines():
        cells = [c.strip() for c in line.replace("┃", "│").split("│") if c.strip()]
        if len(cells) >= 3 and cells[0].isdigit():
            found[cells[2]] = cells[0]
    return found


def test_topics_are_listed_renamed_merged_and_hidden(env: dict[str, str]) -> None:
    assert runner.invoke(cli, ["poll"]).exit_code == 0
    listed = runner.invoke(cli, ["topics", "list"])
    assert listed.exit_code == 0, listed.output
    ids = _ids(listed.output)
    assert {"nato", "russia", "ukraine", "uncategorized"} <= set(ids)
    assert "4 topics" in listed.output

    renamed = runner.invoke(cli, ["topics", "rename", ids["nato"], "  The   Alliance "])
    assert renamed.exit_code == 0 and "'The Alliance'" in renamed.output
    assert runner.invoke(cli, ["topics", "merge", ids["ukraine"], ids["russia"]]).exit_code == 0
    assert runner.invoke(cli, ["topics", "hide", ids["uncategorized"]]).exit_code == 0
    listed = runner.invoke(cli, ["topics", "list"]).output
    assert "The Alliance" in listed and "merged into" in listed and "hidden" in listed

    cycle = runner.invoke(cli, ["topics", "merge", ids["russia"], ids["ukraine"]])
    assert cycle.exit_code == 1 and "cycle" in cycle.output
    itself = runner.invoke(cli, ["topics", "merge", ids["nato"], ids["nato"]])
    assert itself.exit_code == 1 and "itself" in itself.output
    assert runner.invoke(cli, ["topics", "unmerge", ids["ukraine"]]).exit_code == 0
    assert runner.invoke(cli, ["topics", "unhide", ids["uncategorized"]]).exit_code == 0
    assert "merged into" not in runner.invoke(cli, ["topics", "list"]).output


def test_an_unknown_topic_or_empty_name_is_a_clear_error(env: dict[str, str]) -> None:
    assert runner.invoke(cli, ["poll"]).exit_code == 0
    for args in (["hide", "999"], ["unhide", "999"], ["rename", "999", "x"],
                 ["merge", "999", "1"], ["merge", "1", "999"], ["unmerge", "999"]):
        result = runner.invoke(cli, ["topics", *args])
        assert result.exit_code == 1 and "no topic 999" in result.output, args
    empty = runner.invoke(cli, ["topics", "rename", "1", "   "])
    assert empty.exit_code == 1 and "empty" in empty.output
    assert runner.invoke(cli, ["topics", "hide", "abc"]).exit_code == 2


def test_feed_text_in_topic_names_is_printed_as_text_not_markup(env: dict[str, str]) -> None:
    assert runner.invoke(cli, ["poll"]).exit_code == 0
    ids = _ids(runner.invoke(cli, ["topics", "list"]).output)
    for name, shown in (("[/x] closed", "[/x] closed"),
                        ("[link=https://x.test]a[/link]", "[link=")):
        renamed = runner.invoke(cli, ["topics", "rename", ids["nato"], name])
        assert renamed.exit_code == 0, renamed.output
        listed = runner.invoke(cli, ["topics", "list"])
        assert listed.exit_code == 0, listed.output
        assert shown in listed.output  # shown as typed, brackets and all
    hidden = runner.invoke(cli, ["topics", "merge", ids["nato"], ids["nato"]])
    assert hidden.exit_code == 1 and "Traceback" not in hidden.output
