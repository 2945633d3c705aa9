"""`digest demo`: the whole pipeline offline, on embedded defaults.

A fresh SQLite database and outbox in one folder, the sample feed bundled in the package,
three example readers, one digest sent to the outbox. Nothing touches the network.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from digest.bootstrap import build
from digest.config import SAMPLE_FEED, Settings
from digest.store import migrate as schema

DEMO_READERS = ("alice@example.com", "bob@example.org", "chidi@example.net")


@dataclass(frozen=True)
class DemoResult:
    outbox: Path
    files: list[Path]


def demo_settings(directory: Path) -> Settings:
    """Embedded defaults for the demo; the environment and .env are not read."""
    return Settings(
        _env_file=None,
        database_url=f"sqlite:///{directory / 'digest.db'}",
        feed_url=[str(SAMPLE_FEED)],
        mail_backend="outbox",
        outbox_dir=directory / "outbox",
        base_url="http://localhost:8000",
        from_email="digest@diplomaticopinion.com",
        from_name="Diplomatic Opinion",
        postal_address="Diplomatic Opinion, PO Box 1000, Istanbul, Turkey",
        # The sample posts are from 2022: announce the whole sample on its first poll.
        first_poll_window_days=100 * 365,
    )


def _reset(directory: Path) -> None:
    """Remove what an earlier demo left in ``directory`` (its database and outbox) only."""
    directory.mkdir(parents=True, exist_ok=True)
    for name in ("digest.db", "digest.db-wal", "digest.db-shm"):
        (directory / name).unlink(missing_ok=True)
    outbox = directory / "outbox"
    if outbox.is_dir():
        for message in outbox.glob("*.eml"):
            message.unlink()


def run_demo(directory: Path, echo: Callable[[str], None] = print) -> DemoResult:
    """Start ``directory`` afresh, then poll, add readers and send one digest to its outbox.

    Only the demo's own files there (``digest.db``, ``outbox/*.eml``) are removed, so a
    mistyped ``--dir`` cannot delete anything else.
    """
    from digest.delivery.send import send_digest
    from digest.feeds.poll import poll_feeds
    from digest.readers.roster import add

    _reset(directory)
    settings = demo_settings(directory)
    app = build(settings)
    try:
        schema.upgrade(app.engine)
        for report in poll_feeds(app):
            echo(report.describe())
        for email in DEMO_READERS:
            add(app, email)
        echo(f"readers: {', '.join(DEMO_READERS)}")
        result = send_digest(app)
        echo(result.describe())
    finally:
        app.engine.dispose()
    outbox = settings.outbox_dir
    return DemoResult(outbox=outbox, files=sorted(outbox.glob("*.eml")))
