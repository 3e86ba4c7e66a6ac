"""What the integration tests share: a free port, the `pgarena` command line as a user runs
it, and a `pgarena serve` (or `tests/tiny_app.py`) process polled until it is healthy.

Import it as `from helpers import ...` (pytest puts `tests/` on the path through conftest.py).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from pgarena.processes import free_port

__all__ = [
    "SPELLINGS",
    "free_port",
    "health_is_ok",
    "pgarena_environment",
    "run_pgarena",
    "running_server",
    "running_tiny_app",
    "start_pgarena",
    "stop",
    "wait_until_healthy",
]

# Every scheme a user may write in DATABASE_URL, as the README lists them.
SPELLINGS = [
    "postgresql",
    "postgres",
    "postgresql+asyncpg",
    "postgresql+psycopg2",
    "postgresql+psycopg",
]

Environment = Mapping[str, str | None]


def pgarena_environment(env: Environment | None = None) -> dict[str, str]:
    """This process's environment with `env` applied: a value sets a variable, None unsets
    it (say `{"DATABASE_URL": None}` for a test that must use the embedded server)."""
    environment = dict(os.environ)
    for name, value in (env or {}).items():
        if value is None:
            environment.pop(name, None)
        else:
            environment[name] = value
    return environment


def _command(args: tuple[str | Path, ...]) -> list[str]:
    return [sys.executable, "-m", "pgarena", *map(str, args)]


def run_pgarena(
    *args: str | Path, env: Environment | None = None, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    """`pgarena ARGS` to completion, output captured as text; never raises on a non-zero exit
    (tests assert on it)."""
    return subprocess.run(
        _command(args),
        capture_output=True,
        text=True,
        env=pgarena_environment(env),
        timeout=timeout,
        check=False,
    )


def start_pgarena(
    *args: str | Path, env: Environment | None = None, **popen: Any
) -> subprocess.Popen[Any]:
    """`pgarena ARGS` started in the background (`popen`: `subprocess.Popen` options)."""
    return subprocess.Popen(_command(args), env=pgarena_environment(env), **popen)


def _output(process: subprocess.Popen[Any]) -> str:
    stream = process.stdout or process.stderr
    if stream is None:
        return ""
    output = stream.read()
    return output.decode(errors="replace") if isinstance(output, bytes) else output


def wait_until_healthy(
    process: subprocess.Popen[Any], is_healthy: Callable[[], bool], timeout: float
) -> None:
    """Poll `is_healthy()` until it is true. Fails, with the server's captured output, when
    the process exits first or `timeout` seconds pass. `is_healthy` may raise `OSError` or
    `httpx.TransportError` while nothing listens yet."""
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise AssertionError(f"server exited with {process.returncode}:\n{_output(process)}")
        try:
            if is_healthy():
                return
        except (OSError, httpx.TransportError):
            pass  # not listening yet
        assert time.monotonic() < deadline, f"server did not become healthy in {timeout:g} s"
        time.sleep(0.1)  # polling interval while the server starts, not a stand-in for work


def health_is_ok(base_url: str) -> bool:
    """GET /health answers 200."""
    return httpx.get(f"{base_url}/health", timeout=1).status_code == 200


def stop(process: subprocess.Popen[Any], timeout: float = 15) -> None:
    """SIGTERM, then SIGKILL if the server is still there after `timeout` seconds."""
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextmanager
def running_server(database_url: str, *args: str, startup_timeout: float = 30.0) -> Iterator[str]:
    """`pgarena serve ARGS` on a free port until the block ends; yields the base URL once
    /health is ok."""
    port = free_port()
    process = start_pgarena(
        "serve", "--port", str(port), *args,
        env={"DATABASE_URL": database_url}, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(process, lambda: health_is_ok(base_url), startup_timeout)
        yield base_url
    finally:
        stop(process)


@contextmanager
def running_tiny_app(env: Environment | None = None) -> Iterator[str]:
    """`tests/tiny_app.py` (a user's FastAPI app, not pgarena's) under uvicorn on a free port
    until the block ends; yields its base URL once /health answers."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "tiny_app:app", "--app-dir", str(Path(__file__).parent),
         "--port", str(port), "--log-level", "warning"],
        env=pgarena_environment(env), stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(process, lambda: health_is_ok(base_url), 30)
        yield base_url
    finally:
        stop(process)
