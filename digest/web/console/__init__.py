"""The operator's console: server-rendered pages under /admin for a browser.

Each page module has a ``router``; ``ROUTERS`` is what ``digest.web.app`` includes. Every page
depends on ``session.signed_in`` and every POST on ``session.csrf_checked``; pages render with
``render.page`` / ``render.fragment``. The JSON API under /admin (bearer token) is
``digest.web.admin`` and stays as it is. htmx 2.0.11 is vendored in ``static/`` with its
licence (Zero-Clause BSD).
"""

from __future__ import annotations

from fastapi import APIRouter

from digest.web.console import (
    assets,
    auth,
    dashboard,
    editions,
    feeds,
    imports,
    preview,
    readers,
    sends,
    topics,
)

__all__ = ["ROUTERS"]

ROUTERS: list[APIRouter] = [
    assets.router,
    auth.router,
    dashboard.router,
    preview.router,
    sends.router,
    editions.router,
    readers.router,
    imports.router,
    feeds.router,
    topics.router,
]
