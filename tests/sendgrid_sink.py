"""The SendGrid sink and worker processes (from ``bench.sink``), plus test-only probes.

``pid_with_local_port`` finds the worker holding a request the sink is holding, so a test can
kill exactly that worker mid-send; ``wait_for`` polls a condition.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from bench.sink import Sink, celery_workers, running_sink, worker_env

__all__ = ["Sink", "celery_workers", "pid_with_local_port", "running_sink", "wait_for",
           "worker_env"]


def pid_with_local_port(pids: list[int], port: int) -> int | None:
    """Which process owns the TCP socket whose local port is ``port`` (via /proc)."""
    inodes: dict[str, int] = {}
    for name in ("tcp", "tcp6"):
        try:
            lines = Path(f"/proc/net/{name}").read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes[fields[9]] = port
    for pid in pids:
        try:
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                target = os.readlink(fd)
                if target.startswith("socket:[") and target[8:-1] in inodes:
                    return pid
        except OSError:
            continue
    return None


def wait_for(predicate: object, timeout: float, interval: float = 0.2) -> bool:
    """Poll ``predicate()`` until it is true or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(interval)
    return False
