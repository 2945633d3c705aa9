"""Error reports to Sentry, off unless DIGEST_SENTRY_DSN is set; readers' addresses scrubbed.

``configure`` is called next to ``logs.configure`` in each shell (the CLI's ``main``, which
also runs ``digest serve``, and the Celery worker and beat's logging set-up), once per
process. Every event passes ``scrub_event`` before it leaves: each string in it, keys
included (message, exception values, local variables of the stack frames, breadcrumbs,
request data, extra), has its addresses masked as the logs do (``logs.mask_addresses``:
``a***@example.org``). Personal data Sentry would add itself (IP, cookies, user) is off.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from digest.logs import mask_addresses

if TYPE_CHECKING:
    from digest.config import Settings

__all__ = ["configure", "scrub", "scrub_event"]

_started: str | None = None  # the DSN this process reports to
_MAX_DEPTH = 50


def scrub(value: Any, depth: int = 0) -> Any:
    """``value`` with the addresses in every string masked, containers walked (keys too)."""
    if isinstance(value, str):
        return mask_addresses(value)
    if depth > _MAX_DEPTH:
        return value
    if isinstance(value, dict):
        return {scrub(k, depth + 1): scrub(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(scrub(v, depth + 1) for v in value)
    if isinstance(value, bytes):
        return mask_addresses(value.decode("utf-8", "replace"))
    return value


def scrub_event(event: dict[str, Any], hint: dict[str, Any] | None = None) -> dict[str, Any]:
    """Sentry's ``before_send``: the event with every address masked."""
    scrubbed: dict[str, Any] = scrub(event)
    return scrubbed


def _scrub_breadcrumb(crumb: dict[str, Any], hint: dict[str, Any] | None = None
                      ) -> dict[str, Any]:
    scrubbed: dict[str, Any] = scrub(crumb)
    return scrubbed


def configure(settings: Settings | None) -> bool:
    """Start reporting to DIGEST_SENTRY_DSN if it is set (once per process); whether on."""
    global _started
    if settings is None or settings.sentry_dsn is None:
        return False
    dsn = settings.sentry_dsn.get_secret_value().strip()
    if not dsn:
        return False
    if _started == dsn:
        return True
    import sentry_sdk

    from digest import __version__

    sentry_sdk.init(
        dsn=dsn,
        environment=settings.sentry_environment,
        release=f"digest@{__version__}",
        send_default_pii=False,
        before_send=scrub_event,  # type: ignore[arg-type]
        before_breadcrumb=_scrub_breadcrumb,
    )
    _started = dsn
    return True
