"""What every command shares: the consoles, the App, errors as one line and exit status 1."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from digest.bootstrap import build
from digest.errors import DigestError
from digest.runtime import App
from digest.store.models import Cadence

P = ParamSpec("P")


R = TypeVar("R")


out = Console(soft_wrap=True)


err = Console(stderr=True, soft_wrap=True)


def errors_to_exit(fn: Callable[P, R]) -> Callable[P, R]:
    """Turn a DigestError into a one-line message and exit status 1."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except DigestError as exc:
            # The message may quote feed text or a reader's input: never read as markup.
            err.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False)
            raise typer.Exit(1) from exc

    return wrapper


def open_app() -> App:
    from digest.store import migrate as schema

    app = build()
    schema.upgrade(app.engine)
    return app


def warn_about_settings(app: App) -> None:
    for warning in app.settings.production_warnings():
        err.print(f"[yellow]warning:[/yellow] {warning}", highlight=False)


CadenceOpt = Annotated[
    Cadence, typer.Option(help="Which readers' digest: weekly (default), daily or instant.")
]


@contextmanager
def progress_bar(*, disable: bool) -> Iterator[Callable[[int, int], None]]:
    """A progress bar on stderr; yields the callback a send reports to."""
    with Progress(TextColumn("sending"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=err, transient=True, disable=disable) as bar:
        task = bar.add_task("send", total=None)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield progress
