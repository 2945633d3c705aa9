"""Dependencies shared by every router: the wired App and the admin bearer check."""

from __future__ import annotations

import hmac
import ipaddress
from functools import lru_cache

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from digest.config import Settings
from digest.runtime import App

# Declared as a security scheme so /openapi.json tells clients how to authenticate.
_bearer = HTTPBearer(auto_error=False, description="DIGEST_ADMIN_TOKEN")


def get_app(request: Request) -> App:
    """The App built once at start-up (``create_app`` stores it on ``app.state.digest``)."""
    app: App = request.app.state.digest
    return app


def require_admin(
    request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(_bearer)
) -> None:
    """Admin routes need ``Authorization: Bearer <DIGEST_ADMIN_TOKEN>``, else 401.

    The comparison is constant-time; an unset or empty token disables the admin routes.
    """
    token = get_app(request).settings.admin_token
    given = credentials.credentials.strip() if credentials is not None else ""
    if (
        token is None
        or not token.get_secret_value()
        or not hmac.compare_digest(given.encode(), token.get_secret_value().encode())
    ):
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            detail="admin token required",
            headers={"WWW-Authenticate": "Bearer"},
        )


_IP = ipaddress.IPv4Address | ipaddress.IPv6Address
_NET = ipaddress.IPv4Network | ipaddress.IPv6Network
# A proxy chain longer than this is not a real one; an endless header costs nothing more.
_MAX_HOPS = 32


@lru_cache(maxsize=8)
def _networks(entries: tuple[str, ...]) -> tuple[_NET, ...]:
    return tuple(ipaddress.ip_network(entry, strict=False) for entry in entries)


def _address(text: str) -> _IP | None:
    """An IP from a peer or an X-Forwarded-For entry (``[v6]:port`` and ``v4:port`` too)."""
    text = text.strip()
    if text.startswith("[") and "]" in text:
        text = text[1:text.index("]")]
    elif text.count(":") == 1:
        text = text.partition(":")[0]
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def client_ip(request: Request, settings: Settings) -> str | None:
    """The visitor's IP address, or None if there is no valid one.

    ``X-Forwarded-For`` counts only when the direct peer is in DIGEST_TRUSTED_PROXIES; then
    the right-most address that is not a trusted proxy is the client (anything to its left
    was written by the visitor). A malformed hop stops the walk at the nearest trusted
    address, so a bad header can neither choose the address nor reach the database.
    """
    peer = _address(request.client.host) if request.client else None
    trusted = _networks(tuple(settings.trusted_proxies))
    if peer is None or not any(peer in net for net in trusted):
        return str(peer) if peer is not None else None
    hops = ",".join(request.headers.getlist("x-forwarded-for")).split(",")[-_MAX_HOPS:]
    nearest = peer
    for hop in reversed(hops):
        ip = _address(hop)
        if ip is None:
            break
        if not any(ip in net for net in trusted):
            return str(ip)
        nearest = ip
    return str(nearest)
