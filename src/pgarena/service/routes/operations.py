"""Routes every stack shares: the health check and the Prometheus metrics.

They are `async def` on every stack because they are infrastructure, not what is being
measured: the health check must answer within its timeout even when the thread pool of a
sync stack is saturated or a database call hangs. It uses a connection of its own
(`service/health.py`), never the requests' pool, and the request limits exempt it.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from pgarena.service.errors import RETRY_AFTER_S
from pgarena.service.metrics import render_metrics

router = APIRouter(tags=["operations"])


@router.get("/health", responses={503: {"description": "The database does not answer"}})
async def health(request: Request) -> JSONResponse:
    """200 `{"status": "ok"}` when the database answers `SELECT 1` in time, else 503.

    Busy is not unhealthy: the check has its own connection, so a full pool or a full
    thread pool does not make it fail."""
    if not await request.app.state.control.check():
        return JSONResponse(
            {"status": "unavailable"},
            status_code=503,
            headers={"Retry-After": str(RETRY_AFTER_S)},
        )
    return JSONResponse({"status": "ok"})


@router.get("/metrics", include_in_schema=False)
async def metrics() -> Response:
    body, content_type = render_metrics()
    return Response(body, media_type=content_type)
