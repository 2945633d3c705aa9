"""``GET /metrics``: the Prometheus text format, for a bearer of the metrics token.

The token is DIGEST_METRICS_TOKEN, else DIGEST_ADMIN_TOKEN; with neither the route is off
(404). No credentials: 401; wrong ones: 403. Counts come from every process writing to
``PROMETHEUS_MULTIPROC_DIR`` (this web app's and the workers' on this host) or, without it,
from this process alone; the gauges are read from the database and Redis
(``delivery.gauges``). Like the probes it answers any Host (``security.PROBE_PATHS``), so
Prometheus can scrape ``web:8000`` inside the compose network.
"""

from __future__ import annotations

import hmac

from fastapi import APIRouter, Depends, HTTPException, Request, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from digest.delivery.gauges import Gauges
from digest.metrics import CONTENT_TYPE, render, scrape_token
from digest.web.deps import get_app

__all__ = ["router"]

router = APIRouter(tags=["ops"])
_bearer = HTTPBearer(auto_error=False,
                     description="DIGEST_METRICS_TOKEN (else DIGEST_ADMIN_TOKEN)")


def require_metrics_token(
    request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(_bearer)
) -> None:
    """404 when no token is configured, 401 without a bearer token, 403 with a wrong one."""
    token = scrape_token(get_app(request).settings)
    if token is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND,
                            detail="metrics are off: set DIGEST_METRICS_TOKEN")
    if credentials is None or not credentials.credentials.strip():
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, detail="metrics token required",
                            headers={"WWW-Authenticate": "Bearer"})
    if not hmac.compare_digest(credentials.credentials.strip().encode(), token.encode()):
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail="wrong metrics token")


def _gauges(request: Request) -> Gauges:
    """This web app's gauges, made on the first scrape and kept (with their cache)."""
    gauges: Gauges | None = getattr(request.app.state, "metrics_gauges", None)
    if gauges is None:
        gauges = request.app.state.metrics_gauges = Gauges(get_app(request))
    return gauges


@router.get("/metrics", summary="Prometheus metrics (bearer DIGEST_METRICS_TOKEN)",
            dependencies=[Depends(require_metrics_token)],
            responses={200: {"content": {"text/plain": {}}},
                       401: {"description": "No bearer token"},
                       403: {"description": "Wrong token"},
                       404: {"description": "No metrics or admin token is set: metrics are off"}},
            response_class=Response)
async def metrics(request: Request) -> Response:
    """Counters of every process on this host, and the state read from the database."""
    gauges = _gauges(request)
    body = await run_in_threadpool(lambda: render(gauges.families()))
    return Response(body, media_type=CONTENT_TYPE)
