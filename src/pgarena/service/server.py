"""`pgarena serve`: prepare the database, then run the service under an ASGI server.

Three servers, chosen with `--server`:
  - `uvicorn` with uvloop and httptools (uvicorn's own supervisor for several workers);
  - `gunicorn` as process manager with uvicorn workers (the `uvicorn-worker` package: the
    `uvicorn.workers` module is deprecated);
  - `granian`, the Rust HTTP server, on its ASGI interface.
uvicorn comes with every install; gunicorn and granian with the `servers` extra, and each
server's package is imported only when that server runs.

Every worker builds its own app through `app_from_environment` after it has been forked or
spawned, so engines and pools are never shared between processes. With several workers,
Prometheus runs in multiprocess mode: each worker writes its metrics to files in one
directory and `/metrics` adds them up, whichever worker answers.
"""

from __future__ import annotations

import errno
import importlib.util
import os
import shutil
import socket
import sys
import tempfile
from collections.abc import Callable
from typing import Any, Literal, get_args

from rich.console import Console

from pgarena.database import check_database_url, ensure_database
from pgarena.database.seed import fill_techempower_tables
from pgarena.database.urls import redact
from pgarena.errors import UserError
from pgarena.service.stacks import get_stack
from pgarena.settings import Settings

# Deliberately not imported from `pgarena.service.metrics`: importing prometheus_client
# fixes its value class for the whole process, and gunicorn and granian fork their workers
# from this one. It must see this variable set first, or each worker would count alone.
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
APP_FACTORY = "pgarena.service.app:app_from_environment"

Server = Literal["uvicorn", "gunicorn", "granian"]
SERVERS: tuple[str, ...] = get_args(Server)

console = Console(stderr=True, soft_wrap=True)  # a log line per banner line


def check_port_free(host: str, port: int) -> None:
    """Fail with one line, before any work, when the address is taken."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                raise UserError(f"port {port} on {host} is already in use") from None
            raise UserError(f"cannot listen on {host}:{port}: {error.strerror}") from None


def settings_environment(settings: Settings) -> dict[str, str]:
    """`settings` as `PGARENA_*` variables, the way worker processes receive them."""
    return {
        f"PGARENA_{name.upper()}": str(value)
        for name, value in settings.model_dump().items()
        if value is not None
    }


# The packages (pip name, top-level module) each server needs beyond the core install.
SERVER_PACKAGES: dict[str, tuple[tuple[str, str], ...]] = {
    "uvicorn": (),
    "gunicorn": (("gunicorn", "gunicorn"), ("uvicorn-worker", "uvicorn_worker")),
    "granian": (("granian", "granian"),),
}


def check_server(server: str) -> None:
    """A one-line `UserError` unless `server` is known and its packages are installed."""
    if server not in SERVERS:
        raise UserError(f"unknown server {server!r}; choose one of: {', '.join(SERVERS)}")
    missing = [name for name, module in SERVER_PACKAGES[server] if not _installed(module)]
    if missing:
        raise UserError(
            f"server {server!r} needs {' and '.join(missing)}: pip install 'pgarena[servers]'"
        )


def _installed(module: str) -> bool:
    """Whether a top-level module can be imported, found without importing it."""
    return importlib.util.find_spec(module) is not None


SERVER_DESCRIPTIONS: dict[str, str] = {
    "uvicorn": "uvicorn (uvloop, httptools)",
    "gunicorn": "gunicorn with uvicorn workers (uvloop, httptools)",
    "granian": "granian (ASGI, uvloop)",
}


def describe(settings: Settings, server: str = "uvicorn") -> str:
    """The start-up banner: every setting that shapes what is being measured."""
    stack = get_stack(settings.stack)
    threads = f", {settings.thread_count} threads each" if stack.style == "sync" else ""
    metrics = "summed over workers" if settings.workers > 1 else "single process"
    return (
        f"pgarena serving stack [bold]{stack.name}[/] ({stack.description})\n"
        f"  http://{settings.host}:{settings.port}\n"
        f"  {SERVER_DESCRIPTIONS[server]}, {settings.workers} worker(s){threads}\n"
        f"  pool {settings.pool_size} + {settings.max_overflow} overflow per worker, "
        f"{settings.pool_timeout:g} s timeout\n"
        f"  metrics {metrics}\n"
        f"  database {redact(settings.database_url or '')}"
        + (" (transaction pooler: no prepared statements)" if settings.transaction_pooler else "")
    )


def serve(settings: Settings, server: str = "uvicorn", pooler: str | None = None) -> None:
    """Start PostgreSQL if needed, migrate, fill the TechEmpower tables if they are empty,
    and serve until interrupted; with `pooler` ("pgbouncer"), through a PgBouncer started
    in front of the database in transaction mode."""
    from pgarena.database.pgbouncer import check_pooler

    check_pooler(pooler)
    check_server(server)
    stack = get_stack(settings.stack)
    stack.check_installed()
    check_database_url(settings)
    check_port_free(settings.host, settings.port)
    settings = settings.model_copy(update={"database_url": ensure_database(settings)})
    assert settings.database_url is not None
    if fill_techempower_tables(settings.database_url):
        console.print("filled the TechEmpower tables world and fortune")
    if stack.style == "sync" and settings.thread_count > settings.max_connections:
        console.print(
            f"[yellow]warning:[/] {settings.thread_count} threads share "
            f"{settings.max_connections} connections: requests will queue for the pool"
        )
    if pooler is None:
        _serve(settings, server)
        return
    from pgarena.database.pgbouncer import pgbouncer

    with pgbouncer(
        settings.database_url, statement_timeout_ms=settings.statement_timeout_ms
    ) as url:
        console.print(f"PgBouncer (transaction mode) at {redact(url)}")
        _serve(
            settings.model_copy(update={"database_url": url, "transaction_pooler": True}), server
        )


def _serve(settings: Settings, server: str) -> None:
    os.environ.update(settings_environment(settings))
    metrics_dir = None
    if settings.workers > 1:
        if "prometheus_client" in sys.modules:
            raise RuntimeError("prometheus_client was imported before multiprocess mode was set")
        metrics_dir = tempfile.mkdtemp(prefix="pgarena-metrics-")
        os.environ[MULTIPROC_ENV] = metrics_dir
    console.print(describe(settings, server))
    try:
        RUNNERS[server](settings)
    finally:
        if metrics_dir:
            shutil.rmtree(metrics_dir, ignore_errors=True)


def run_uvicorn(settings: Settings) -> None:
    import uvicorn

    uvicorn.run(
        APP_FACTORY,
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        loop="uvloop",
        http="httptools",
        # One log line per request costs more than some endpoints; errors still log.
        access_log=False,
        log_level="warning",
    )


def run_gunicorn(settings: Settings) -> None:
    from gunicorn.app.base import BaseApplication
    from uvicorn_worker import UvicornWorker

    class Worker(UvicornWorker):
        # Named, not "auto": the banner says what runs. No access log, as with uvicorn.
        CONFIG_KWARGS: dict[str, Any] = {  # noqa: RUF012
            "loop": "uvloop",
            "http": "httptools",
            "access_log": False,
        }

    class Application(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            options = {
                "bind": [f"{settings.host}:{settings.port}"],
                "workers": settings.workers,
                "worker_class": Worker,
                "keepalive": 5,  # uvicorn's default; gunicorn's 2 s would close more
                "loglevel": "warning",
                "accesslog": None,
                "child_exit": child_exit,
                "proc_name": f"pgarena-{settings.stack}",
            }
            for name, value in options.items():
                self.cfg.set(name, value)

        def load(self) -> Any:
            # Runs in each worker after the fork: the app, and later its pool, are its own.
            from pgarena.service.app import app_from_environment

            return app_from_environment()

    Application().run()


def child_exit(server: Any, worker: Any) -> None:
    """gunicorn hook, in the arbiter: a dead worker's live gauges must stop counting."""
    if os.environ.get(MULTIPROC_ENV):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)


def run_granian(settings: Settings) -> None:
    from granian import Granian
    from granian.constants import Interfaces, Loops
    from granian.log import LogLevels

    Granian(
        APP_FACTORY,
        factory=True,
        address=settings.host,
        port=settings.port,
        interface=Interfaces.ASGI,
        workers=settings.workers,
        loop=Loops.uvloop,
        log_level=LogLevels.warning,
        log_access=False,
    ).serve()


RUNNERS: dict[str, Callable[[Settings], None]] = {
    "uvicorn": run_uvicorn,
    "gunicorn": run_gunicorn,
    "granian": run_granian,
}
