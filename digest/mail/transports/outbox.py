"""Development transport: one standard .eml file per message in a folder."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path

from digest.mail.message import OutgoingMail, Recipient, build_mime


class OutboxTransport:
    """Writes each reader's message to ``<dir>/<stamp>-<hash>.eml`` atomically."""

    max_batch = 1000

    def __init__(self, directory: Path, domain: str) -> None:
        self.directory = directory
        self.domain = domain

    def send_batch(self, mail: OutgoingMail, recipients: Sequence[Recipient]) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        for recipient in recipients:
            msg = build_mime(mail, recipient, self.domain)
            data = bytes(msg)
            digest = hashlib.sha256(recipient.email.encode() + data[:4096]).hexdigest()[:12]
            stamp = str(msg["Message-ID"]).strip("<>").split("@")[0].replace(".", "-")
            target = self.directory / f"{stamp}-{digest}.eml"
            tmp = target.with_suffix(".tmp")
            tmp.write_bytes(data)
            os.replace(tmp, target)

    def close(self) -> None:
        pass
