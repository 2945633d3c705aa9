"""`digest alerts` lists the open operator alerts; `--check` looks for new ones first."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import create_engine, insert
from typer.testing import CliRunner

from digest.cli import cli
from digest.store.models import Cadence, Edition, EditionStatus
from tests.conftest import REDIS_TEST_URL

runner = CliRunner()


@pytest.mark.redis
def test_alerts_check_reports_the_breaker_and_lists_what_is_open(
        env: dict[str, str], monkeypatch: pytest.MonkeyPatch, redis_url: str) -> None:
    monkeypatch.setenv("DIGEST_BROKER_URL", REDIS_TEST_URL)  # beat's heartbeat: the test Redis
    assert runner.invoke(cli, ["init"]).exit_code == 0
    empty = runner.invoke(cli, ["alerts"])
    assert empty.exit_code == 0, empty.output
    assert "0 open alerts" in empty.output

    engine = create_engine(env["DIGEST_DATABASE_URL"])
    with engine.begin() as conn:
        conn.execute(insert(Edition).values(
            key="weekly:2026-11-30", cadence=Cadence.WEEKLY, status=EditionStatus.SENDING,
            subject="Talks", paused_at=datetime.now(UTC),
            pause_reason="complaints: 7 of 1000 readers handed over complained"))
    engine.dispose()

    checked = runner.invoke(cli, ["alerts", "--check"])
    assert checked.exit_code == 0, checked.output
    assert "new alert, sent to the log (DIGEST_OPERATOR_EMAIL is not set)" in checked.output
    assert "paused: too many spam complaints" in checked.output
    assert "breaker:1" in checked.output

    again = runner.invoke(cli, ["alerts", "--check"])
    assert "new alert" not in again.output  # once per episode
    assert "breaker:1" in again.output
