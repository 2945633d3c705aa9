"""A real SMTP server (aiosmtpd) on 127.0.0.1 for tests, around any aiosmtpd handler."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from aiosmtpd import controller as aiosmtpd_controller


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serving(handler: Any, port: int) -> Iterator[Any]:
    """Run ``handler`` as an SMTP server on ``port`` until the block ends."""
    controller = aiosmtpd_controller.Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield handler
    finally:
        controller.stop()
