"""The `digest` command line: parse options, call one service function, print the result."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from digest.bootstrap import build, check_can_send
from digest.cli.common import CadenceOpt, err, errors_to_exit, open_app, out, warn_about_settings
from digest.cli.feeds import feeds_cli
from digest.cli.readers import subscribers_cli
from digest.store.models import Cadence

cli = typer.Typer(
    help="digest: mail a blog's new posts to its readers as one digest on a schedule.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
)
cli.add_typer(subscribers_cli, name="subscribers")
cli.add_typer(feeds_cli, name="feeds")


@cli.command()
@errors_to_exit
def init() -> None:
    """Create the database or migrate it to the newest schema (safe to run again)."""
    from digest.store import migrate as schema

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
@errors_to_exit
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
    from digest.feeds.poll import poll_feeds

    reports = poll_feeds(open_app(), feed or None, force=force)
    for report in reports:
        out.print(report.describe(), highlight=False)
    if reports and all(r.outcome in {"failed", "gone"} for r in reports):
        raise typer.Exit(1)


@cli.command()
@errors_to_exit
def preview(
    out_file: Annotated[
        Path | None, typer.Option("--out", help="Write the HTML to this file instead of "
                                  "printing the text part.")
    ] = None,
    cadence: CadenceOpt = Cadence.WEEKLY,
) -> None:
    """Render the next digest without sending it or claiming its period."""
    from digest.delivery.editions import preview as render_preview

    rendered = render_preview(open_app(), cadence=cadence)
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
@errors_to_exit
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
    from digest.delivery.send import send_digest

    app = open_app()
    warn_about_settings(app)
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
@errors_to_exit
def stats(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]
    = False,
) -> None:
    """Show reader counts, the last digests with their batches, and feed failures."""
    from digest.delivery.stats import stats as collect

    report = collect(open_app())
    if as_json:
        out.print_json(json.dumps(report.as_dict(), default=str))
        return
    out.print(report.describe(), highlight=False)


@cli.command()
@errors_to_exit
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
) -> None:
    """Run the web app: signup, confirm, unsubscribe, preferences, archive, admin, webhooks."""
    import uvicorn

    from digest.web.app import create_app

    app = open_app()
    check_can_send(app.settings)
    warn_about_settings(app)
    # X-Forwarded-For is read by digest.web.deps.client_ip, from DIGEST_TRUSTED_PROXIES only.
    # log_config=None: uvicorn's loggers go through digest.logs like everything else.
    uvicorn.run(create_app(app), host=host, port=port, proxy_headers=False, log_config=None)


@cli.command()
@errors_to_exit
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
