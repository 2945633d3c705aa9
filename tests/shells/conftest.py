"""The environment a `digest` command runs in for the CLI tests: a SQLite file, the bundled
sample feed, mail to an outbox folder, and an https base URL."""

from __future__ import annotations

from pathlib import Path

import pytest

from digest.config import SAMPLE_FEED


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    monkeypatch.chdir(tmp_path)
    values = {
        "DIGEST_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}",
        "DIGEST_FEED_URL": str(SAMPLE_FEED),
        "DIGEST_OUTBOX_DIR": str(tmp_path / "outbox"),
        "DIGEST_MAIL_BACKEND": "outbox",
        "DIGEST_FIRST_POLL_WINDOW_DAYS": "36500",
        "DIGEST_BASE_URL": "https://news.example.org",
        "DIGEST_FROM_EMAIL": "digest@news.example.org",
    }
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    return values
