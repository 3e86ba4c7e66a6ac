"""Run `pgarena serve` as a real subprocess for tests that need real HTTP."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def running_server(database_url: str, *args: str, startup_timeout: float = 30.0) -> Iterator[str]:
    """Serve on a free port until the block ends; yields the base URL once /health is ok."""
    port = free_port()
    command = [sys.executable, "-m", "pgarena", "serve", "--port", str(port), *args]
    env = {**os.environ, "DATABASE_URL": database_url}
    process = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True)
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + startup_timeout
        while True:
            if process.poll() is not None:
                raise RuntimeError(
                    f"server exited: {process.stderr.read() if process.stderr else ''}"
                )
            try:
                if httpx.get(f"{base_url}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("server did not become healthy in time")
            time.sleep(0.1)  # polling interval while the server starts, not a stand-in for work
        yield base_url
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
