"""Probes for orchestrators: ``/readyz`` asks ``delivery.health`` and reports what it found.

Like ``/healthz`` it answers any Host (``security.PROBE_PATHS``) and needs no token, so a
container health check can call ``http://127.0.0.1:8000/readyz``.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from digest.delivery.health import Readiness, readiness
from digest.runtime import App
from digest.web.deps import get_app

__all__ = ["router"]

router = APIRouter(tags=["ops"])

_NOT_READY = {"description": "Something this service needs is down; `problems` names each "
                             "and what to do",
              "content": {"application/json": {"example": {
                  "status": "not ready",
                  "checks": {"database": "down", "broker": "reachable (Redis)",
                             "redis": "reachable", "beat": "down"},
                  "problems": {"beat": "no heartbeat for 14 min: is `celery -A worker beat` "
                                       "running?"}}}}}


def _body(found: Readiness) -> dict[str, Any]:
    checks = {name: check.detail if check.ok is not False else "down"
              for name, check in found.checks.items()}
    if found.ready:
        return {"status": "ready", "checks": checks}
    return {"status": "not ready", "checks": checks, "problems": found.problems}


@router.get("/readyz", summary="Readiness: database migrated, broker, Redis and beat running",
            responses={503: _NOT_READY})
def readyz(app: App = Depends(get_app)) -> JSONResponse:
    found = readiness(app)
    return JSONResponse(_body(found), status_code=200 if found.ready else 503,
                        headers={"Cache-Control": "no-store"})
