"""An edition rendered with only some of its posts, once per worker process.

Readers who follow some topics, or already received some posts elsewhere, get a variant of
the edition (``received.render_variant``). Readers fall into few distinct sets of posts (a
million readers in 16 topic combinations: 16 variants), so each set is rendered once per
process and kept in a small LRU keyed by (edition id, posts; its creation time too, so a database
started afresh in the same process never sees another's variant) for the batches that follow.
An edition's posts never change once claimed, so a kept variant is never stale.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from sqlalchemy.orm import Session

from digest.config import Settings
from digest.delivery.received import render_variant
from digest.mail.render import RenderedEdition
from digest.store.models import Edition

__all__ = ["VariantCache", "variant_of", "variants"]


class VariantCache:
    """A bounded, thread-safe LRU of rendered variants."""

    def __init__(self, size: int = 64) -> None:
        self.size = size
        self.renders = 0  # how many variants this cache rendered (for tests and logs)
        self._items: OrderedDict[tuple[int, str, frozenset[int]], RenderedEdition] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, session: Session, settings: Settings, edition: Edition,
            posts: frozenset[int]) -> RenderedEdition:
        """The variant of ``edition`` holding ``posts``, rendered if not kept."""
        key = (int(edition.id), str(edition.created_at), posts)
        with self._lock:
            found = self._items.get(key)
            if found is not None:
                self._items.move_to_end(key)
                return found
        rendered = render_variant(session, settings, edition, posts)
        with self._lock:
            self.renders += 1
            self._items[key] = rendered
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return rendered

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self.renders = 0


variants = VariantCache()


def variant_of(session: Session, settings: Settings, edition: Edition,
               posts: frozenset[int]) -> RenderedEdition:
    """The process-wide cached variant of ``edition`` holding ``posts``."""
    return variants.get(session, settings, edition, posts)
