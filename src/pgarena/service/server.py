"""`pgarena serve`: prepare the database, then run the service under an ASGI server."""

from __future__ import annotations

import errno
import os
import shutil
import socket
import tempfile

import uvicorn
from rich.console import Console

from pgarena.database import ensure_database
from pgarena.database.urls import redact
from pgarena.errors import UserError
from pgarena.service.metrics import MULTIPROC_ENV
from pgarena.service.stacks import get_stack
from pgarena.settings import Settings

console = Console(stderr=True)


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


def describe(settings: Settings) -> str:
    """The start-up banner: every setting that shapes what is being measured."""
    stack = get_stack(settings.stack)
    threads = f", {settings.thread_count} threads" if stack.style == "sync" else ""
    return (
        f"pgarena serving stack [bold]{stack.name}[/] ({stack.description})\n"
        f"  http://{settings.host}:{settings.port}"
        f"  uvicorn, {settings.workers} worker(s){threads}\n"
        f"  pool {settings.pool_size} + {settings.max_overflow} overflow per worker\n"
        f"  database {redact(settings.database_url or '')}"
    )


def serve(settings: Settings) -> None:
    """Start PostgreSQL if needed, migrate, and serve until interrupted."""
    stack = get_stack(settings.stack)
    check_port_free(settings.host, settings.port)
    settings = settings.model_copy(update={"database_url": ensure_database(settings)})
    if stack.style == "sync" and settings.thread_count > settings.max_connections:
        console.print(
            f"[yellow]warning:[/] {settings.thread_count} threads share "
            f"{settings.max_connections} connections: requests will queue for the pool"
        )
    os.environ.update(settings_environment(settings))
    multiproc_dir = None
    if settings.workers > 1:
        # Set before any worker imports prometheus_client, so every worker writes to it.
        multiproc_dir = tempfile.mkdtemp(prefix="pgarena-metrics-")
        os.environ[MULTIPROC_ENV] = multiproc_dir
    console.print(describe(settings))
    try:
        uvicorn.run(
            "pgarena.service.app:app_from_environment",
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
    finally:
        if multiproc_dir:
            shutil.rmtree(multiproc_dir, ignore_errors=True)
