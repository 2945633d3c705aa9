"""Logging is configured by each entry point: the `digest` command and the Celery worker."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest


def test_the_command_logs_json_events_without_addresses(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")}
    env["DIGEST_LOG_FORMAT"] = "json"
    done = subprocess.run(
        [sys.executable, "-c", "from digest.cli import main; main()", "demo",
         "--dir", str(tmp_path / "demo")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=True)
    events = [json.loads(line) for line in done.stderr.splitlines()]
    by_logger = {e["logger"]: e for e in events}
    assert by_logger["digest.feeds.poll"]["outcome"] == "new"
    assert by_logger["digest.delivery.editions"]["status"] == "sending"
    edition_id = by_logger["digest.delivery.editions"]["edition_id"]
    assert by_logger["digest.delivery.batch"]["batch_id"] == f"{edition_id}-1"
    for reader in ("alice@example.com", "bob@example.org", "chidi@example.net"):
        assert reader not in done.stderr
    assert not any(e["logger"].startswith("alembic") for e in events)


def test_the_worker_logs_through_digest_logs(monkeypatch: pytest.MonkeyPatch) -> None:
    """Celery's setup_logging signal hands logging to digest.logs (DIGEST_LOG_FORMAT)."""
    from celery.signals import setup_logging

    import digest.tasks  # noqa: F401 - connects the signal handler
    from digest.logs import JsonFormatter

    monkeypatch.setenv("DIGEST_LOG_FORMAT", "json")
    root = logging.getLogger()
    saved = (root.level, list(root.handlers))
    try:
        setup_logging.send(sender=None, loglevel="INFO", logfile=None, format="", colorize=False)
        ours = [h for h in root.handlers if h.get_name() == "digest"]
        assert len(ours) == 1 and isinstance(ours[0].formatter, JsonFormatter)
    finally:
        root.handlers[:] = saved[1]
        root.setLevel(saved[0])
