"""What every service receives: the settings and the resources built from them.

``bootstrap.build`` makes one ``App`` per process (CLI command, web app, worker); services
take it as their first argument and use only what they need. Nothing here reads the
environment or opens a connection; the types of the ports (transport, dispatch) are only
named here, and filled in by the composition root.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy import Engine

from digest.config import Settings
from digest.store.sessions import SessionFactory
from digest.tokens import Tokens, derived_key

if TYPE_CHECKING:
    from digest.mail.transports.base import Transport

__all__ = ["App", "Dispatch"]

Dispatch = Callable[[Sequence[str]], None]  # hands ledger batch ids to whoever sends them


def _no_dispatch(batch_ids: Sequence[str]) -> None:
    raise RuntimeError("this App has no dispatcher; build it with bootstrap.build()")


@dataclass
class App:
    """Settings, database, link tokens, and the ports a send goes through."""

    settings: Settings
    engine: Engine
    sessions: SessionFactory
    tokens: Tokens
    transport_factory: Callable[[], Transport] = field(repr=False)
    dispatch: Dispatch = field(default=_no_dispatch, repr=False)
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False)

    def transport(self) -> Transport:
        """A new transport (the caller closes it)."""
        return self.transport_factory()

    @property
    def address_key(self) -> bytes:
        """The key of the address hashes (``readers.addresses.email_hash``), from SECRET_KEY."""
        return derived_key(self.settings.secret_key.get_secret_value(), "address-hash")
