"""Servers under test: one `pgarena serve` process, started, health-checked and stopped.

Each server runs in its own session (process group), so stopping it reaches every worker
and a Ctrl-C in the terminal reaches the harness, which then stops the server itself. On
Linux the server is also told to die with the harness, so a killed run leaves no server.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from pgarena.processes import die_with_parent, free_port
from pgarena.settings import Settings

HEALTH_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 10.0
FILL_HOLD_MS = 200  # how long each request that fills a new server's pool holds a connection


class ServerFailed(Exception):
    """The server could not be started, or died; the message says why, in one line."""


@dataclass(frozen=True)
class ServerOptions:
    """`pgarena serve` options shared by every server of a run (None: serve's default)."""

    workers: int | None = None
    threads: int | None = None
    pool_size: int | None = None
    max_overflow: int | None = None
    server: str | None = None  # uvicorn | gunicorn | granian
    transaction_pooler: bool = False  # the database URL is a pooler's in transaction mode
    # Further settings of serve, as its environment: (("PGARENA_REQUEST_DEADLINE", "0"),).
    environment: tuple[tuple[str, str], ...] = ()

    def arguments(self) -> list[str]:
        """The options as `pgarena serve` arguments."""
        arguments: list[str] = []
        for flag, value in (
            ("--workers", self.workers),
            ("--threads", self.threads),
            ("--pool-size", self.pool_size),
            ("--max-overflow", self.max_overflow),
            ("--server", self.server),
        ):
            if value is not None:
                arguments += [flag, str(value)]
        return arguments

    def effective(self) -> dict[str, Any]:
        """What every `pgarena serve` of the run used: the options given, else serve's
        defaults (resolved by the same Settings class). Options serve rejects are recorded
        as given."""
        given = {
            "pool_size": self.pool_size,
            "max_overflow": self.max_overflow,
            "threads": self.threads,
            "workers": self.workers,
        }
        chosen = {name: value for name, value in given.items() if value is not None}
        try:
            settings = Settings(**chosen)
        except ValidationError:
            return {**given, "server": self.server or "uvicorn"}
        return {
            "pool_size": settings.pool_size,
            "max_overflow": settings.max_overflow,
            "threads": settings.thread_count,
            "workers": settings.workers,
            "server": self.server or "uvicorn",
        }

    def pooled_connections(self) -> int:
        """The connections a server's pools keep, over all its workers (0: not known)."""
        served = self.effective()
        return (served["pool_size"] or 0) * (served["workers"] or 1)


def health_ok(host: str, port: int, timeout: float = 1.0) -> bool:
    """True when GET /health answers 200."""
    connection = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        connection.request("GET", "/health")
        response = connection.getresponse()
        response.read()
        return response.status == 200
    except (OSError, http.client.HTTPException):
        return False
    finally:
        connection.close()


def fill_pool(server: ServerProcess, connections: int) -> None:
    """Have a new server open `connections` pooled connections now: that many requests at
    once on its `/slow` route, each holding a connection while PostgreSQL sleeps for
    FILL_HOLD_MS.

    A pool opens a connection only when every open one is taken. Under 50 clients a sync
    stack's 20 threads seldom hold 20 connections at the same moment, so its pool still grew
    in measured windows after the warmup: a backend forked and a login, in a run that
    measures a pool keeping its connections. With several workers the kernel hands the
    requests to them unevenly, and each pool fills only mostly. A request that fails is not
    retried: its connection opens later, and the cells' own requests show why it failed.
    """

    if connections < 1:
        return

    def hold(_: int) -> None:
        connection = http.client.HTTPConnection(server.host, server.port, timeout=HEALTH_TIMEOUT_S)
        with contextlib.suppress(OSError, http.client.HTTPException):
            connection.request("GET", f"/slow?ms={FILL_HOLD_MS}")
            connection.getresponse().read()
        connection.close()

    with ThreadPoolExecutor(connections) as threads:
        list(threads.map(hold, range(connections)))


class ServerProcess:
    """A running `pgarena serve` for one stack."""

    def __init__(
        self,
        stack: str,
        database_url: str,
        options: ServerOptions,
        log_path: Path,
        host: str = "127.0.0.1",
    ) -> None:
        self.stack = stack
        self.host = host
        self.port = free_port(host)
        self.log_path = log_path
        self.start_seconds: float | None = None
        command = [
            sys.executable, "-m", "pgarena", "serve",
            "--stack", stack, "--host", host, "--port", str(self.port),
            *options.arguments(),
        ]  # fmt: skip
        # The name its connections carry in pg_stat_activity, by which the harness counts
        # them apart from other servers' (`bench.resources`).
        self.application_name = f"pgarena-{stack}"
        environment = {
            **os.environ,
            "DATABASE_URL": database_url,
            "PGARENA_APPLICATION_NAME": self.application_name,
        }
        if options.transaction_pooler:
            environment["PGARENA_TRANSACTION_POOLER"] = "true"
        environment.update(options.environment)
        environment.pop("PGARENA_DATABASE_URL", None)
        log_path.parent.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        with log_path.open("wb") as log:
            self.process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=environment,
                start_new_session=True,
                preexec_fn=die_with_parent(),
            )
        try:
            self._wait_healthy()
        except BaseException:
            self.stop()
            raise
        self.start_seconds = time.perf_counter() - started

    @property
    def pid(self) -> int:
        """Process id of the server's main process (workers are its children)."""
        return self.process.pid

    def exit_code(self) -> int | None:
        """None while the server runs, else its exit code (negative: killed by a signal)."""
        return self.process.poll()

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + HEALTH_TIMEOUT_S
        while time.monotonic() < deadline:
            code = self.process.poll()
            if code is not None:
                raise ServerFailed(
                    f"server exited with code {code} before answering /health: "
                    f"{self.last_log_line()}"
                )
            if health_ok(self.host, self.port):
                return
            time.sleep(0.05)
        raise ServerFailed(f"server never became healthy within {HEALTH_TIMEOUT_S:.0f} s")

    def last_log_line(self) -> str:
        """The last non-empty line the server printed (why it failed, usually)."""
        with contextlib.suppress(OSError):
            lines = self.log_path.read_text(errors="replace").strip().splitlines()
            for line in reversed(lines):
                # Skip blank lines and the borders of rich's error boxes.
                if any(character.isalnum() for character in line):
                    return line.strip(" │|")[:300]
        return "(no output)"

    def stop(self) -> None:
        """SIGTERM to the whole process group, SIGKILL if it lingers."""
        if self.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=STOP_TIMEOUT_S)
        # Workers may outlive a killed master: clear the group either way.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)
