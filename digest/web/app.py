"""The FastAPI application: middleware, routers and the wired App, assembled once."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from starlette.exceptions import HTTPException as StarletteHTTPException

from digest import sentry
from digest.bootstrap import build
from digest.delivery.alerts_watch import AlertWatch
from digest.readers.ratelimit import RateLimiter
from digest.runtime import App
from digest.tokens import derived_key
from digest.web import (
    admin,
    admin_readers,
    archive,
    health,
    metrics,
    pages,
    preferences,
    reader_assets,
    readers,
    websub,
)
from digest.web.console import ROUTERS as CONSOLE_ROUTERS
from digest.web.jobs import CeleryJobs, InlineJobs, ReaderJobs
from digest.web.limits import DEFAULT_LIMIT, BodySizeLimit
from digest.web.security import HostCheck, SecurityHeaders, allowed_hosts

__all__ = ["create_app"]

ADMIN_UPLOAD_LIMIT = 20 * 1024 * 1024  # CSV imports: ~200,000 addresses
WEBHOOK_LIMIT = 5 * 1024 * 1024  # SendGrid posts up to a few MB of events at once
# Answers any route can give for bad input, documented once so /openapi.json lists them.
COMMON_RESPONSES: dict[int | str, dict[str, str]] = {
    400: {"description": "Malformed request, an invalid link, or a host name this service "
                         "does not answer for"},
    404: {"description": "No such page, edition or subscription"},
    413: {"description": "Request body too large"},
    429: {"description": "Too many requests; the Retry-After header says when to try again"},
}


def reader_jobs(app: App) -> ReaderJobs:
    """Where readers' mails go, as DIGEST_DISPATCH says (see ``digest.web.jobs``)."""
    if app.settings.dispatch == "celery":
        from digest.tasks import make_celery

        return CeleryJobs(make_celery(app.settings).send_task,
                          fallback=InlineJobs(app, workers=2))
    return InlineJobs(app)


def create_app(app: App | None = None, *, limiter: RateLimiter | None = None,
               jobs: ReaderJobs | None = None, watch_alerts: bool = False) -> FastAPI:
    """The web app for ``app`` (built from the settings when None). ``watch_alerts``
    (``digest serve``) also checks for operator alerts every five minutes while it runs."""
    digest_app = app or build()
    settings = digest_app.settings
    sentry.configure(settings)  # once per process; `digest serve` has done it already
    dispatcher = jobs or reader_jobs(digest_app)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        watch = AlertWatch(digest_app).start() if watch_alerts else None
        yield
        if watch is not None:
            watch.stop()
        dispatcher.close()  # queued confirmation mails still go out on a graceful stop

    api = FastAPI(title=f"{settings.blog_name} digest",
                  description="Newsletter digest: sign up, confirm, unsubscribe, archive, admin.",
                  docs_url=None, redoc_url=None, lifespan=lifespan)
    api.state.digest = digest_app
    api.state.limiter = limiter or RateLimiter(
        settings.rate_limit_url,
        key=derived_key(settings.secret_key.get_secret_value(), "rate-limit"))
    api.state.jobs = dispatcher
    api.add_middleware(CORSMiddleware, allow_origins=list(settings.cors_origins),
                       allow_methods=["GET", "POST"], allow_headers=["Content-Type"],
                       allow_credentials=False, max_age=600)
    api.add_middleware(BodySizeLimit, default=DEFAULT_LIMIT,
                       prefixes={"/admin/": ADMIN_UPLOAD_LIMIT, "/webhooks/": WEBHOOK_LIMIT,
                                 "/websub/": settings.fetch_max_bytes})
    # Outermost last: a foreign Host is refused before anything else, with the headers too.
    api.add_middleware(HostCheck, hosts=allowed_hosts(settings))
    api.add_middleware(SecurityHeaders, settings=settings)

    @api.get("/healthz", tags=["ops"], summary="Liveness: the process answers")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    api.include_router(health.router)
    api.include_router(metrics.router)
    api.include_router(reader_assets.router)
    for module in (readers, preferences, admin_readers, archive, websub, admin):
        api.include_router(module.router, responses=COMMON_RESPONSES)
    for router in CONSOLE_ROUTERS:  # the operator's console: pages, not part of the API schema
        api.include_router(router)
    # Readers' browsers get the site's own page for an unknown address; API clients keep JSON.
    api.add_exception_handler(StarletteHTTPException, pages.http_error)
    return api
