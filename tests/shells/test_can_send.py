"""A configuration that cannot send mail stops `digest serve` and the worker at start."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from digest.bootstrap import check_can_send
from digest.cli import cli
from digest.errors import ConfigError
from digest.tasks import refuse_to_start_unable_to_send
from tests.conftest import make_settings

runner = CliRunner()


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SENDGRID_API_KEY", raising=False)
    monkeypatch.delenv("DIGEST_SENDGRID_API_KEY", raising=False)
    monkeypatch.setenv("DIGEST_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.setenv("DIGEST_MAIL_BACKEND", "sendgrid")


def test_serve_refuses_sendgrid_without_a_key(env, monkeypatch) -> None:
    import uvicorn

    started: list[object] = []
    monkeypatch.setattr(uvicorn, "run", lambda *a, **k: started.append(a))
    result = runner.invoke(cli, ["serve"])
    assert result.exit_code == 1
    assert "SENDGRID_API_KEY" in result.output
    assert started == []  # the web app never listened
    monkeypatch.setenv("SENDGRID_API_KEY", "SG.test")
    assert runner.invoke(cli, ["serve"]).exit_code == 0 and len(started) == 1


@pytest.mark.parametrize(("overrides", "setting"), [
    ({"mail_backend": "sendgrid", "sendgrid_api_key": None}, "SENDGRID_API_KEY"),
    ({"mail_backend": "sendgrid", "sendgrid_api_key": "  "}, "SENDGRID_API_KEY"),
    ({"mail_backend": "smtp", "smtp_url": "http://mail.example.org"}, "DIGEST_SMTP_URL"),
    ({"mail_backend": "smtp", "smtp_url": "smtp://"}, "DIGEST_SMTP_URL"),
    ({"from_email": "not an address"}, "DIGEST_FROM_EMAIL"),
])
def test_settings_that_cannot_send_are_named(tmp_path, overrides, setting) -> None:
    with pytest.raises(ConfigError, match=setting):
        check_can_send(make_settings(tmp_path, **overrides))


def test_outbox_directory_that_cannot_be_created_is_named(tmp_path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ConfigError, match="DIGEST_OUTBOX_DIR"):
        check_can_send(make_settings(tmp_path, outbox_dir=blocker / "outbox"))


def test_settings_that_can_send_pass(tmp_path) -> None:
    check_can_send(make_settings(tmp_path))
    check_can_send(make_settings(tmp_path, mail_backend="sendgrid", sendgrid_api_key="SG.x"))
    check_can_send(make_settings(tmp_path, mail_backend="smtp",
                                 smtp_url="smtps://user:pw@mail.example.org:465"))


def test_worker_refuses_to_start(env, capsys) -> None:
    with pytest.raises(SystemExit) as stopped:
        refuse_to_start_unable_to_send()
    assert "SENDGRID_API_KEY" in str(stopped.value.code)
