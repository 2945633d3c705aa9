"""Rendering console pages: one layout (templates/console/base.html) and htmx fragments.

``page`` fills the layout's context (the blog's name, the nav item, the CSRF token and the
``csrf_field()`` global); ``fragment`` renders a partial without the layout. Neither is cached
by the browser: everything shown is the database's current state.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from jinja2 import pass_context
from jinja2.runtime import Context
from markupsafe import Markup

from digest.config import TEMPLATES_DIR
from digest.web.console.session import Operator
from digest.web.deps import get_app

__all__ = ["NAV", "fragment", "page", "templates"]

# (key, path, label): the console's navigation; a page passes its key as ``active``.
NAV: tuple[tuple[str, str, str], ...] = (
    ("dashboard", "/admin", "Dashboard"),
    ("preview", "/admin/next", "Preview"),
    ("send", "/admin/send-now", "Send"),
    ("editions", "/admin/editions", "Editions"),
    ("readers", "/admin/readers", "Readers"),
    ("feeds", "/admin/feeds", "Feeds"),
    ("topics", "/admin/topics", "Topics"),
)
_NO_STORE = {"Cache-Control": "no-store"}

templates = Jinja2Templates(directory=TEMPLATES_DIR)


@pass_context
def _csrf_field(context: Context) -> Markup:
    """The hidden input every console form carries (``{{ csrf_field() }}``)."""
    token = context.get("csrf_token") or ""
    return Markup('<input type="hidden" name="csrf_token" value="{}">').format(token)


templates.env.globals["csrf_field"] = _csrf_field
templates.env.globals["nav"] = NAV


def page(request: Request, template: str, *, operator: Operator | None, active: str,
         status_code: int = 200, **context: Any) -> HTMLResponse:
    """``templates/console/<template>`` inside the console layout.

    ``operator`` is None only on the sign-in page (no nav, no sign-out form).
    """
    settings = get_app(request).settings
    values = {"blog_name": settings.blog_name, "active": active, "operator": operator,
              "csrf_token": operator.csrf_token if operator is not None else "", **context}
    return templates.TemplateResponse(request, f"console/{template}", values,
                                      status_code=status_code, headers=_NO_STORE)


def fragment(request: Request, template: str, **context: Any) -> HTMLResponse:
    """``templates/console/<template>`` alone, for htmx to swap in. Pass ``operator=`` (or
    ``csrf_token=``) when the fragment holds a form."""
    operator = context.get("operator")
    if isinstance(operator, Operator):
        context.setdefault("csrf_token", operator.csrf_token)
    context.setdefault("csrf_token", "")
    return templates.TemplateResponse(request, f"console/{template}", context,
                                      headers=_NO_STORE)
