"""The FastAPI application factory.

Nothing is built at import time: `create_app(settings)` decides the stack, and the
lifespan owns the engine or pool, so tests and servers can build as many apps, on as many
databases, as they like.
"""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio.to_thread
from fastapi import APIRouter, FastAPI

from pgarena import __version__
from pgarena.database import check_database_url
from pgarena.database.urls import url_for
from pgarena.errors import UserError
from pgarena.service.errors import install_invalid_request_handler, install_unavailable_handler
from pgarena.service.health import ControlConnection
from pgarena.service.limits import RequestLimits
from pgarena.service.metrics import MetricsMiddleware, mark_worker_stopped
from pgarena.service.openapi import allowed_methods, document_responses
from pgarena.service.routes import async_api, operations, sync_api, techempower
from pgarena.service.stacks import get_stack
from pgarena.settings import Settings

# The collector's young-generation threshold (CPython's default is 700). It counts container
# objects allocated and not yet freed: 50 requests in flight on an ORM stack hold more than
# 700, so at the default a young collection ran every 10 requests or so, and each walked the
# suspended coroutine frames of every request in flight, which is 6% of the instructions of
# `GET /users/1` on `async` and 5% on `sync` (`benchmarks/instructions.py`). The request
# path makes almost no reference cycles, so the larger generation holds little garbage.
GC_YOUNG_THRESHOLD = 10_000


def create_app(settings: Settings) -> FastAPI:
    """The reference service on `settings.stack`, against `settings.database_url`."""
    if settings.database_url is None:
        raise UserError("no database URL: set DATABASE_URL or use `pgarena serve`")
    check_database_url(settings)
    stack = get_stack(settings.stack)
    implementation = stack.load()
    url = url_for(settings.database_url, stack.url_driver)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if stack.style == "sync":
            # The thread pool that runs the store's calls (anyio's default is 40 threads).
            anyio.to_thread.current_default_thread_limiter().total_tokens = settings.thread_count
        health_url = url_for(settings.database_url or "", "libpq")
        app.state.control = ControlConnection(
            health_url, settings.health_timeout, settings.postgres_application_name
        )
        async with implementation.open_database(settings, url) as database:
            app.state.database = database
            # Everything built so far (modules, the app, the engine or pool) lives as long as
            # the process: moved out of the collector's generations, a full collection no
            # longer walks it. Left in, each full collection under load paused the event
            # loop for tens to hundreds of milliseconds: the async ORM's p99 (issue 15).
            gc.freeze()
            thresholds = gc.get_threshold()
            gc.set_threshold(GC_YOUNG_THRESHOLD, *thresholds[1:])
            try:
                yield
            finally:
                await app.state.control.close()
        # An app stopped in a longer-lived process (tests) leaves it as it found it.
        gc.set_threshold(*thresholds)
        gc.unfreeze()
        mark_worker_stopped()

    app = FastAPI(
        title="pgarena reference service",
        version=__version__,
        summary=f"Stack {stack.name}: {stack.description}.",
        lifespan=lifespan,
        # The service exports Prometheus metrics (service/metrics.py), not OpenTelemetry.
        # FastAPI's native telemetry, left on, asks OpenTelemetry for its global providers
        # on every request (an environment lookup each time): 14% of the CPU samples of
        # /db on the async stack. Off, the check is three dictionary reads.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.settings = settings
    app.state.stack = stack
    # Routes are tried in order: the benchmark's hot paths first (TechEmpower's /json and
    # /plaintext, then the stack's router, which starts with /db), /health and /metrics
    # last. /docs and /openapi.json come before all of them: FastAPI adds them first.
    api = sync_api.router if stack.style == "sync" else async_api.router
    add_routes(app, techempower.router, api, operations.router)
    document_responses(app)
    install_unavailable_handler(app, implementation.UNAVAILABLE)
    install_invalid_request_handler(app, allowed_methods(app))
    # Routes that use no pooled connection skip the deadline and the queue (limits.py).
    exempt = {route.path for route in [*operations.router.routes, *techempower.router.routes]}  # type: ignore[attr-defined]
    exempt |= {"/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json"}
    app.add_middleware(
        RequestLimits,
        max_body_bytes=settings.max_body_bytes,
        deadline=settings.request_deadline,
        threads=settings.thread_count if stack.style == "sync" else None,
        queue_timeout=settings.queue_timeout,
        exempt=exempt,
        # Behind a transaction pooler the pids a driver reports are the pooler's (limits.py).
        cancel=None if settings.transaction_pooler else lambda pids: app.state.control.cancel(pids),
    )
    app.add_middleware(MetricsMiddleware)
    return app


def add_routes(app: FastAPI, *routers: APIRouter) -> None:
    """The routers' routes, in order, in the app's own route table.

    Not `app.include_router`: since FastAPI 0.137 it keeps each included router as a node of
    its own, which every request goes through twice (once to find the router, once to find
    the route in it), checking the router's routes for changes each time. That was 98,000 of
    the 768,000 instructions of async-raw's `/db`, 54,000 of its `/json`'s 360,000 and
    about 200,000 of the async ORM's `GET /users/{id}` (`benchmarks/instructions.py`). These
    routers have nothing of their own to combine with the app's (no prefix, dependencies,
    responses or lifespan), so their routes can be served as they are.

    What this gives up: a route belongs to the router that built it, so
    `app.dependency_overrides` does not reach these routes. The one dependency, the store,
    reads the database from `app.state`, which is where a test puts another one.
    """
    for router in routers:
        # What include_router would have combined with the app's; none is set, keep it so.
        assert not (router.prefix or router.dependencies or router.responses), router
        app.router.routes.extend(router.routes)


def app_from_environment() -> FastAPI:
    """Factory for uvicorn and gunicorn workers: settings from `PGARENA_*` variables."""
    return create_app(Settings())
