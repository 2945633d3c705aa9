"""`digest topics ...`: the topics made from the feeds' categories (``feeds.topic_catalog``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from digest.cli.common import errors_to_exit, open_app, out
from digest.store.models import MAX_ID
from digest.store.sessions import transaction
from digest.wording import plural

topics_cli = typer.Typer(help="Manage topics: list, rename, merge, hide.", no_args_is_help=True)

TopicArg = Annotated[int, typer.Argument(metavar="ID", min=1, max=MAX_ID,
                                        help="The topic's id (`digest topics list`).")]


@topics_cli.command("list")
@errors_to_exit
def topics_list() -> None:
    """List topics: id, name, the feed's category, posts, active readers following, state."""
    from digest.feeds.topic_catalog import list_topics

    with open_app().sessions() as session:
        topics = list_topics(session)
    table = Table("id", "name", "category", "posts", "readers", "state")
    for t in topics:
        state = "hidden" if t.hidden else "shown"
        if t.merged_into_id is not None:
            state = f"merged into {t.merged_into_id} ({t.merged_into_name})"
        # Names and categories come from feeds: plain text, never Rich markup.
        table.add_row(str(t.id), Text(t.name), Text(t.key), str(t.posts), str(t.readers),
                      Text(state))
    out.print(table)
    out.print(plural(len(topics), "topic"))


@topics_cli.command("rename")
@errors_to_exit
def topics_rename(topic: TopicArg,
                  name: Annotated[str, typer.Argument(help="The name readers see.")]) -> None:
    """Rename a topic (the feed's category it comes from stays its key)."""
    from digest.feeds.topic_catalog import rename_topic

    with transaction(open_app().sessions) as session:
        renamed = rename_topic(session, topic, name).name
    out.print(f"topic {topic} is now called {renamed!r}", highlight=False, markup=False)


def _change(change: Callable[..., object], *args: int, said: str) -> None:
    """Apply one catalog change in a transaction and say what it did."""
    with transaction(open_app().sessions) as session:
        change(session, *args)
    out.print(said, highlight=False)


@topics_cli.command("merge")
@errors_to_exit
def topics_merge(topic: TopicArg, into: Annotated[int, typer.Argument(
        metavar="INTO_ID", min=1, max=MAX_ID, help="The topic it becomes part of.")]) -> None:
    """Merge a topic into another: its posts and readers count for that one."""
    from digest.feeds.topic_catalog import merge_topic

    _change(merge_topic, topic, into, said=f"topic {topic} merged into topic {into}")


@topics_cli.command("unmerge")
@errors_to_exit
def topics_unmerge(topic: TopicArg) -> None:
    """Undo a merge: the topic stands on its own again."""
    from digest.feeds.topic_catalog import unmerge_topic

    _change(unmerge_topic, topic, said=f"topic {topic} stands on its own again")


@topics_cli.command("hide")
@errors_to_exit
def topics_hide(topic: TopicArg) -> None:
    """Hide a topic: its posts go to every reader, readers can no longer choose it."""
    from digest.feeds.topic_catalog import hide_topic

    _change(hide_topic, topic, said=f"topic {topic} hidden")


@topics_cli.command("unhide")
@errors_to_exit
def topics_unhide(topic: TopicArg) -> None:
    """Show a hidden topic again."""
    from digest.feeds.topic_catalog import unhide_topic

    _change(unhide_topic, topic, said=f"topic {topic} shown again")
