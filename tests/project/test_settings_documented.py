"""Every setting the service reads is in .env.sample and the README table, and nothing else is.

The list comes from the Settings model itself, so a new field fails here until it is
documented in both places.
"""

from __future__ import annotations

import re
from pathlib import Path

from digest.config import Settings

ROOT = Path(__file__).resolve().parents[2]


def _env_name(name: str) -> str:
    field = Settings.model_fields[name]
    alias = field.validation_alias
    if alias is not None:  # e.g. SENDGRID_API_KEY, the standard name without the prefix
        choices = getattr(alias, "choices", [alias])
        return str(choices[0])
    return f"DIGEST_{name.upper()}"


def _model() -> set[str]:
    return {_env_name(name) for name in Settings.model_fields}


def _sample() -> set[str]:
    text = (ROOT / ".env.sample").read_text(encoding="utf-8")
    return set(re.findall(r"^#? ?([A-Z][A-Z0-9_]+)=", text, re.MULTILINE))


def _readme_table() -> set[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    return {name for row in rows for name in re.findall(r"`([A-Z][A-Z0-9_]+)`", row.split("|")[1])}


def test_every_setting_is_in_env_sample() -> None:
    assert sorted(_model() - _sample()) == []
    assert sorted(_sample() - _model()) == []  # nothing documented that is not read


def test_every_setting_is_in_the_readme_table() -> None:
    assert sorted(_model() - _readme_table()) == []
    assert sorted(_readme_table() - _model()) == []
