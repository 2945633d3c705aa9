"""`digest metrics-server`: a worker host's counts, summed from its multiprocess directory,
behind the metrics token; it refuses to start without the directory or a token."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from wsgiref.util import setup_testing_defaults

from prometheus_client.parser import text_string_to_metric_families
from typer.testing import CliRunner

from digest.cli import cli
from digest.cli.exporter import exporter
from tests.conftest import REPO

_COUNT = "from digest.metrics import BATCHES, READERS_HANDED_OVER as R; " \
         "BATCHES.labels('sent').inc({n}); R.inc({n} * 1000)"


def _call(app, auth: str | None) -> tuple[str, str]:
    environ: dict = {}
    setup_testing_defaults(environ)
    if auth is not None:
        environ["HTTP_AUTHORIZATION"] = auth
    status: list[str] = []
    body = b"".join(app(environ, lambda s, headers: status.append(s)))
    return status[0], body.decode()


def test_two_processes_counts_are_summed_for_the_token(tmp_path: Path) -> None:
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path), "PYTHONPATH": str(REPO)}
    for n in (2, 3):  # two worker processes, each with its own file
        subprocess.run([sys.executable, "-c", _COUNT.format(n=n)], env=env, check=True)
    app = exporter("s3cret", str(tmp_path))
    assert _call(app, None)[0].startswith("401")
    assert _call(app, "Bearer nope")[0].startswith("403")
    status, body = _call(app, "Bearer s3cret")
    assert status.startswith("200")
    samples = {(s.name, tuple(s.labels.items())): s.value
               for f in text_string_to_metric_families(body) for s in f.samples}
    assert samples[("digest_batches_total", (("outcome", "sent"),))] == 5
    assert samples[("digest_readers_handed_over_total", ())] == 5000


def test_it_refuses_to_start_without_a_directory_or_a_token(tmp_path: Path,
                                                              monkeypatch) -> None:
    monkeypatch.setenv("DIGEST_DATABASE_URL", f"sqlite:///{tmp_path / 'digest.db'}")
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    runner = CliRunner()
    answer = runner.invoke(cli, ["metrics-server"])
    assert answer.exit_code == 1 and "PROMETHEUS_MULTIPROC_DIR" in answer.output
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    monkeypatch.setenv("DIGEST_ADMIN_TOKEN", "")
    monkeypatch.setenv("DIGEST_METRICS_TOKEN", "")
    answer = runner.invoke(cli, ["metrics-server"])
    assert answer.exit_code == 1 and "DIGEST_METRICS_TOKEN" in answer.output
