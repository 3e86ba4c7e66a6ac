"""Routes every stack shares: the health check and the Prometheus metrics.

They are `async def` on every stack because they are infrastructure, not what is being
measured: the health check must answer within its timeout even when the thread pool of a
sync stack is saturated or a database call hangs.
"""

from __future__ import annotations

import logging

import anyio
from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from pgarena.service.metrics import render_metrics

log = logging.getLogger("pgarena.service")
router = APIRouter(tags=["operations"])


@router.get("/health", responses={503: {"description": "The database does not answer"}})
async def health(request: Request) -> JSONResponse:
    """200 `{"status": "ok"}` when the database answers `SELECT 1` in time, else 503."""
    state = request.app.state
    try:
        with anyio.fail_after(state.settings.health_timeout):
            if state.stack.style == "sync":
                await anyio.to_thread.run_sync(state.database.ping, abandon_on_cancel=True)
            else:
                await state.database.ping()
    except Exception as error:  # any failure, timeout included, means "not healthy"
        log.warning("health check failed: %s", type(error).__name__)
        return JSONResponse({"status": "unavailable"}, status_code=503)
    return JSONResponse({"status": "ok"})


@router.get("/metrics", include_in_schema=False)
async def metrics() -> Response:
    body, content_type = render_metrics()
    return Response(body, media_type=content_type)
