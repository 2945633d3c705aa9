"""The `digest` command line: parse options, call one service function, print the result."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from digest.bootstrap import build, check_can_send
from digest.cli.admin_password import admin_password
from digest.cli.alerts import alerts
from digest.cli.common import (
    CadenceOpt,
    err,
    errors_to_exit,
    open_app,
    out,
    progress_bar,
    warn_about_settings,
)
from digest.cli.exporter import metrics_server
from digest.cli.feeds import feeds_cli
from digest.cli.pausing import pause, resume
from digest.cli.reader_preview import show_reader_next
from digest.cli.readers import subscribers_cli
from digest.cli.topics import topics_cli
from digest.store.models import MAX_ID, Cadence

cli = typer.Typer(
    help="digest: mail a blog's new posts to its readers as one digest on a schedule.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
)
cli.add_typer(subscribers_cli, name="subscribers")
cli.add_typer(feeds_cli, name="feeds")
cli.add_typer(topics_cli, name="topics")
cli.command()(pause)
cli.command()(resume)
cli.command("metrics-server")(metrics_server)
cli.command(name="admin-password")(admin_password)
cli.command("alerts")(alerts)


@cli.command()
@errors_to_exit
def init() -> None:
    """Create the database or migrate it to the newest schema, and store DIGEST_FEED_URL's
    feeds it lacks (safe to run again)."""
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
    from digest.feeds.registry import seed_feeds

    for url in seed_feeds(app):
        out.print(f"feed stored from DIGEST_FEED_URL: {url}", highlight=False)


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
    reader: Annotated[str | None, typer.Option(
        "--reader", help="What this reader gets next, and when on their own clock (their "
        "hour, time zone and topics).")] = None,
) -> None:
    """Render what `digest send` would send now, without sending or recording anything."""
    from digest.delivery.editions import preview as render_preview
    from digest.delivery.nextdigest import next_digest

    if reader is not None:
        show_reader_next(reader, out_file)
        return
    app = open_app()
    rendered = render_preview(app, cadence=cadence)
    if rendered is None:  # why: nothing new, or waiting for the minimum or the hold window
        out.print(f"Nothing to send: {next_digest(app, cadence).reason}", highlight=False)
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
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print who would get which posts "
                                          "(readers, batches, titles); send nothing.")]
    = False,
    to: Annotated[str | None, typer.Option("--to", help="Send one test copy to this address "
                                           "only; nothing is recorded as sent.")] = None,
    queue: Annotated[bool, typer.Option("--queue", help="Hand the fan-out to the Celery "
                                        "workers instead of sending here.")] = False,
    force: Annotated[bool, typer.Option("--force", hidden=True)] = False,
    cadence: CadenceOpt = Cadence.WEEKLY,
) -> None:
    """Send now the posts this cadence's readers have not received yet.

    Nothing new: says so and exits 0. The next scheduled digest still goes out, with only
    what is new by then. To send a past digest to readers who missed it: digest resend.
    """
    from digest.delivery.send import send_digest

    if force:
        err.print("[red]error:[/red] --force is gone: `digest send` always sends what readers "
                  "have not received yet; to send a past digest again to readers who did not "
                  "get it, use `digest resend EDITION [--to EMAIL]`", highlight=False)
        raise typer.Exit(2)
    app = open_app()
    warn_about_settings(app)
    with progress_bar(disable=queue or dry_run or to is not None) as progress:
        result = send_digest(app, cadence=cadence, manual=True, dry_run=dry_run, to=to,
                             queue=queue, progress=progress)
    out.print(result.describe(), highlight=False, markup=False)
    if result.failed:
        raise typer.Exit(1)


@cli.command()
@errors_to_exit
def resend(
    edition: Annotated[int, typer.Argument(metavar="EDITION", min=1, max=MAX_ID,
                                           help="The edition's number (`digest stats`).")],
    to: Annotated[str | None, typer.Option("--to", help="Only this reader, if they did not "
                                           "get it.")] = None,
    queue: Annotated[bool, typer.Option("--queue", help="Hand the fan-out to the Celery "
                                        "workers instead of sending here.")] = False,
) -> None:
    """Send a past digest again, only to readers who did not get it.

    That is the readers of its cadence who joined (or resumed) after it went out, and those
    it failed, bounced or was refused for. Nobody gets it twice; exits 0 when no one is left.
    """
    from digest.delivery.resend import resend_edition

    app = open_app()
    warn_about_settings(app)
    with progress_bar(disable=queue) as progress:
        result = resend_edition(app, edition, to=to, queue=queue, progress=progress)
    out.print(result.describe(), highlight=False, markup=False)
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
    uvicorn.run(create_app(app, watch_alerts=True), host=host, port=port, proxy_headers=False,
                log_config=None)


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
    from digest import sentry
    from digest.config import load_settings
    from digest.errors import ConfigError
    from digest.logs import configure

    try:
        settings = load_settings()
    except ConfigError:
        configure(None)  # the command itself reports the bad setting
    else:
        configure(settings)
        sentry.configure(settings)  # off unless DIGEST_SENTRY_DSN is set
    cli()
