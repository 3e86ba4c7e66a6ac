"""The arena: run every cell of a plan and record it.

For each cell the runner makes sure a server for the cell's stack is up (a fresh
`pgarena serve` per cell, or one per stack and repeat), has the load generator processes
warm it up and measure it, snapshots the resources used in the measured window, and appends
the cell to the result file. A cell whose server never becomes healthy, dies, or answers
nothing correctly is recorded as failed with the reason, and the run goes on.
"""

from __future__ import annotations

import contextlib
import re
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from rich.console import Console

import pgarena
from pgarena.bench import metadata
from pgarena.bench.cells import failed_cell, measured_cell
from pgarena.bench.database import PreparedDatabase, arena_database
from pgarena.bench.loadgen import LoadGenerator, LoadJob, Progress
from pgarena.bench.plan import Plan, PlannedCell
from pgarena.bench.resources import (
    ResourceMonitor,
    WindowUsage,
    listening_pid,
    postmaster_pid,
    process_description,
)
from pgarena.bench.servers import ServerFailed, ServerOptions, ServerProcess, fill_pool
from pgarena.bench.workloads import RESET_POLICY, DataSizes
from pgarena.errors import UserError
from pgarena.results.file import ResultWriter, utc_now
from pgarena.results.model import Cell
from pgarena.results.slo import Slo, evaluate_slos


class Reporter(Protocol):
    """Receives what the runner does, for a progress display (all methods optional-ish)."""

    def cell_started(self, index: int, total: int, planned: PlannedCell) -> None: ...
    def progress(self, reading: Progress) -> None: ...
    def cell_finished(self, index: int, total: int, cell: Cell) -> None: ...


class SilentReporter:
    """A reporter that shows nothing (tests, scripts)."""

    def cell_started(self, index: int, total: int, planned: PlannedCell) -> None:
        """Nothing."""

    def progress(self, reading: Progress) -> None:
        """Nothing."""

    def cell_finished(self, index: int, total: int, cell: Cell) -> None:
        """Nothing."""


@dataclass(frozen=True)
class Target:
    """Where the load goes when no server is started (--target URL)."""

    host: str
    port: int
    path_prefix: str
    url: str
    tls: bool = False  # https: TLS by the standard library, certificate verified

    @classmethod
    def parse(cls, url: str, https: bool = False) -> Target:
        """Accept http://host[:port][/prefix] (and https:// when the caller can speak TLS:
        `pgarena run` can, `calibrate`'s wrk comparison does not); else a user error."""
        parts = urlsplit(url)
        schemes = ("http", "https") if https else ("http",)
        if parts.scheme not in schemes or not parts.hostname:
            expected = " or ".join(f"{scheme}://host[:port]" for scheme in schemes)
            raise UserError(f"--target must be an {expected} URL, got {url!r}")
        if parts.query or parts.fragment:
            raise UserError("--target takes no query string or fragment")
        tls = parts.scheme == "https"
        try:
            port = parts.port or (443 if tls else 80)
        except ValueError:
            raise UserError(f"--target has an invalid port: {url!r}") from None
        return cls(parts.hostname, port, parts.path.rstrip("/"), url.rstrip("/"), tls)


# A target's label names its cells, as a stack's does, so it must fit where a stack name
# goes, as in `--slo STACK:WORKLOAD:p99<20ms`.
_TARGET_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


def parse_targets(given: list[str], stacks: list[str] | None = None) -> dict[str, Target]:
    """`--target [NAME=]URL`, repeatable: the running services to measure, by the label
    their cells carry; a user error for a malformed or repeated one.

    One unnamed target is labelled by the one name `--stacks` gave, else "target". Several
    are an A/B run (`--target old=http://... --target new=http://...`): their cells alternate
    in one run as stacks' do, so both meet the same machine, and the first one named is the
    baseline the verdicts compare the others against. Two runs compared afterwards
    (`pgarena compare`) meet a machine that may have changed in between.
    """
    if len(given) > 1 and stacks:
        raise UserError("--stacks labels one target; name each of several as NAME=URL")
    label = stacks[0] if stacks and len(stacks) == 1 else "target"
    targets: dict[str, Target] = {}
    for text in given:
        name, separator, url = text.partition("=")
        if not separator or "://" in name:
            name, url = "", text
        elif not _TARGET_NAME.fullmatch(name):
            raise UserError(
                f"--target {text!r}: a name is letters, digits, '_', '.' and '-' (NAME=URL)"
            )
        if not name:
            if len(given) > 1:
                raise UserError(f"--target {text!r}: name each of several targets (NAME=URL)")
            name = label
        if name in targets:
            raise UserError(f"--target: {name!r} is named twice")
        targets[name] = Target.parse(url, https=True)
    return targets


def check_target_database(url: str | None, targets: dict[str, Target]) -> str | None:
    """`--target-database URL`: the PostgreSQL the targets use, once it answered; a user
    error without a target or when it cannot be reached.

    pgarena only reads it (activity and statistics views, settings), so a target's run
    gets PostgreSQL's CPU, new connections per second (the churn of a pool that closes
    connections) and statements per request, as a run of pgarena's own servers does.
    """
    if url is None:
        return None
    if not targets:
        raise UserError("--target-database is the database of --target services; add --target")
    import psycopg

    from pgarena.database.urls import redact

    try:
        with psycopg.connect(url, connect_timeout=5) as connection:
            connection.execute("SELECT 1")
    except psycopg.Error as error:
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise UserError(f"--target-database: cannot reach {redact(url)}: {reason}") from None
    return url


@dataclass
class RunConfig:
    """How to run a plan: where the database and the output are, how servers start."""

    plan: Plan
    out_dir: Path
    targets: dict[str, Target] = field(default_factory=dict)  # label -> service (no servers)
    data: DataSizes = field(default_factory=DataSizes)
    server_options: ServerOptions = field(default_factory=ServerOptions)
    generator_processes: int = 1
    timeout_s: float = 10.0
    slos: tuple[Slo, ...] = ()
    profile: bool = False  # a py-spy flame graph of one cell per stack (bench/profiling.py)
    notes: list[str] = field(default_factory=list)
    database: PreparedDatabase | None = None  # filled by `run_plan` (None with a target)
    pooler: str | None = None  # "pgbouncer": started by `run_plan` in front of the database
    server_url: str | None = None  # what servers connect to: the pooler's URL, when one runs
    # With targets: the PostgreSQL they use, watched but never written to (--target-database).
    target_database: str | None = None

    @property
    def database_url(self) -> str | None:
        """libpq URL of the prepared database (None with a target)."""
        return self.database.url if self.database is not None else None

    @property
    def watched_database_url(self) -> str | None:
        """The database whose CPU, connections and statements each cell measures: the
        prepared one, or the targets' when given; None when unknown."""
        return self.database_url or self.target_database


def target_metadata(targets: dict[str, Target]) -> str | dict[str, str] | None:
    """The `target` of the result file: the URL of the one service measured, each label's
    URL when several were (an A/B run), None when pgarena started the servers."""
    if len(targets) == 1:
        [target] = targets.values()
        return target.url
    return {name: target.url for name, target in targets.items()} or None


def build_metadata(config: RunConfig) -> dict[str, Any]:
    """The `metadata` object of the result file."""
    from pgarena.database.urls import redact

    watched = config.watched_database_url
    postgres = metadata.postgres(watched)
    if postgres is not None and watched is not None:
        postgres["database"] = redact(watched)
        if config.database is not None:
            postgres["embedded"] = config.database.embedded
    options = config.server_options
    notes = list(config.notes)
    if config.targets:
        notes.append(
            "target mode: no server was started by pgarena; the server's CPU and memory are "
            "measured only for a target on this machine (a loopback address: its process is "
            "found by its port)"
        )
        notes.append(
            f"target mode: PostgreSQL is {redact(watched)}, watched read-only; its figures "
            "count every session of that database (new connections, statements) and, when it "
            "runs on this machine, its CPU"
            if watched is not None
            else "target mode: PostgreSQL figures are absent (null): pass --target-database "
            "to measure the targets' database"
        )
        for name, target in config.targets.items():
            pid = listening_pid(target.host, target.port)
            if pid is not None:
                notes.append(f"{name}: server CPU and memory of process {process_description(pid)}")
    server = (
        options.effective()
        if not config.targets
        else dict.fromkeys(("pool_size", "max_overflow", "threads", "workers", "server"))
    )
    if config.pooler is not None:
        from pgarena.database.pgbouncer import POOLER_NOTE, pooler_description

        server["pooler"] = pooler_description(config.pooler)
        notes.append(POOLER_NOTE)
    return {
        "command_line": metadata.command_line(),
        "git_revision": metadata.git_revision(),
        "pgarena_version": pgarena.__version__,
        "machine": metadata.machine(),
        "packages": metadata.packages(),
        "postgres": postgres,
        "server": server,
        "data": {
            **config.data.to_dict(),
            "reset": RESET_POLICY,
            "seed_seconds": config.database.seed_seconds if config.database else None,
        },
        "target": target_metadata(config.targets),
        "generator": {
            "kind": "pgarena raw HTTP/1.1 (asyncio + uvloop)",
            "processes": config.generator_processes,
            "timeout_s": config.timeout_s,
        },
        "notes": notes,
    }


def run_plan(
    config: RunConfig, reporter: Reporter | None = None, console: Console | None = None
) -> ResultWriter:
    """Prepare the database, run every cell of `config.plan`, writing the result file as
    cells finish, then judge the SLOs.

    Returns the writer (its `path` and `run`). On KeyboardInterrupt (Ctrl-C, or SIGTERM
    turned into one by the CLI) the file is marked "interrupted" and the exception
    propagates; every finished cell is already on disk.
    """
    reporter = reporter or SilentReporter()
    console = console or Console(stderr=True, quiet=True)
    check_writable(config.out_dir)
    if not config.plan.start_servers:
        return _run_on(config, reporter)
    if config.database is not None:
        return _run_pooled(config, reporter)
    with arena_database(console, config.data) as database:
        return _run_pooled(replace(config, database=database), reporter)


def _run_pooled(config: RunConfig, reporter: Reporter) -> ResultWriter:
    """The run, through the pooler `config.pooler` when it names one (servers connect to
    it; seeding and the resource monitor keep the direct URL)."""
    if config.pooler is None or config.database is None:
        return _run_on(config, reporter)
    from pgarena.database.pgbouncer import pgbouncer

    with pgbouncer(config.database.url) as through:
        return _run_on(replace(config, server_url=through), reporter)


def _run_on(config: RunConfig, reporter: Reporter) -> ResultWriter:
    writer = ResultWriter(config.out_dir, build_metadata(config), config.plan.to_dict())
    arena = _Arena(config, reporter, writer)
    try:
        arena.run()
    except BaseException:
        writer.finish("interrupted")
        raise
    if config.slos:
        writer.set_slo_results(evaluate_slos(writer.run, config.slos))
    writer.finish("complete")
    return writer


def check_writable(out_dir: Path) -> None:
    """Fail before any work when the results cannot be written."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        probe = out_dir / ".pgarena-write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as error:
        raise UserError(f"--out: cannot write results to {out_dir}: {error.strerror}") from None


class _Arena:
    def __init__(self, config: RunConfig, reporter: Reporter, writer: ResultWriter) -> None:
        self.config = config
        self.plan = config.plan
        self.reporter = reporter
        self.writer = writer
        # The servers alive now, by stack, and the repeat they were started for.
        self.servers: dict[str, ServerProcess] = {}
        self.servers_repeat: int | None = None
        watched = config.watched_database_url
        self.postgres_pid = postmaster_pid(watched) if watched is not None else None
        self.profiler = None
        if config.profile:
            from pgarena.bench.profiling import Profiler

            self.profiler = Profiler(config.out_dir)

    def run(self) -> None:
        cells = self.plan.cells()
        with LoadGenerator(self.config.generator_processes) as generator:
            try:
                for index, planned in enumerate(cells):
                    self.reporter.cell_started(index, len(cells), planned)
                    cell = self.writer.add_cell(self.run_cell(generator, index, planned))
                    self.reporter.cell_finished(index, len(cells), cell)
            finally:
                self.stop_servers()

    # -- servers --

    def stop_servers(self, stack: str | None = None) -> None:
        """Stop one stack's server, or every server."""
        for name in [stack] if stack is not None else list(self.servers):
            server = self.servers.pop(name, None)
            if server is not None:
                server.stop()

    def server_for(self, index: int, key: PlannedCell) -> tuple[ServerProcess, float | None]:
        """A healthy server for this cell, and its start time if it was started for it.

        "cell": a fresh server for every cell. "stack": one server at a time, kept for that
        stack's cells of a repeat. "repeat": every stack's server kept alive through the
        repeat, so the stacks can take turns cell by cell and the machine's drift between
        two turns stays small.
        """
        lifetime = self.plan.server_lifetime
        if lifetime == "cell" or self.servers_repeat != key.repeat:
            self.stop_servers()
        elif lifetime == "stack":
            for stack in [name for name in self.servers if name != key.stack]:
                self.stop_servers(stack)
        self.servers_repeat = key.repeat
        server = self.servers.get(key.stack)
        if server is not None and server.exit_code() is None:
            return server, None
        self.stop_servers(key.stack)
        assert self.config.database_url is not None
        log = self.config.out_dir / "servers" / f"{index + 1:04d}-{key.stack}.log"
        url = self.config.server_url or self.config.database_url
        server = ServerProcess(key.stack, url, self.config.server_options, log)
        self.servers[key.stack] = server
        fill_pool(server, self.config.server_options.pooled_connections())
        return server, server.start_seconds

    # -- one cell --

    def run_cell(self, generator: LoadGenerator, index: int, key: PlannedCell) -> Cell:
        started_at = utc_now()
        server: ServerProcess | None = None
        server_start_s: float | None = None
        try:
            if key.workload.grows and self.config.database_url is not None:
                self.reseed()
            if self.plan.start_servers:
                server, server_start_s = self.server_for(index, key)
                host, port, prefix, tls = server.host, server.port, "", False
            else:
                target = self.config.targets[key.stack]
                host, port, prefix = target.host, target.port, target.path_prefix
                tls = target.tls
        except ServerFailed as failure:
            self.stop_servers(key.stack)
            return failed_cell(key, started_at, str(failure))

        job = LoadJob(
            host=host,
            port=port,
            workload=key.workload,
            connections=key.concurrency,
            duration_s=self.plan.duration_of(key),
            requests=self.plan.requests,
            warmup_s=self.plan.warmup_of(key),
            rate=self.plan.rate,
            data=self.config.data,
            slow_ms=self.plan.slow_ms,
            series_interval_s=self.plan.series_interval_s,
            timeout_s=self.config.timeout_s,
            path_prefix=prefix,
            tls=tls,
            seed=index,
        )
        monitor = ResourceMonitor(
            server.pid if server else listening_pid(host, port),
            self.postgres_pid,
            self.config.watched_database_url,
            server.application_name if server else None,
            read_only=server is None,
        )
        monitor.prepare()  # connect now, so that the window opens on time
        usage: list[WindowUsage] = []
        profiler = self.profiler if server is not None else None
        if profiler is not None and not profiler.wants(key):
            profiler = None
        profile: list[str | None] = []

        def on_phase(phase: str) -> None:
            if phase == "measuring":
                monitor.start()
                if profiler is not None and server is not None and server.pid is not None:
                    profiler.start(key, server.pid)
            elif phase == "measured" and not usage:
                usage.append(monitor.stop())
                if profiler is not None:
                    profile.append(profiler.stop())

        def server_died() -> bool:
            return server is not None and server.exit_code() is not None

        try:
            result = generator.run(
                job,
                on_progress=self.reporter.progress,
                on_phase=on_phase,
                should_abort=server_died,
            )
        except RuntimeError as error:
            if not usage:
                # Cleanup after a failure must not hide the failure.
                with contextlib.suppress(Exception):
                    monitor.stop()
            self.stop_servers(key.stack)
            return failed_cell(key, started_at, f"load generator failed: {error}")
        if not usage:  # the window never opened or closed cleanly
            usage.append(monitor.stop())

        error = None
        if server is not None and server.exit_code() is not None:
            error = (
                f"server exited with code {server.exit_code()} during the measurement: "
                f"{server.last_log_line()}"
            )
            self.stop_servers(key.stack)
        elif result.requests == 0:
            error = (
                f"no answer at all in {result.duration_s:.1f} s: the server accepted "
                f"{key.concurrency} connections but answered nothing (stuck?)"
            )
        elif result.ok == 0:
            kinds = ", ".join(f"{k}: {v}" for k, v in sorted(result.errors.items()) if v)
            error = f"no correct answer in {result.requests} requests ({kinds})"
        # A failed cell may leave a stuck or damaged server: never hand it the next cell.
        if self.plan.server_lifetime == "cell" or error:
            self.stop_servers(key.stack)
        cell = measured_cell(key, started_at, result, usage[0], error)
        if profiler is not None and not profile:  # the window closed abnormally
            profile.append(profiler.stop())
        if profiler is not None and profiler.error:
            # On stderr with the progress: the run goes on, that cell just has no profile.
            print(f"--profile: no flame graph of {key.stack}: {profiler.error}", file=sys.stderr)
        return replace(
            cell,
            profile=profile[0] if profile else None,
            server_start_s=server_start_s,
            server_log=str(server.log_path.relative_to(self.config.out_dir)) if server else None,
        )

    def reseed(self) -> None:
        from pgarena.database.seed import seed_database

        assert self.config.database_url is not None
        data = self.config.data
        seed_database(
            self.config.database_url, users=data.users, products=data.products, orders=data.orders
        )
