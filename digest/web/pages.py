"""The site's pages for readers: one layout, result pages with a next step, errors as pages."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import HTMLResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from digest.config import TEMPLATES_DIR
from digest.errors import SubscriberError
from digest.readers import mails as reader_mail
from digest.web.deps import get_app

templates = Jinja2Templates(directory=TEMPLATES_DIR / "web")


def sentence(text: str) -> str:
    """Reader-facing copy from an error message: capitalised, ending in a full stop."""
    text = text.strip()
    if not text:
        return text
    text = text[0].upper() + text[1:]
    return text if text[-1] in ".!?" else text + "."


def render_page(request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
    app = get_app(request)
    settings = app.settings
    blog = reader_mail.blog_url(app)
    context = {"blog_name": settings.blog_name, "postal_address": settings.postal_address,
               "blog_url": blog, "action": request.url.path,
               "cadence": reader_mail.how_often(settings), **context}
    return templates.TemplateResponse(request, name, context, status_code=status)


def next_links(request: Request, *kinds: str) -> list[tuple[str, str]]:
    """Onward links for a result page: the blog, the archive, the sign-up page."""
    app = get_app(request)
    found = []
    for kind in kinds:
        if kind == "blog" and (blog := reader_mail.blog_url(app)):
            found.append((blog, f"Back to {app.settings.blog_name}"))
        elif kind == "archive":
            found.append(("/archive", "Read past digests"))
        elif kind == "signup":
            found.append(("/", "Sign up with another address"))
        elif kind == "signup-again":
            found.append(("/", "Sign up again"))
    return found


def message_page(request: Request, title: str, *paragraphs: str, status: int = 200,
             headers: dict[str, str] | None = None, links: tuple[str, ...] = ("blog", "archive"),
             **context: Any) -> HTMLResponse:
    is_error = status >= 400
    response = render_page(request, "message.html", status, title=title, paragraphs=paragraphs,
                     is_error=is_error, error=is_error, next_links=next_links(request, *links),
                     **context)
    response.headers.update(headers or {})
    return response


def error_page(request: Request, status: int, title: str, *paragraphs: str) -> HTMLResponse:
    """A reader-facing error as one of the site's pages (for browsers, not API clients)."""
    return message_page(request, title, *paragraphs, status=status,
                    links=("blog", "archive", "signup-again"))


def bad_link_page(request: Request, exc: SubscriberError) -> HTMLResponse:
    return message_page(request, "This link does not work", sentence(str(exc)), status=400,
                    links=("blog", "archive", "signup-again"))


_ERROR_TITLES = {404: "Page not found", 405: "This page cannot do that"}


async def http_error(request: Request, exc: Exception) -> Response:
    """Unknown pages and other HTTP errors: a site page for browsers, JSON for API clients."""
    if not isinstance(exc, HTTPException):
        raise exc
    accepts_html = "text/html" in request.headers.get("accept", "")
    if not accepts_html or exc.status_code not in _ERROR_TITLES:
        return await http_exception_handler(request, exc)
    return await run_in_threadpool(
        error_page, request, exc.status_code, _ERROR_TITLES[exc.status_code],
        "There is nothing at this address. The links below lead back to the blog.")
