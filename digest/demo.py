"""`digest demo`: the whole pipeline offline, on embedded defaults.

A fresh SQLite database and outbox in one folder, the sample feed bundled in the package,
three example readers, one digest sent to the outbox. Nothing touches the network.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from digest import schema
from digest.config import SAMPLE_FEED, Settings
from digest.wiring import build

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


def run_demo(directory: Path, echo: Callable[[str], None] = print) -> DemoResult:
    """Recreate ``directory``, then poll, add readers and send one digest to its outbox."""
    from digest.delivery import send_digest
    from digest.polling import poll_feeds
    from digest.subscribers import add

    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
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
