"""Faults under load, on a real server over real HTTP, against a PostgreSQL of this module's
own that the tests restart, freeze and saturate: the service answers every request within
its bounds (200, or 503 with Retry-After, never a 500 or a hang) and recovers by itself.

Short bounds (a 2 s deadline, 1 s pool and queue waits) keep each fault to a few seconds.
One sync and one async stack run by default; `-m slow` runs all six.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil
import psycopg
import pytest
from helpers import free_port, health_is_ok, start_pgarena, stop, wait_until_healthy

from pgarena.chaos.faults import SETTLE_S
from pgarena.database import create_database_if_missing
from pgarena.database.embedded import EmbeddedPostgres
from pgarena.database.migrations import upgrade
from pgarena.database.seed import seed_database
from pgarena.database.urls import with_database
from pgarena.service.stacks import STACKS

DEADLINE = 2.0
LIMITS = {
    "PGARENA_REQUEST_DEADLINE": str(DEADLINE),
    "PGARENA_POOL_TIMEOUT": "1",
    "PGARENA_QUEUE_TIMEOUT": "1",
    "PGARENA_HEALTH_TIMEOUT": "1",
}
DEFAULT_STACKS = ["sync", "async"]
STACK_PARAMS = [
    pytest.param(name, marks=[] if name in DEFAULT_STACKS else [pytest.mark.slow])
    for name in STACKS
]


@pytest.fixture(scope="module")
def own_postgres() -> Iterator[tuple[EmbeddedPostgres, str]]:
    """A PostgreSQL of this module's own, and the URL of a migrated, seeded database on it."""
    with tempfile.TemporaryDirectory(prefix="pgarena-faults-") as data_dir:
        server = EmbeddedPostgres(Path(data_dir))
        url = server.start()
        try:
            create_database_if_missing(url, "faults")
            database_url = with_database(url, "faults")
            upgrade(database_url)
            seed_database(database_url, users=0, products=0, orders=0)
            yield server, database_url
        finally:
            server.stop()


@contextlib.contextmanager
def serving(database_url: str, stack: str, *options: str) -> Iterator[str]:
    """`pgarena serve` with the short limits above; yields its base URL once healthy.

    Its log goes to a file, not a pipe: a fault makes it log a line per failed request,
    and a pipe nobody reads would fill up and stall the server."""
    port = free_port()
    with tempfile.TemporaryFile("w+") as log:
        process = start_pgarena(
            "serve", "--stack", stack, "--port", str(port), *options,
            env={"DATABASE_URL": database_url, **LIMITS}, stdout=log, stderr=log, text=True,
        )  # fmt: skip
        base_url = f"http://127.0.0.1:{port}"
        try:
            wait_until_healthy(process, lambda: health_is_ok(base_url), timeout=30)
            yield base_url
        finally:
            stop(process)


@dataclass
class Service:
    postgres: EmbeddedPostgres
    database_url: str
    base_url: str

    @property
    def port(self) -> int:
        return int(self.base_url.rsplit(":", 1)[1])


@pytest.fixture(scope="module", params=STACK_PARAMS)
def service(
    request: pytest.FixtureRequest, own_postgres: tuple[EmbeddedPostgres, str]
) -> Iterator[Service]:
    """One server per stack for every fault, with 2 connections (and so 2 threads on a sync
    stack): ten times that many clients is 20."""
    postgres, database_url = own_postgres
    with serving(database_url, request.param, "--pool-size", "2", "--max-overflow", "0") as url:
        yield Service(postgres, database_url, url)


@dataclass
class Answer:
    status: int  # 0: no HTTP answer at all
    seconds: float
    ended: float  # time.monotonic() when it came
    retry_after: str | None


async def load(
    base_url: str, path: str, clients: int, seconds: float, stop: asyncio.Event | None = None
) -> list[Answer]:
    """`clients` connections sending `path` back to back for `seconds`, or until `stop`."""
    answers: list[Answer] = []
    until = time.monotonic() + seconds
    stop = stop or asyncio.Event()
    limits = httpx.Limits(max_connections=clients)
    async with httpx.AsyncClient(base_url=base_url, timeout=30, limits=limits) as client:

        async def one_client() -> None:
            while time.monotonic() < until and not stop.is_set():
                started = time.monotonic()
                try:
                    response = await client.get(path)
                    status, retry = response.status_code, response.headers.get("retry-after")
                except httpx.TransportError:
                    status, retry = 0, None
                ended = time.monotonic()
                answers.append(Answer(status, ended - started, ended, retry))

        await asyncio.gather(*(one_client() for _ in range(clients)))
    return answers


def assert_bounded(answers: list[Answer], longest: float) -> None:
    """Every request got 200 or 503 with Retry-After, none later than `longest` seconds."""
    statuses = {answer.status for answer in answers}
    assert statuses <= {200, 503}, f"statuses {statuses}"
    assert all(a.retry_after == "1" for a in answers if a.status == 503)
    slowest = max(answers, key=lambda answer: answer.seconds)
    assert slowest.seconds < longest, f"slowest {slowest}, of {len(answers)}"


def postmaster_and_backends(server: EmbeddedPostgres) -> list[psutil.Process]:
    postmaster = psutil.Process(server.status().pid)
    return [postmaster, *postmaster.children()]


def test_restart_under_load_gives_no_500_and_recovers_within_2_s(service: Service) -> None:
    server = service.postgres
    back: list[float] = []

    async def restart_during_load(base_url: str) -> list[Answer]:
        stop = asyncio.Event()
        loading = asyncio.create_task(load(base_url, "/db", clients=16, seconds=60, stop=stop))
        await asyncio.sleep(1.0)  # load running before the fault
        await asyncio.to_thread(server.stop)
        await asyncio.to_thread(server.start)
        back.append(time.monotonic())  # PostgreSQL accepts connections again
        await asyncio.sleep(2.5)  # the load goes on past the 2 s recovery bound
        stop.set()
        return await loading

    answers = asyncio.run(restart_during_load(service.base_url))
    assert httpx.get(f"{service.base_url}/db").status_code == 200

    # Issue 11's bound for a restart: no request longer than 6 s (the default deadline + 1 s).
    # The short test deadline is for the freeze; a request that waits in the server's accept
    # queue while the pools reconnect is beyond any deadline's reach.
    assert_bounded(answers, longest=6.0)
    after = [answer for answer in answers if answer.ended > back[0]]
    oks = [answer.ended for answer in after if answer.status == 200]
    assert oks, f"no 200 among the {len(after)} answers after PostgreSQL came back"
    assert min(oks) - back[0] < 2.0


def test_frozen_database_gives_503_within_the_deadline(service: Service) -> None:
    server = service.postgres

    async def freeze_during_load(base_url: str) -> list[Answer]:
        loading = asyncio.create_task(load(base_url, "/db", clients=8, seconds=4.5))
        await asyncio.sleep(0.5)
        processes = postmaster_and_backends(server)
        try:
            for process in processes:
                # A child that exited since the listing (an autovacuum worker, a backend
                # whose client left) needs no freezing; every one frozen is thawed below.
                with contextlib.suppress(psutil.NoSuchProcess):
                    process.suspend()
            await asyncio.sleep(3.0)
        finally:
            for process in processes:
                with contextlib.suppress(psutil.NoSuchProcess):
                    process.resume()
        return await loading

    answers = asyncio.run(freeze_during_load(service.base_url))
    assert httpx.get(f"{service.base_url}/db", timeout=10).status_code == 200

    assert_bounded(answers, longest=DEADLINE + 1)
    assert any(answer.status == 503 for answer in answers)  # the freeze was felt


def test_ten_times_more_clients_than_connections_are_shed_and_health_stays_ok(
    service: Service,
) -> None:

    async def saturate(base_url: str) -> tuple[list[Answer], list[int]]:
        loading = asyncio.create_task(load(base_url, "/slow?ms=500", clients=20, seconds=2.5))
        health = []
        async with httpx.AsyncClient(base_url=base_url, timeout=5) as client:
            for _ in range(4):
                await asyncio.sleep(0.5)
                health.append((await client.get("/health")).status_code)
        return await loading, health

    answers, health = asyncio.run(saturate(service.base_url))

    assert_bounded(answers, longest=DEADLINE + 1)
    assert {a.status for a in answers} == {200, 503}
    assert health == [200] * 4


async def send_and_hang_up(port: int, path: str, after: float) -> None:
    """A client that sends its request and leaves `after` seconds later without reading."""
    _, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: test\r\n\r\n".encode())
    await asyncio.sleep(after)  # the client's patience, not a stand-in for work
    writer.close()


def busy_backends(database_url: str) -> int:
    with psycopg.connect(database_url, autocommit=True) as connection:
        row = connection.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND state <> 'idle' AND pid <> pg_backend_pid()"
        ).fetchone()
    assert row is not None
    return row[0]


def test_requests_whose_client_left_stop_their_database_work(service: Service) -> None:
    baseline = busy_backends(service.database_url)

    async def storm() -> None:
        await asyncio.gather(
            *(send_and_hang_up(service.port, "/slow?ms=1500", 0.2) for _ in range(100))
        )

    asyncio.run(storm())
    started = time.monotonic()
    fresh = httpx.get(f"{service.base_url}/db", timeout=10)
    took = time.monotonic() - started
    assert fresh.status_code == 200
    assert took < 1.0
    # The abandoned statements were cancelled, not left to run their 1.5 s.
    while busy_backends(service.database_url) > baseline:
        # As long as `pgarena chaos` lets pg_stat_activity settle (chaos.faults.SETTLE_S).
        assert time.monotonic() - started < SETTLE_S, "statements still running"
        time.sleep(0.05)  # polling pg_stat_activity
