"""The `digest` command line: parse options, call one service function, print the result."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from digest.errors import DigestError
from digest.models import Cadence, SubscriberStatus
from digest.wiring import App, build, check_can_send

P = ParamSpec("P")
R = TypeVar("R")

cli = typer.Typer(
    help="digest: mail a blog's new posts to its readers as one digest on a schedule.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
)
subscribers_cli = typer.Typer(help="Manage readers: add, list, remove, import, export.",
                              no_args_is_help=True)
cli.add_typer(subscribers_cli, name="subscribers")

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


def _errors_to_exit(fn: Callable[P, R]) -> Callable[P, R]:
    """Turn a DigestError into a one-line message and exit status 1."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except DigestError as exc:
            err.print(f"[red]error:[/red] {exc}", highlight=False)
            raise typer.Exit(1) from exc

    return wrapper


def _app() -> App:
    from digest import schema

    app = build()
    schema.upgrade(app.engine)
    return app


def _warn_about_settings(app: App) -> None:
    for warning in app.settings.production_warnings():
        err.print(f"[yellow]warning:[/yellow] {warning}", highlight=False)


CadenceOpt = Annotated[
    Cadence, typer.Option(help="Which readers' digest: weekly (default), daily or instant.")
]


@cli.command()
@_errors_to_exit
def init() -> None:
    """Create the database or migrate it to the newest schema (safe to run again)."""
    from digest import schema

    app = build()
    before, after = schema.upgrade(app.engine)
    where = app.engine.url.render_as_string(hide_password=True)
    if before is None:
        out.print(f"database created at schema {after}: {where}", highlight=False)
    elif before != after:
        out.print(f"database migrated from schema {before} to {after}: {where}",
                  highlight=False)
    else:
        out.print(f"database already at the newest schema ({after}): {where}", highlight=False)


@cli.command()
@_errors_to_exit
def poll(
    feed: Annotated[
        list[str] | None,
        typer.Option("--feed", help="Poll this feed URL or file instead of DIGEST_FEED_URL "
                     "(repeatable)."),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Also fetch feeds that are backing "
                                        "off after failures.")] = False,
) -> None:
    """Fetch the feed(s), store new posts once and print what happened per feed."""
    from digest.polling import poll_feeds

    reports = poll_feeds(_app(), feed or None, force=force)
    for report in reports:
        out.print(report.describe(), highlight=False)
    if reports and all(r.outcome in {"failed", "gone"} for r in reports):
        raise typer.Exit(1)


@cli.command()
@_errors_to_exit
def preview(
    out_file: Annotated[
        Path | None, typer.Option("--out", help="Write the HTML to this file instead of "
                                  "printing the text part.")
    ] = None,
    cadence: CadenceOpt = Cadence.WEEKLY,
) -> None:
    """Render the next digest without sending it or claiming its period."""
    from digest.editions import preview as render_preview

    rendered = render_preview(_app(), cadence=cadence)
    if rendered is None:
        out.print("nothing new to send: no posts since the last digest")
        return
    out.print(f"Subject: {rendered.subject}", highlight=False)
    if out_file is not None:
        out_file.write_text(rendered.html, encoding="utf-8")
        out.print(f"HTML written to {out_file}")
    else:
        out.print(rendered.text, highlight=False, markup=False)


@cli.command()
@_errors_to_exit
def send(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Render and count; send nothing.")]
    = False,
    to: Annotated[str | None, typer.Option("--to", help="Send one test copy to this address "
                                           "only; the period stays unclaimed.")] = None,
    queue: Annotated[bool, typer.Option("--queue", help="Hand the fan-out to the Celery "
                                        "workers instead of sending here.")] = False,
    force: Annotated[bool, typer.Option("--force", help="Send even if this period's digest "
                                        "was already sent.")] = False,
    cadence: CadenceOpt = Cadence.WEEKLY,
) -> None:
    """Send the digest now to every confirmed reader (once per period unless --force)."""
    from digest.delivery import send_digest

    app = _app()
    _warn_about_settings(app)
    with Progress(TextColumn("sending"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=err, transient=True, disable=queue or dry_run or to is not None) as bar:
        task = bar.add_task("send", total=None)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        result = send_digest(app, cadence=cadence, force=force, dry_run=dry_run, to=to,
                             queue=queue, progress=progress)
    out.print(result.describe(), highlight=False)
    if result.failed:
        raise typer.Exit(1)


@cli.command()
@_errors_to_exit
def stats(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]
    = False,
) -> None:
    """Show reader counts, the last digests with their batches, and feed failures."""
    from digest.stats import stats as collect

    report = collect(_app())
    if as_json:
        out.print_json(json.dumps(report.as_dict(), default=str))
        return
    out.print(report.describe(), highlight=False)


@cli.command()
@_errors_to_exit
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
) -> None:
    """Run the web app: signup, confirm, unsubscribe, preferences, archive, admin, webhooks."""
    import uvicorn

    from digest.web.app import create_app

    app = _app()
    check_can_send(app.settings)
    _warn_about_settings(app)
    # X-Forwarded-For is read by digest.web.deps.client_ip, from DIGEST_TRUSTED_PROXIES only.
    # log_config=None: uvicorn's loggers go through digest.logs like everything else.
    uvicorn.run(create_app(app), host=host, port=port, proxy_headers=False, log_config=None)


@cli.command()
@_errors_to_exit
def demo(
    directory: Annotated[Path, typer.Option("--dir", help="Where the demo database and "
                                            "outbox go (an earlier demo's are replaced).")]
    = Path("demo"),
) -> None:
    """Run the whole pipeline offline on embedded defaults and the bundled sample feed."""
    from digest.demo import run_demo

    result = run_demo(directory, echo=lambda line: out.print(line, highlight=False))
    out.print(f"\n{len(result.files)} messages written to {result.outbox.resolve()}")
    for path in result.files:
        out.print(f"  {path}", highlight=False)


@subscribers_cli.command("add")
@_errors_to_exit
def subscribers_add(
    emails: Annotated[list[str], typer.Argument(help="One or more addresses.")],
    name: Annotated[str | None, typer.Option(help="Display name (one address only).")] = None,
) -> None:
    """Add readers; addresses added by the operator are active at once."""
    from digest.subscribers import add

    if name is not None and len(emails) > 1:
        raise typer.BadParameter("--name goes with one address only; add the others "
                                 "separately", param_hint="--name")
    app = _app()
    for email in emails:
        sub = add(app, email, name=name)
        out.print(f"active: {sub.email}", highlight=False)


@subscribers_cli.command("list")
@_errors_to_exit
def subscribers_list(
    status: Annotated[SubscriberStatus | None, typer.Option(help="Only readers with this "
                                                            "status.")] = None,
) -> None:
    """List readers with their status, cadence and sign-up date."""
    from digest.subscribers import list_subscribers

    table = Table("email", "status", "cadence", "since")
    count = 0
    for sub in list_subscribers(_app(), status=status):
        table.add_row(sub.email or "(deleted)", str(sub.status), str(sub.cadence),
                      f"{sub.created_at:%Y-%m-%d}")
        count += 1
    out.print(table)
    out.print(f"{count} readers")


@subscribers_cli.command("remove")
@_errors_to_exit
def subscribers_remove(
    emails: Annotated[list[str], typer.Argument(help="One or more addresses.")],
) -> None:
    """Unsubscribe readers at once (they would need to confirm again to come back)."""
    from digest.subscribers import remove

    app = _app()
    for email in emails:
        removed = remove(app, email)
        out.print(f"{'removed' if removed else 'not found'}: {email}", highlight=False)


@subscribers_cli.command("import")
@_errors_to_exit
def subscribers_import(
    file: Annotated[Path, typer.Argument(help="CSV: a Jetpack/WordPress.com or Mailchimp "
                                         "export, or a plain email column.", exists=True,
                                         dir_okay=False)],
) -> None:
    """Import readers from CSV; never duplicates, reports what was skipped and why."""
    from digest.importer import import_csv

    report = import_csv(_app(), file)
    out.print(report.describe(), highlight=False)


@subscribers_cli.command("export")
@_errors_to_exit
def subscribers_export(
    file: Annotated[Path, typer.Argument(help="Where to write the CSV ('-' for stdout).")],
) -> None:
    """Export every reader with every field as CSV."""
    from digest.importer import export_csv

    app = _app()
    if str(file) == "-":
        count = export_csv(app, sys.stdout)
    else:
        with file.open("w", encoding="utf-8", newline="") as fh:
            count = export_csv(app, fh)
        out.print(f"{count} readers written to {file}")


def main() -> None:
    """Console-script entry point; a bad setting stops with a message naming it."""
    from digest.config import load_settings
    from digest.errors import ConfigError
    from digest.logs import configure

    try:
        configure(load_settings())
    except ConfigError:
        configure(None)  # the command itself reports the bad setting
    cli()
