"""The service as a real process over real HTTP: races, database outages, CLI mistakes."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import psycopg
import pytest
from fastapi.testclient import TestClient
from helpers import (
    free_port,
    health_is_ok,
    run_pgarena,
    running_server,
    start_pgarena,
    wait_until_healthy,
)

from pgarena.database import create_database_if_missing
from pgarena.database.embedded import EmbeddedPostgres
from pgarena.database.migrations import upgrade
from pgarena.database.urls import with_database
from pgarena.service.app import create_app
from pgarena.service.stacks import STACKS
from pgarena.settings import Settings


@pytest.mark.parametrize("stack", list(STACKS))
def test_fifty_concurrent_signups_with_one_username_give_one_user(
    stack: str, database_url: str
) -> None:
    async def sign_up_fifty_times(base_url: str) -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
            return await asyncio.gather(
                *(
                    client.post("/users/", json={"username": "racer", "email": f"r{n}@example.com"})
                    for n in range(50)
                )
            )

    with running_server(database_url, "--stack", stack) as base_url:
        responses = asyncio.run(sign_up_fifty_times(base_url))

    statuses = sorted(response.status_code for response in responses)
    assert statuses == [200] + [409] * 49
    conflicts = {response.text for response in responses if response.status_code == 409}
    assert conflicts == {'{"detail":"Username already taken"}'}
    with psycopg.connect(database_url) as connection:
        assert connection.execute("SELECT count(*) FROM users").fetchone() == (1,)


@pytest.mark.parametrize("stack", list(STACKS))
def test_more_concurrent_requests_than_threads_and_connections_never_deadlock(
    stack: str, database_url: str
) -> None:
    """fastapi/fastapi#3205: with a session held until the dependency closes, `def` endpoints
    waiting for a connection starve the threads that would release one."""

    async def forty_at_once(base_url: str) -> list[int]:
        async with httpx.AsyncClient(base_url=base_url, timeout=20) as client:
            for _ in range(3):  # waves, so requests overlap at every stage of their handling
                responses = await asyncio.gather(
                    *(client.get(f"/users/{n}") for n in range(1, 41)),
                    *(client.get("/products/?limit=5") for _ in range(10)),
                )
            return [response.status_code for response in responses]

    tiny_pool = ("--pool-size", "2", "--max-overflow", "0")  # 2 connections, 2 threads
    with running_server(database_url, "--stack", stack, *tiny_pool) as base_url:
        statuses = asyncio.run(forty_at_once(base_url))
        assert httpx.get(f"{base_url}/health", timeout=5).json() == {"status": "ok"}
    assert statuses == [404] * 40 + [200] * 10


@pytest.fixture(scope="module")
def own_postgres() -> Iterator[EmbeddedPostgres]:
    """A PostgreSQL of this module's own, which its tests stop, freeze and restart."""
    # Not under pytest's tmp_path: pytest keeps that tree private (0700) to this user, and as
    # root the server runs as another user that must be able to reach its data directory.
    with tempfile.TemporaryDirectory(prefix="pgarena-outage-") as data_dir:
        server = EmbeddedPostgres(Path(data_dir))
        server.start()
        yield server
        server.stop()


@contextlib.contextmanager
def frozen(server: EmbeddedPostgres) -> Iterator[None]:
    """Suspend (SIGSTOP) the postmaster and all its backends for the block: connections
    stay open and nothing answers."""
    postmaster = psutil.Process(server.status().pid)
    processes = [postmaster, *postmaster.children()]
    for process in processes:
        process.suspend()
    try:
        yield
    finally:
        for process in processes:
            with contextlib.suppress(psutil.NoSuchProcess):
                process.resume()


@pytest.mark.parametrize("stack", list(STACKS))
def test_health_is_503_and_requests_fail_cleanly_while_database_is_down(
    stack: str, own_postgres: EmbeddedPostgres
) -> None:
    url = own_postgres.start()
    create_database_if_missing(url, "outage")
    database_url = with_database(url, "outage")
    upgrade(database_url)
    with TestClient(create_app(Settings(database_url=database_url, stack=stack))) as client:
        assert client.get("/health").json() == {"status": "ok"}
        assert client.get("/users/1").status_code == 404
        own_postgres.stop()
        try:
            health = client.get("/health")
            assert (health.status_code, health.json()) == (503, {"status": "unavailable"})
            answer = client.get("/users/1")
            assert (answer.status_code, answer.json()) == (503, {"detail": "Database unavailable"})
        finally:
            own_postgres.start()
        # Back to normal once the database is back: broken connections are replaced.
        statuses = [client.get("/users/1").status_code for _ in range(25)]
        assert statuses[-1] == 404
        assert set(statuses) <= {404, 503}
        assert client.get("/health").json() == {"status": "ok"}


@pytest.mark.parametrize("stack", ["sync", "async"])
def test_health_answers_503_within_its_timeout_when_database_hangs(
    stack: str, own_postgres: EmbeddedPostgres
) -> None:
    url = own_postgres.start()
    with TestClient(create_app(Settings(database_url=url, stack=stack))) as client:
        assert client.get("/health").json() == {"status": "ok"}
        with frozen(own_postgres):
            started = time.monotonic()
            health = client.get("/health")
            elapsed = time.monotonic() - started
    assert (health.status_code, health.json()) == (503, {"status": "unavailable"})
    # The timeout is 2 s; the margin is for a loaded machine, not for a second timeout.
    assert 1.9 <= elapsed < 4.0


def assert_one_line_error(result: subprocess.CompletedProcess[str], *expected: str) -> None:
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for text in expected:
        assert text in lines[0]


def test_serve_unknown_stack_is_a_one_line_error() -> None:
    result = run_pgarena("serve", "--stack", "fastest")
    assert_one_line_error(result, "unknown stack 'fastest'", "sync", "async")


def test_serve_on_a_busy_port_is_a_one_line_error(database_url: str) -> None:
    with running_server(database_url, "--stack", "async") as base_url:
        port = base_url.rsplit(":", 1)[1]
        result = run_pgarena("serve", "--port", port, env={"DATABASE_URL": database_url})
    assert_one_line_error(result, f"port {port}", "already in use")


def test_serve_with_a_bad_database_url_never_shows_the_password() -> None:
    result = run_pgarena("serve", env={"DATABASE_URL": "mysql://admin:hunter2@db:3306/app"})
    assert_one_line_error(result)
    assert "hunter2" not in result.stderr + result.stdout


def test_serve_with_bad_settings_is_a_one_line_error() -> None:
    result = run_pgarena("serve", "--port", "70000")
    assert_one_line_error(result, "port")


def test_stacks_lists_every_stack_with_a_description() -> None:
    result = run_pgarena("stacks")
    assert result.returncode == 0
    for stack in STACKS.values():
        line = next(line for line in result.stdout.splitlines() if line.split()[0] == stack.name)
        assert stack.description in line


def test_serve_prints_its_settings_and_stops_cleanly(database_url: str) -> None:
    port = free_port()
    process = start_pgarena(
        "serve", "--stack", "sync", "--port", str(port), "--pool-size", "3", "--max-overflow", "2",
        env={"DATABASE_URL": database_url}, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(process, lambda: health_is_ok(base_url), timeout=30)
        assert httpx.get(f"{base_url}/users/").json() == []
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=15)
    # uvicorn shuts down gracefully, then re-raises SIGTERM so the parent sees the signal.
    assert process.returncode in (0, -signal.SIGTERM)
    assert "stack sync" in stderr
    assert "5 threads" in stderr  # pool 3 + overflow 2: threads default to the pool's maximum
    assert "pool 3 + 2 overflow" in stderr
    assert "Traceback" not in stderr


def test_password_is_redacted_in_the_startup_banner(database_url: str, tmp_path: Path) -> None:
    from pgarena.service.server import describe

    banner = describe(Settings(database_url="postgresql://app:s3cret@db.example:5432/app"))
    assert "s3cret" not in banner
    assert "app:***@db.example" in banner
