"""SpamAssassin, run offline, finds nothing to complain about in our mails.

The demo digest (``digest.demo.run_demo``), the confirmation and the welcome mail are scored
with ``spamassassin -L -t``: the total must stay at or below 1.0 and no single rule may
score above 0.5.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from digest.demo import run_demo
from digest.mail.notices import render_confirmation, render_welcome
from digest.mail.render import render_digest
from tests.conftest import make_settings, unavailable
from tests.mail_samples import sample_sections, write_eml

_RULE = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s+([A-Z][A-Z0-9_]+)\s", re.MULTILINE)
_STATUS = re.compile(r"^X-Spam-Status:.*?score=(-?\d+(?:\.\d+)?)", re.MULTILINE)


def _spamassassin(eml: Path, home: Path) -> tuple[float, dict[str, float], str]:
    """Total score, every rule that fired with its points, and the raw report."""
    if shutil.which("spamassassin") is None:
        unavailable("spamassassin is not installed (Debian package spamassassin)")
    env = {**os.environ, "HOME": str(home)}
    result = subprocess.run(
        ["spamassassin", "-L", "-t"], input=eml.read_bytes(), capture_output=True,
        env=env, timeout=120, check=False,
    )
    output = result.stdout.decode("utf-8", "replace")
    status = _STATUS.search(output)
    assert status, f"no X-Spam-Status in spamassassin output:\n{output[:2000]}"
    report = output.split("Content analysis details:", 1)[-1]
    rules = {name: float(points) for points, name in _RULE.findall(report)}
    return float(status.group(1)), rules, report


def _assert_clean(eml: Path, home: Path) -> None:
    score, rules, report = _spamassassin(eml, home)
    assert score <= 1.0, report
    loud = {name: points for name, points in rules.items() if points > 0.5}
    assert not loud, report


def test_the_demo_digest_is_not_spam(tmp_path: Path) -> None:
    result = run_demo(tmp_path / "demo", echo=lambda _line: None)
    assert result.files, "the demo wrote no .eml"
    _assert_clean(result.files[0], tmp_path)


@pytest.mark.parametrize("kind", ["confirmation", "welcome"])
def test_reader_mails_are_not_spam(tmp_path: Path, kind: str) -> None:
    settings = make_settings(tmp_path)
    if kind == "confirmation":
        rendered = render_confirmation(settings, "https://news.example.org/confirm/MQ.abc.def")
    else:
        rendered = render_welcome(settings, render_digest(settings, sample_sections(3)))
    _assert_clean(write_eml(settings, rendered, tmp_path / "out", edition_id=None), tmp_path)
