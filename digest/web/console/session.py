"""The console's sign-in state: a signed session cookie with its own expiry, and a CSRF token
bound to it.

The cookie holds a random session id, the moment it stops being valid and a mark of the
configured credentials, signed with a key derived from DIGEST_SECRET_KEY for this use only. The
expiry is inside the signed value, so a browser that keeps an old cookie (or someone replaying
one) is refused after DIGEST_ADMIN_SESSION_HOURS whatever the cookie's own Max-Age said; a new
password or token ends every session at once. The CSRF token is an HMAC of the session id under
another derived key: a page can print it, a cross-site form cannot know it.

``signed_in`` guards every console page; ``csrf_checked`` every console POST.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import unquote, urlencode, urlsplit

from fastapi import Depends, HTTPException, Request, status
from fastapi.responses import Response
from itsdangerous import BadSignature, URLSafeSerializer

from digest.config import Settings
from digest.tokens import derived_key
from digest.web.console.credentials import credentials_mark
from digest.web.deps import get_app

__all__ = ["COOKIE", "COOKIE_PATH", "HOME", "SIGN_IN_PATH", "Operator", "csrf_checked",
           "end_session", "local_next", "read_session", "signed_in", "start_session"]

COOKIE = "digest_console"
COOKIE_PATH = "/admin"
HOME = "/admin"
SIGN_IN_PATH = "/admin/sign-in"
_SALT = "digest.console.session"


@dataclass(frozen=True)
class Operator:
    """The signed-in operator, as a page sees them."""

    csrf_token: str
    expires_at: datetime


def _session_key(settings: Settings) -> bytes:
    return derived_key(settings.secret_key.get_secret_value(), "console-session")


def _serializer(settings: Settings) -> URLSafeSerializer:
    return URLSafeSerializer(_session_key(settings), salt=_SALT)


def _csrf_token(settings: Settings, session_id: str) -> str:
    key = derived_key(settings.secret_key.get_secret_value(), "console-csrf")
    return hmac.digest(key, session_id.encode(), "sha256").hex()


def issue(settings: Settings, *, now: datetime) -> tuple[str, Operator]:
    """A new session: (the cookie's value, the operator it signs in)."""
    session_id = secrets.token_urlsafe(18)
    expires = now + timedelta(hours=settings.admin_session_hours)
    value = _serializer(settings).dumps({
        "sid": session_id, "exp": int(expires.timestamp()),
        "cred": credentials_mark(settings, _session_key(settings))})
    return value, Operator(_csrf_token(settings, session_id),
                           datetime.fromtimestamp(int(expires.timestamp()), UTC))


def read_session(settings: Settings, value: str | None, *, now: datetime) -> Operator | None:
    """The operator a cookie signs in, or None (absent, forged, expired, old credentials)."""
    if not value:
        return None
    try:
        data = _serializer(settings).loads(value)
    except BadSignature:
        return None
    if not isinstance(data, dict):
        return None
    session_id, expires, mark = data.get("sid"), data.get("exp"), data.get("cred")
    if not (isinstance(session_id, str) and isinstance(expires, int) and isinstance(mark, str)):
        return None
    if expires <= now.timestamp():
        return None  # past its expiry, whatever the cookie's Max-Age told the browser
    if not hmac.compare_digest(mark, credentials_mark(settings, _session_key(settings))):
        return None  # signed before the password or token changed
    return Operator(_csrf_token(settings, session_id), datetime.fromtimestamp(expires, UTC))


def start_session(response: Response, settings: Settings, *, now: datetime) -> Operator:
    """Sign in: set the session cookie on ``response`` (HttpOnly, SameSite=Strict, /admin)."""
    value, operator = issue(settings, now=now)
    response.set_cookie(COOKIE, value, max_age=int(settings.admin_session_hours * 3600),
                        path=COOKIE_PATH, httponly=True, samesite="strict",
                        secure=settings.base_url.lower().startswith("https://"))
    return operator


def end_session(response: Response, settings: Settings) -> None:
    """Sign out: the browser drops the cookie."""
    response.delete_cookie(COOKIE, path=COOKIE_PATH, httponly=True, samesite="strict",
                           secure=settings.base_url.lower().startswith("https://"))


def local_next(target: str | None) -> str:
    """Where to go after signing in: ``target`` if it is a console path here, else the dashboard.

    Only a plain absolute path under /admin passes (no scheme, no host, no ``//`` or ``\\``), so
    a crafted sign-in link cannot send the operator to another site.
    """
    if not target or any(c in target for c in "\\\r\n\t") or any(ord(c) < 32 for c in target):
        return HOME
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or target.startswith("//"):
        return HOME
    if any(segment in (".", "..") for segment in unquote(parts.path).split("/")):
        return HOME  # a browser would resolve it to a path outside the console
    if parts.path != HOME and not parts.path.startswith(HOME + "/"):
        return HOME
    if parts.path == SIGN_IN_PATH:
        return HOME
    return parts.path + (f"?{parts.query}" if parts.query else "")


def now_utc() -> datetime:
    """The time the web shell reads (services get it passed in)."""
    return datetime.now(UTC)


def signed_in(request: Request) -> Operator:
    """Dependency of every console page: the operator, else a redirect to sign in (GET, HEAD)
    or 403 (anything else; for htmx, 403 with ``HX-Redirect`` to the sign-in page)."""
    settings = get_app(request).settings
    operator = read_session(settings, request.cookies.get(COOKIE), now=now_utc())
    if operator is not None:
        return operator
    if request.headers.get("hx-request") == "true":
        # htmx would follow a redirect and swap the sign-in page into a fragment: it is told
        # to load the sign-in page instead, coming back to the page the fragment was on.
        shown = urlsplit(request.headers.get("hx-current-url", ""))
        back = shown.path + (f"?{shown.query}" if shown.query else "")
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail="sign in to the console first",
                            headers={"HX-Redirect": _sign_in_url(local_next(back))})
    if request.method in ("GET", "HEAD"):
        here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise HTTPException(status.HTTP_303_SEE_OTHER, detail="sign in to the console first",
                            headers={"Location": _sign_in_url(here)})
    raise HTTPException(status.HTTP_403_FORBIDDEN, detail="sign in to the console first")


def _sign_in_url(back: str) -> str:
    return f"{SIGN_IN_PATH}?{urlencode({'next': back})}"


async def csrf_checked(request: Request, operator: Operator = Depends(signed_in)) -> Operator:
    """Dependency of every console POST: signed in, and the form's ``csrf_token`` matches the
    session's (urlencoded or multipart); 403 otherwise, before anything is changed."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    given = ""
    if content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        form = await request.form()  # cached on the request: the route reads it again for free
        value = form.get("csrf_token")
        given = value if isinstance(value, str) else ""
    if not given or not hmac.compare_digest(given.encode(), operator.csrf_token.encode()):
        raise HTTPException(status.HTTP_403_FORBIDDEN,
                            detail="the form's security token is missing or wrong; reload the "
                                   "page and try again")
    return operator
