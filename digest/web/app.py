"""The FastAPI application: middleware, routers and the wired App, assembled once."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from digest.ratelimit import RateLimiter
from digest.web import archive, delivery, readers, subscribers_admin, websub
from digest.web.limits import DEFAULT_LIMIT, BodySizeLimit
from digest.wiring import App, build

__all__ = ["create_app"]

ADMIN_UPLOAD_LIMIT = 20 * 1024 * 1024  # CSV imports: ~200,000 addresses
WEBHOOK_LIMIT = 5 * 1024 * 1024  # SendGrid posts up to a few MB of events at once


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
                       prefixes={"/admin/": ADMIN_UPLOAD_LIMIT, "/webhooks/": WEBHOOK_LIMIT,
                                 "/websub/": settings.fetch_max_bytes})

    @api.get("/healthz", tags=["ops"], summary="Liveness: the process answers")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    for module in (readers, subscribers_admin, archive, websub, delivery):
        api.include_router(module.router)
    return api
