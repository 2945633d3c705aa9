"""`digest admin-password`: the hash it prints is what DIGEST_ADMIN_PASSWORD takes, and it
signs in; the password itself is never printed."""

from __future__ import annotations

from fastapi.testclient import TestClient
from typer.testing import CliRunner

from digest.bootstrap import build
from digest.cli import cli
from digest.config import load_settings
from digest.store import migrate as schema
from digest.web.app import create_app
from tests.conftest import make_settings
from tests.web.console_client import BASE_URL, console_limiter

runner = CliRunner()
PASSWORD = "a long console password"


def test_the_printed_hash_is_accepted_and_signs_in(tmp_path, transport) -> None:
    result = runner.invoke(cli, ["admin-password", "--stdin"], input=PASSWORD + "\n")
    assert result.exit_code == 0, result.output
    hashed = result.stdout.strip().splitlines()[0]
    assert hashed.startswith("$argon2id$") and PASSWORD not in result.output
    assert load_settings(_env_file=None, admin_password=hashed).admin_password is not None
    app = build(make_settings(tmp_path, admin_password=hashed, admin_token=None),
                lambda: transport)
    schema.upgrade(app.engine)
    client = TestClient(create_app(app, limiter=console_limiter()), base_url=BASE_URL,
                        follow_redirects=False)
    assert client.post("/admin/sign-in", data={"password": PASSWORD}).status_code == 303
    assert client.get("/admin").status_code == 200


def test_asked_twice_the_two_must_match() -> None:
    differ = runner.invoke(cli, ["admin-password"], input=PASSWORD + "\n" + PASSWORD + "x\n")
    assert differ.exit_code == 1 and "differ" in differ.output and "$argon2" not in differ.output
    same = runner.invoke(cli, ["admin-password"], input=PASSWORD + "\n" + PASSWORD + "\n")
    assert same.exit_code == 0 and "$argon2id$" in same.stdout
    assert PASSWORD not in same.output  # not echoed


def test_a_short_password_makes_no_hash() -> None:
    result = runner.invoke(cli, ["admin-password", "--stdin"], input="short\n")
    assert result.exit_code == 1 and "at least 12" in result.output
    assert "$argon2" not in result.output
