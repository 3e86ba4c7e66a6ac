"""Prometheus metrics of the service.

With several worker processes, `pgarena serve` sets `PROMETHEUS_MULTIPROC_DIR` before any
worker starts, so each worker writes its values to shared files and `/metrics` sums them:
requests counted by two workers add up to the requests sent.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from pathlib import Path
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.metrics_core import Metric

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

USERS_CREATED = Counter("users_created_total", "Users created through the API.")
REQUESTS = Counter("http_requests_total", "HTTP requests answered.", ["method", "route", "status"])
REQUEST_DURATION = Histogram(
    "http_request_duration_seconds",
    "Time from receiving a request to sending its last byte.",
    ["method", "route", "status"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
# "livesum": in multiprocess mode the gauge is the sum over the workers that are alive.
POOL_IN_USE = Gauge(
    "db_pool_connections_in_use",
    "Database connections checked out of the pool right now.",
    multiprocess_mode="livesum",
)
POOL_MAX = Gauge(
    "db_pool_max_connections",
    "The most connections the pool may open (pool size plus overflow).",
    multiprocess_mode="livesum",
)


class WorkerFiles:
    """prometheus-client's multiprocess collector, minus the files a worker has just created.

    A worker creates its file empty and sizes it a moment later; read in that moment, the
    file fails the whole merge (`struct.error`: prometheus/client_python#1199), and a scrape
    while a worker starts was a 500. An empty file holds no value yet, so it is left out.
    """

    def __init__(self, directory: str) -> None:
        self.directory = Path(directory)

    def collect(self) -> Iterable[Metric]:
        files = []
        for path in self.directory.glob("*.db"):
            with contextlib.suppress(FileNotFoundError):  # a stopped worker's live gauges
                if path.stat().st_size:
                    files.append(str(path))
        return multiprocess.MultiProcessCollector.merge(files, accumulate=True)


def render_metrics() -> tuple[bytes, str]:
    """The Prometheus text exposition of every worker's metrics, and its content type."""
    if directory := os.environ.get(MULTIPROC_ENV):
        registry = CollectorRegistry()
        registry.register(WorkerFiles(directory))
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


def mark_worker_stopped() -> None:
    """Drop this worker's live gauges, so the sums count only running workers."""
    if os.environ.get(MULTIPROC_ENV):
        multiprocess.mark_process_dead(os.getpid())


Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class MetricsMiddleware:
    """Counts and times every HTTP request by route template, method and status.

    A pure ASGI middleware: Starlette's BaseHTTPMiddleware would add a task and a memory
    stream to every request, which is work the request does not need.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_and_note_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note_status)
        finally:
            # The router stores the matched route in the scope; its template ("/users/{id}")
            # keeps the label set small, unlike the raw path.
            route = scope.get("route")
            labels = (scope["method"], getattr(route, "path", "unmatched"), status)
            count, duration = _request_metrics.get(labels) or _add_request_metrics(labels)
            count.inc()
            duration.observe(time.perf_counter() - started)


# The labelled children of REQUESTS and REQUEST_DURATION, by (method, route, status). For
# speed: `.labels()` validates and locks on every call, about 6 us a request; a dict lookup
# is a fraction of that. Routes are templates, so this stays small.
_request_metrics: dict[tuple[str, str, int], tuple[Any, Any]] = {}


def _add_request_metrics(labels: tuple[str, str, int]) -> tuple[Any, Any]:
    method, route, status = labels
    children = (
        REQUESTS.labels(method, route, str(status)),
        REQUEST_DURATION.labels(method, route, str(status)),
    )
    _request_metrics[labels] = children
    return children
