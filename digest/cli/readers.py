"""`digest subscribers ...`: the operator's list of readers."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from digest.cli.common import err, errors_to_exit, open_app, out
from digest.cli.profile import describe_profile
from digest.store.models import SubscriberStatus
from digest.wording import plural

subscribers_cli = typer.Typer(
    help="Manage readers: add, show, list, remove, erase, import, export.", no_args_is_help=True)


@subscribers_cli.command("add")
@errors_to_exit
def subscribers_add(
    emails: Annotated[list[str], typer.Argument(help="One or more addresses.")],
    name: Annotated[str | None, typer.Option(help="Display name (one address only).")] = None,
    skip_invalid: Annotated[bool, typer.Option(
        "--skip-invalid", help="Add the good addresses even if some are bad (each bad one is "
        "named).")] = False,
) -> None:
    """Add readers, active at once; every address is checked first, and one bad address
    means none is added (unless --skip-invalid)."""
    from digest.readers.additions import add_readers

    if name is not None and len(emails) > 1:
        raise typer.BadParameter("--name goes with one address only; add the others "
                                 "separately", param_hint="--name")
    report = add_readers(open_app(), emails, name=name, skip_invalid=skip_invalid)
    out.print(report.describe(), highlight=False, markup=False)
    if report.refused:
        raise typer.Exit(1)


@subscribers_cli.command("show")
@errors_to_exit
def subscribers_show(
    email: Annotated[str, typer.Argument(help="The reader's address.")],
    editions: Annotated[int, typer.Option(min=0, max=1000,
                                          help="How many of their last editions to show.")] = 10,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Show one reader: state, consent record, preferences, last editions and their outcome."""
    from digest.readers.profile import reader_profile

    profile = reader_profile(open_app(), email, editions=editions)
    if as_json:
        out.print_json(json.dumps(profile.as_dict(), default=str))
        return
    out.print(describe_profile(profile), highlight=False, markup=False)


@subscribers_cli.command("list")
@errors_to_exit
def subscribers_list(
    status: Annotated[SubscriberStatus | None, typer.Option(help="Only readers with this "
                                                            "status.")] = None,
) -> None:
    """List readers with their status, cadence and sign-up date."""
    from digest.readers.roster import list_subscribers

    table = Table("email", "status", "cadence", "since")
    count = 0
    for sub in list_subscribers(open_app(), status=status):
        table.add_row(Text(sub.email or "(deleted)"), str(sub.status), str(sub.cadence),
                      f"{sub.created_at:%Y-%m-%d}")
        count += 1
    out.print(table)
    out.print(plural(count, "reader"))


@subscribers_cli.command("remove")
@errors_to_exit
def subscribers_remove(
    emails: Annotated[list[str], typer.Argument(help="One or more addresses.")],
) -> None:
    """Unsubscribe readers at once (they would need to confirm again to come back)."""
    from digest.readers.roster import remove

    app = open_app()
    for email in emails:
        result = remove(app, email)
        if result.removed:
            said = "removed"
        elif result.status is None:
            said = "not on the list"
        else:
            said = f"already {result.status.value}, nothing changed"
        out.print(f"{said}: {email}", highlight=False, markup=False)


@subscribers_cli.command("erase")
@errors_to_exit
def subscribers_erase(
    emails: Annotated[list[str], typer.Argument(help="One or more addresses.")],
    yes: Annotated[bool, typer.Option("--yes", help="Erase without asking.")] = False,
) -> None:
    """Erase readers (GDPR): their address, name and IP are deleted and their links stop
    working; only a keyed hash of the address stays, so no import can add them again."""
    from digest.readers.roster import erase

    if not yes:
        typer.confirm(f"Erase {plural(len(emails), 'reader')} for good?", abort=True)
    app = open_app()
    for email in emails:
        result = erase(app, email)
        if result.removed:
            said = "erased"
        elif result.status is None:
            said = "not on the list"
        else:
            said = "already erased"
        out.print(f"{said}: {email}", highlight=False, markup=False)


@subscribers_cli.command("import")
@errors_to_exit
def subscribers_import(
    file: Annotated[Path, typer.Argument(help="CSV: a Jetpack/WordPress.com or Mailchimp "
                                         "export, or a plain email column.", exists=True,
                                         dir_okay=False)],
) -> None:
    """Import readers from CSV; never duplicates, reports what was skipped and why."""
    from digest.readers.csvio import import_csv

    report = import_csv(open_app(), file)
    out.print(report.describe(), highlight=False)


@subscribers_cli.command("export")
@errors_to_exit
def subscribers_export(
    file: Annotated[Path, typer.Argument(help="Where to write the CSV ('-' for stdout).")],
) -> None:
    """Export every reader with every field as CSV."""
    from digest.readers.csvexport import export_csv

    app = open_app()
    if str(file) == "-":
        count = export_csv(app, sys.stdout)
    else:
        try:
            with file.open("w", encoding="utf-8", newline="") as fh:
                count = export_csv(app, fh)
        except OSError as exc:
            err.print(f"[red]error:[/red] cannot write {file}: {exc.strerror}", highlight=False)
            raise typer.Exit(1) from exc
        out.print(f"{plural(count, 'reader')} written to {file}")
