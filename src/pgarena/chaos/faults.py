"""The faults, one coroutine each: make it happen under load, measure, judge.

Every fault gets a `Target` (a running `pgarena serve` on its own embedded PostgreSQL) and
returns a `FaultResult`. The bounds come from the service's settings (`Bounds`), the rest
from the issue: 32 clients through a restart, an 8 s freeze, ten clients per connection,
500 abandoned slow requests, 200 concurrent orders and a 20-way race for one username.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import shutil
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil
import psycopg

from pgarena.chaos.load import Load, cut_requests, request
from pgarena.chaos.model import (
    FRESH_REQUEST_BOUND_S,
    Bounds,
    Check,
    FaultResult,
    Sample,
    count_by_status,
    every_request_answered,
    judge_outage,
    longest,
    longest_within,
    no_server_errors,
    retry_after_on_503,
)
from pgarena.database.embedded import EmbeddedPostgres

SETTLE_S = 2.0  # after a disconnect storm, for pg_stat_activity to come back to its baseline


@dataclass(frozen=True)
class Target:
    """A stack under test: its server's address, its database, and the PostgreSQL to break."""

    stack: str
    host: str
    port: int
    database_url: str  # libpq URL of the stack's database, for pg_stat_activity and counts
    postgres: EmbeddedPostgres
    bounds: Bounds
    connections: int  # the most connections the server may hold (pool size + overflow)
    quick: bool = False

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def settle_s(self) -> float:
        """Load before a fault starts, so "during" includes requests that were fine."""
        return 0.5 if self.quick else 1.0

    @property
    def client_timeout_s(self) -> float:
        """Long enough to see a hang for what it is, short enough to end a broken run."""
        return max(20.0, 3 * self.bounds.longest_s)


def wait_accepting(database_url: str, timeout_s: float = 60.0) -> float:
    """Block until PostgreSQL accepts a connection; the monotonic time it first did."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with psycopg.connect(database_url, connect_timeout=1):
                return time.monotonic()
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)


async def restart(target: Target) -> FaultResult:
    """`pg_ctl restart -m fast` under 32 clients on /db."""
    result = FaultResult(target.stack, "restart")
    async with Load(target.base_url, "/db", 32, target.client_timeout_s) as load:
        await asyncio.sleep(target.settle_s)  # answered before the fault: the baseline
        await asyncio.to_thread(target.postgres.restart)
        accepting = await asyncio.to_thread(wait_accepting, target.database_url)
        await asyncio.sleep(2.0 if target.quick else 4.0)
    return judge_outage(result, load.samples, accepting, target.bounds)


def cluster_processes(postgres: EmbeddedPostgres) -> list[psutil.Process]:
    """The postmaster and every process it forked: what must stop for the cluster to freeze."""
    pid = postgres.pid()
    if pid is None:
        raise RuntimeError("the embedded PostgreSQL is not running")
    postmaster = psutil.Process(pid)
    return [postmaster, *postmaster.children(recursive=True)]


async def freeze(target: Target, seconds: float = 8.0) -> FaultResult:
    """SIGSTOP every process of the cluster for `seconds`, then SIGCONT, under 32 clients:
    a database that hangs without closing a socket, the case only deadlines catch."""
    result = FaultResult(target.stack, "freeze")
    result.notes.append(f"PostgreSQL frozen {seconds:g} s")
    async with Load(target.base_url, "/db", 32, target.client_timeout_s) as load:
        await asyncio.sleep(target.settle_s)  # answered before the fault: the baseline
        processes = cluster_processes(target.postgres)
        try:
            for process in processes:
                # A child that exited since the listing (an autovacuum worker, a backend
                # whose client left) needs no freezing, and no thawing.
                with contextlib.suppress(psutil.NoSuchProcess):
                    process.suspend()
            await asyncio.sleep(seconds)  # the fault itself: the cluster stays stopped
        finally:
            for process in processes:
                with contextlib.suppress(psutil.NoSuchProcess):
                    process.resume()
        thawed = time.monotonic()
        await asyncio.sleep(2.0 if target.quick else 4.0)
    return judge_outage(result, load.samples, thawed, target.bounds)


async def pool_exhaustion(target: Target, hold_ms: int = 1000) -> FaultResult:
    """Ten clients per connection on /slow (each holding its connection `hold_ms`), with
    /health probed meanwhile: the extra clients must be shed with 503 + Retry-After within
    the bounds, and /health must stay 200 (busy is not unhealthy)."""
    clients = 10 * target.connections
    result = FaultResult(target.stack, "pool exhaustion")
    result.notes.append(f"{clients} clients, {target.connections} connections, /slow?ms={hold_ms}")
    health: list[Sample] = []
    seconds = 4.0 if target.quick else 15.0
    async with (
        httpx.AsyncClient(base_url=target.base_url, timeout=target.client_timeout_s) as probe,
        Load(target.base_url, f"/slow?ms={hold_ms}", clients, target.client_timeout_s) as load,
    ):
        until = time.monotonic() + seconds
        while time.monotonic() < until:
            health.append(await request(probe, "GET", "/health"))
            await asyncio.sleep(0.25)  # a probe's period, as an orchestrator's
    samples = load.samples
    result.during = count_by_status(samples)
    result.after = {f"/health {status}": n for status, n in count_by_status(health).items()}
    result.longest_s = longest(samples)
    unhealthy = sum(1 for sample in health if sample.status != "200")
    result.checks += [
        every_request_answered(samples),
        longest_within(samples, target.bounds.longest_s),
        no_server_errors(samples),
        retry_after_on_503(samples),
        Check("/health stays 200", unhealthy == 0, f"{unhealthy} of {len(health)} not 200", "0"),
    ]
    return result


def backends(database_url: str) -> tuple[int, int]:
    """(connections, connections running a statement) to the stack's database, ours aside."""
    with psycopg.connect(database_url, autocommit=True) as connection:
        row = connection.execute(
            "SELECT count(*), count(*) FILTER (WHERE state <> 'idle') FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            " AND backend_type = 'client backend'"
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


async def disconnect_storm(target: Target, count: int = 500, hold_ms: int = 2000) -> FaultResult:
    """`count` requests to /slow?ms=`hold_ms` dropped after 0.2 s; then a fresh /db must
    answer within 1 s (the abandoned work was stopped, not left queued ahead of it) and
    pg_stat_activity must be back to its baseline (no connection leaked or left busy)."""
    result = FaultResult(target.stack, "disconnect storm")
    result.notes.append(f"{count} requests to /slow?ms={hold_ms} cut after 0.2 s")
    _, busy_before = await asyncio.to_thread(backends, target.database_url)
    await cut_requests(target.host, target.port, f"/slow?ms={hold_ms}", count, 0.2)
    window_end = time.monotonic()
    async with httpx.AsyncClient(base_url=target.base_url, timeout=60.0) as client:
        fresh = await request(client, "GET", "/db")
    result.after = count_by_status([fresh])
    result.longest_s = fresh.seconds
    result.recovery_s = fresh.end - window_end if fresh.status == "200" else None
    # Connections the cut requests released may take a moment to settle back in the pool:
    # pg_stat_activity gets SETTLE_S to return to its baseline, polled, and the figure shown
    # is the last one seen.
    allowed = target.connections + 1  # the pool's maximum, and /health's own connection
    settle_until = time.monotonic() + SETTLE_S
    while True:
        total, busy = await asyncio.to_thread(backends, target.database_url)
        if (busy <= busy_before and total <= allowed) or time.monotonic() > settle_until:
            break
        await asyncio.sleep(0.1)
    if busy > busy_before:
        result.leaks.append(f"{busy - busy_before} backends still busy (baseline {busy_before})")
    if total > allowed:
        result.leaks.append(f"{total} connections open, pool and /health allow {allowed}")
    result.checks += [
        Check("fresh /db after the storm", fresh.status == "200" and fresh.seconds
              <= FRESH_REQUEST_BOUND_S, f"{fresh.status} in {fresh.seconds:.2f} s",
              f"200 in <= {FRESH_REQUEST_BOUND_S:g} s"),
        Check("pg_stat_activity at baseline", not result.leaks, "; ".join(result.leaks) or
              f"{total} open, {busy} busy", f"<= {busy_before} busy within {SETTLE_S:g} s"),
    ]  # fmt: skip
    return result


async def concurrent_writes(target: Target, orders: int = 200, racers: int = 20) -> FaultResult:
    """`orders` orders posted by 20 clients at once, then counted in the database; and
    `racers` clients creating the same user at once: exactly one wins, the rest get 409."""
    result = FaultResult(target.stack, "concurrent writes")
    tag = uuid.uuid4().hex[:10]
    before = await asyncio.to_thread(_order_count, target.database_url)
    order = {"user_id": 1, "product_id": 1, "quantity": 1}
    user = {"username": f"race{tag}", "email": f"race{tag}@example.com"}
    limits = httpx.Limits(max_connections=20)
    async with httpx.AsyncClient(base_url=target.base_url, timeout=60.0, limits=limits) as client:
        posted = await asyncio.gather(
            *(request(client, "POST", "/orders/", json=order) for _ in range(orders))
        )
        raced = await asyncio.gather(
            *(request(client, "POST", "/users/", json=user) for _ in range(racers))
        )
    created = sum(1 for sample in posted if sample.status == "200")
    stored = await asyncio.to_thread(_order_count, target.database_url) - before
    winners = sum(1 for sample in raced if sample.status == "200")
    conflicts = sum(1 for sample in raced if sample.status == "409")
    users = await asyncio.to_thread(_user_count, target.database_url, user["username"])
    result.during = {f"orders {k}": v for k, v in count_by_status(posted).items()}
    result.after = {f"race {k}": v for k, v in count_by_status(raced).items()}
    result.longest_s = longest([*posted, *raced])
    if stored != created:
        result.leaks.append(f"{created} orders answered 200, {stored} stored")
    result.checks += [
        Check("orders stored exactly", created == orders and stored == orders,
              f"{created} answered, {stored} stored", f"{orders} and {orders}"),
        Check("unique race", winners == 1 and conflicts == racers - 1 and users == 1,
              f"{winners} won, {conflicts} x 409, {users} rows", f"1, {racers - 1}, 1"),
        no_server_errors([*posted, *raced]),
    ]  # fmt: skip
    return result


def _order_count(database_url: str) -> int:
    with psycopg.connect(database_url) as connection:
        row = connection.execute("SELECT count(*) FROM orders").fetchone()
    return int(row[0]) if row else 0


def _user_count(database_url: str, username: str) -> int:
    with psycopg.connect(database_url) as connection:
        found = connection.execute("SELECT count(*) FROM users WHERE username = %s", (username,))
        row = found.fetchone()
    return int(row[0]) if row else 0


def schemathesis_command() -> str | None:
    """The schemathesis executable beside this Python, or on PATH; None when not installed."""
    beside = Path(sys.executable).parent / "schemathesis"
    return str(beside) if beside.exists() else shutil.which("schemathesis")


def schemathesis_skipped(stack: str, why: str) -> FaultResult:
    """The record of a schemathesis run left out: no check, a note saying why."""
    return FaultResult(stack, "schemathesis", notes=[f"skipped: {why}"])


# 503 is an expected answer, not a server error: it is what the service gives when a wait
# would pass its bound (`/slow?ms=9999` outlasts the statement timeout). A 500 still fails.
SCHEMATHESIS_CONFIG = """
[checks.not_a_server_error]
expected-statuses = ["2XX", "3XX", "4XX", "503"]
"""


async def schemathesis(target: Target, out_dir: Path) -> FaultResult:
    """schemathesis `--checks all` on the service's OpenAPI document (the optional extra
    `chaos`): 0 failures means every answer matches the documented statuses and schemas."""
    command = schemathesis_command()
    if command is None:
        return schemathesis_skipped(target.stack, "not installed")
    result = FaultResult(target.stack, "schemathesis")
    examples = "5" if target.quick else "100"
    log = out_dir / f"schemathesis-{target.stack}.log"
    config = out_dir / "schemathesis.toml"
    config.write_text(SCHEMATHESIS_CONFIG)
    started = time.monotonic()
    with log.open("w") as output:
        completed = await asyncio.to_thread(
            subprocess.run,
            [command, "--config-file", str(config), "run", f"{target.base_url}/openapi.json",
             "--checks", "all", "--max-examples", examples],
            stdout=output, stderr=subprocess.STDOUT, timeout=600, check=False,
            cwd=out_dir,  # its .schemathesis/ cache goes with the results, not where we stand
        )  # fmt: skip
    result.longest_s = time.monotonic() - started
    result.notes.append(f"{examples} examples per operation; output in {log.name}")
    # Its summary names each kind of failure and how many: "❌ ST103 Undocumented status
    # code: 11". Those go in the check, so the report says what to fix.
    found = re.findall(r"(ST\d+ [^:\n]+): (\d+)", log.read_text(errors="replace"))
    kinds = "; ".join(f"{name} x {count}" for name, count in dict(found).items())
    result.checks.append(
        Check("schemathesis --checks all", completed.returncode == 0,
              f"exit code {completed.returncode}" + (f": {kinds}" if kinds else ""), "0")
    )  # fmt: skip
    return result
