"""docker-compose.yml is valid Compose and runs what a user would run."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import yaml

REPO = Path(__file__).resolve().parents[2]


def test_compose_file_matches_the_compose_specification(shared_dir: Path) -> None:
    schema = json.loads((shared_dir / "compose" / "compose-spec.json").read_text())
    doc = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    jsonschema.Draft7Validator(schema).validate(doc)


def test_compose_runs_the_whole_stack() -> None:
    services = yaml.safe_load((REPO / "docker-compose.yml").read_text())["services"]
    assert {"redis", "postgres", "web", "worker", "beat"} <= set(services)
    assert services["worker"]["command"][:4] == ["celery", "-A", "worker", "worker"]
    assert services["beat"]["command"][:4] == ["celery", "-A", "worker", "beat"]
    assert services["web"]["command"][:2] == ["digest", "serve"]
    for name in ("web", "worker", "beat"):
        env = services[name]["environment"]
        assert env["DIGEST_DATABASE_URL"].startswith("postgresql+psycopg://")
        # Redis unless DIGEST_BROKER_URL names RabbitMQ (`--profile rabbitmq`); Redis stays
        assert env["DIGEST_BROKER_URL"] == "${DIGEST_BROKER_URL:-redis://redis:6379/0}"
        assert env["DIGEST_REDIS_URL"] == "redis://redis:6379/0"
        assert services[name]["build"] == "."
    assert (REPO / "Dockerfile").is_file()


def _services() -> dict[str, dict[str, object]]:
    services: dict[str, dict[str, object]] = yaml.safe_load(
        (REPO / "docker-compose.yml").read_text())["services"]
    return services


def test_every_long_running_service_has_a_healthcheck() -> None:
    services = _services()
    for name, service in services.items():
        check = service.get("healthcheck")
        assert isinstance(check, dict), f"{name} has no healthcheck"
        if service.get("restart") == "no":  # the one-off migration step
            assert check == {"disable": True}
            continue
        assert check["test"][0] in ("CMD", "CMD-SHELL"), name
    assert "pg_isready" in services["postgres"]["healthcheck"]["test"][1]  # type: ignore[index]
    assert services["redis"]["healthcheck"]["test"][1:] == ["redis-cli", "ping"]  # type: ignore[index]
    web = " ".join(services["web"]["healthcheck"]["test"])  # type: ignore[index]
    assert "http://127.0.0.1:8000/readyz" in web  # database, Redis and beat, not just the process
    worker = services["worker"]["healthcheck"]["test"][1]  # type: ignore[index]
    assert worker.startswith("celery -A worker inspect ping") and "celery@$$HOSTNAME" in worker


def test_flower_and_mailpit_run_only_on_their_profiles() -> None:
    services = _services()
    assert services["flower"]["profiles"] == ["flower"]
    assert str(services["flower"]["image"]).startswith("mher/flower")
    flower = " ".join(services["flower"]["command"])  # type: ignore[arg-type]
    assert '--broker="$$DIGEST_BROKER_URL"' in flower and "FLOWER_BASIC_AUTH" in flower
    broker = services["flower"]["environment"]["DIGEST_BROKER_URL"]  # type: ignore[index]
    assert broker == "${DIGEST_BROKER_URL:-redis://redis:6379/0}"
    assert services["mailpit"]["profiles"] == ["dev"]
    assert str(services["mailpit"]["image"]).startswith("axllent/mailpit")
    for name, service in services.items():
        if name not in ("flower", "mailpit", "rabbitmq"):
            assert "profiles" not in service, f"{name} must run without a profile"


def test_the_dev_profile_can_point_the_stack_at_mailpit() -> None:
    """`DIGEST_MAIL_BACKEND=smtp DIGEST_SMTP_URL=smtp://mailpit:1025 docker compose --profile
    dev up`: the app services take both from the environment that runs compose."""
    services = _services()
    for name in ("web", "worker", "beat"):
        env = services[name]["environment"]
        assert env["DIGEST_MAIL_BACKEND"] == "${DIGEST_MAIL_BACKEND:-sendgrid}"  # type: ignore[index]
        assert env["DIGEST_SMTP_URL"].startswith("${DIGEST_SMTP_URL:-")  # type: ignore[index]


def test_the_rabbitmq_profile_adds_a_broker_the_app_waits_for() -> None:
    services = _services()
    rabbitmq = services["rabbitmq"]
    assert rabbitmq["profiles"] == ["rabbitmq"]
    assert "rabbitmq-diagnostics" in rabbitmq["healthcheck"]["test"]  # type: ignore[index]
    wait = services["migrate"]["depends_on"]["rabbitmq"]  # type: ignore[index]
    assert wait == {"condition": "service_healthy", "required": False}  # and the rest wait for it
    for name in ("web", "worker", "beat"):
        assert "migrate" in services[name]["depends_on"]  # type: ignore[operator]
