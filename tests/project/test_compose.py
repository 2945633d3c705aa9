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
        assert env["DIGEST_BROKER_URL"].startswith("redis://redis")
        assert services[name]["build"] == "."
    assert (REPO / "Dockerfile").is_file()
