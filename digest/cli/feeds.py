"""`digest feeds ...`: the feeds stored in the database (a one-off `poll --feed` leaves one)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from digest.cli.common import errors_to_exit, open_app, out
from digest.wording import plural

feeds_cli = typer.Typer(help="Manage the stored feeds: list, add, remove.", no_args_is_help=True)


@feeds_cli.command("list")
@errors_to_exit
def feeds_list() -> None:
    """List stored feeds: id, URL, status, posts, last poll, and whether DIGEST_FEED_URL
    names them (it seeds the database; every stored feed is polled on schedule)."""
    from digest.feeds.registry import list_feeds

    feeds = list_feeds(open_app())
    table = Table("id", "url", "status", "posts", "last polled", "in DIGEST_FEED_URL")
    for f in feeds:
        table.add_row(str(f.id), Text(f.url), f.status, str(f.posts),
                      f"{f.last_polled_at:%Y-%m-%d %H:%M}" if f.last_polled_at else "never",
                      "yes" if f.configured else "no (one-off)")
    out.print(table)
    out.print(plural(len(feeds), "feed"))


@feeds_cli.command("add")
@errors_to_exit
def feeds_add(url: Annotated[str, typer.Argument(help="The feed's URL.")]) -> None:
    """Store a feed by polling it once; add it to DIGEST_FEED_URL to poll it on schedule."""
    from digest.feeds.registry import add_feed

    report = add_feed(open_app(), url)
    out.print(report.describe(), highlight=False, markup=False)
    if report.outcome in {"failed", "gone"}:
        raise typer.Exit(1)


@feeds_cli.command("remove")
@errors_to_exit
def feeds_remove(
    feed: Annotated[str, typer.Argument(help="The feed's URL or id (see `digest feeds list`).")],
) -> None:
    """Remove a stored feed and its posts, so later digests no longer draw on it."""
    from digest.feeds.registry import remove_feed

    removed = remove_feed(open_app(), feed)
    out.print(f"removed: {removed.url} ({plural(removed.posts, 'post')})", highlight=False,
              markup=False)
