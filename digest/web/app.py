"""The FastAPI application: middleware, routers and the wired App, assembled once.

Routers from other parts of the service (archive, WebSub, delivery/admin) are included when
their module is present, so each part can be developed and deployed on its own.
"""

from __future__ import annotations

import importlib
import logging

from fastapi import APIRouter, FastAPI
from fastapi.middleware.cors import CORSMiddleware

from digest.ratelimit import RateLimiter
from digest.web import readers, subscribers_admin
from digest.web.limits import DEFAULT_LIMIT, BodySizeLimit
from digest.wiring import App, build

__all__ = ["OPTIONAL_ROUTERS", "create_app"]

log = logging.getLogger(__name__)

OPTIONAL_ROUTERS = ("digest.web.archive", "digest.web.websub", "digest.web.delivery")
ADMIN_UPLOAD_LIMIT = 20 * 1024 * 1024  # CSV imports: ~200,000 addresses
WEBHOOK_LIMIT = 5 * 1024 * 1024  # SendGrid posts up to a few MB of events at once


def _optional_router(module_name: str) -> APIRouter | None:
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        if exc.name != module_name:
            raise
        log.info("%s is not installed; its routes are off", module_name)
        return None
    router: APIRouter = module.router
    return router


def create_app(app: App | None = None, *, limiter: RateLimiter | None = None) -> FastAPI:
    """The web app for ``app`` (built from the settings when None)."""
    digest_app = app or build()
    settings = digest_app.settings
    api = FastAPI(title=f"{settings.blog_name} digest",
                  description="Newsletter digest: sign up, confirm, unsubscribe, archive, admin.",
                  docs_url=None, redoc_url=None)
    api.state.digest = digest_app
    api.state.limiter = limiter or RateLimiter(settings.rate_limit_url)
    api.add_middleware(CORSMiddleware, allow_origins=list(settings.cors_origins),
                       allow_methods=["GET", "POST"], allow_headers=["Content-Type"],
                       allow_credentials=False, max_age=600)
    api.add_middleware(BodySizeLimit, default=DEFAULT_LIMIT,
                       prefixes={"/admin/": ADMIN_UPLOAD_LIMIT, "/webhooks/": WEBHOOK_LIMIT})

    @api.get("/healthz", tags=["ops"], summary="Liveness: the process answers")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    api.include_router(readers.router)
    api.include_router(subscribers_admin.router)
    for name in OPTIONAL_ROUTERS:
        router = _optional_router(name)
        if router is not None:
            api.include_router(router)
    return api
