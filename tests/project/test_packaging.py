"""What a user installs: locked dependencies, and a wheel that carries its templates.

The wheel itself is built and run (``digest demo`` from a fresh venv) by ``make wheel-demo``
in CI; these checks are the offline half: the lock files cover pyproject.toml, and every
install path (make, CI, Docker) uses them.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from digest.config import TEMPLATES_DIR

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def _name(requirement: str) -> str:
    match = re.match(r"[A-Za-z0-9._-]+", requirement)
    assert match, requirement
    return re.sub(r"[-_.]+", "-", match.group(0)).lower()


def _pinned(lock: str) -> set[str]:
    text = (ROOT / "requirements" / lock).read_text(encoding="utf-8")
    return {_name(line) for line in text.splitlines() if re.match(r"[A-Za-z0-9]", line)
            and "==" in line}


def test_the_lock_files_pin_every_dependency() -> None:
    """A dependency added to pyproject.toml without `make lock` fails here."""
    project = PYPROJECT["project"]
    runtime = {_name(r) for r in project["dependencies"]}
    dev = {_name(r) for r in project["optional-dependencies"]["dev"]}
    assert sorted(runtime - _pinned("lock.txt")) == []
    assert sorted((runtime | dev) - _pinned("dev.txt")) == []


def test_every_install_uses_the_hashed_lock() -> None:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert "--require-hashes -r $(DEV_LOCK)" in makefile
    assert "--no-deps -e ." in makefile
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert "--require-hashes -r requirements/lock.txt" in dockerfile
    assert "--no-deps" in dockerfile
    ignored = (ROOT / ".dockerignore").read_text(encoding="utf-8").split()
    assert not {"requirements", "templates", "digest"} & set(ignored)
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "make wheel-demo" in ci and "make audit" in ci


def test_the_wheel_carries_templates_inside_the_package() -> None:
    wheel = PYPROJECT["tool"]["hatch"]["build"]["targets"]["wheel"]
    assert wheel["force-include"] == {"templates": "digest/templates"}
    assert wheel["packages"] == ["digest"]  # sample feed and migrations live inside it


def test_templates_are_found_from_a_checkout() -> None:
    assert (TEMPLATES_DIR / "digest.html").is_file()
    assert (TEMPLATES_DIR / "web" / "signup.html").is_file()
