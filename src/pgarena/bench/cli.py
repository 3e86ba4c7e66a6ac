"""`pgarena run` and `pgarena calibrate`: their options, parsed; the work is elsewhere.

The plan is built in `plan.py`, the database prepared in `database.py`, the cells run in
`runner.py`, and what the user sees is drawn by `display.py`. Reports are written by the
top-level command (`pgarena.cli`), which calls this and then `pgarena.report`: the harness
never imports the reports.
"""

from __future__ import annotations

import signal
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console

from pgarena.bench import options as opt
from pgarena.bench.options import available_stacks, parse_counts, parse_names, parse_seconds
from pgarena.bench.plan import build_plan
from pgarena.errors import UserError

if TYPE_CHECKING:
    from pgarena.results.model import Run


@dataclass(frozen=True)
class RunOutcome:
    """A finished run: where its results are, the run itself, and how to show it."""

    results: Path
    run: Run
    json_output: bool = False
    quiet: bool = False

    @property
    def slo_failed(self) -> bool:
        """Whether an SLO failed on some cell."""
        return any(not result["passed"] for result in self.run.slo)

    @property
    def all_failed(self) -> bool:
        """Whether no cell measured anything: a run that answers nothing must not exit 0."""
        return bool(self.run.cells) and len(self.run.failed_cells) == len(self.run.cells)


def run(
    stacks: opt.Stacks = None,
    workloads: opt.Workloads = None,
    concurrency: opt.Concurrency = None,
    duration: opt.Duration = None,
    requests: opt.Requests = None,
    rate: opt.Rate = None,
    repeats: opt.Repeats = None,
    warmup: opt.Warmup = None,
    preset: opt.Preset = "quick",
    workers: opt.Workers = None,
    threads: opt.Threads = None,
    pool_size: opt.PoolSize = None,
    max_overflow: opt.MaxOverflow = None,
    server: opt.Server = None,
    server_lifetime: opt.ServerLifetime = None,
    pooler: opt.Pooler = None,
    slow_ms: opt.SlowMs = 50,
    slo: opt.Slo = None,
    out: opt.Out = None,
    target: opt.Target = None,
    allow_writes: opt.AllowWrites = False,
    target_database: opt.TargetDatabase = None,
    generators: opt.Generators = 1,
    workload_file: opt.WorkloadFile = None,
    timeout: opt.Timeout = "10s",
    quiet: opt.Quiet = False,
    json_output: opt.JsonOutput = False,
    profile: opt.Profile = False,
) -> RunOutcome:
    """Benchmark the stacks: every stack x workload x concurrency x repeat, one result file.

    Starts PostgreSQL (embedded, or DATABASE_URL, whose tables are truncated and re-seeded).
    For every cell: a server, a warmup, a measurement by a separate load generator process;
    throughput with a 95% interval, latency percentiles, errors, CPU and memory of the
    server, PostgreSQL and the generator, statements per request. Ctrl-C keeps every
    finished cell.
    """
    from pgarena.bench.display import RichReporter, output, print_summary
    from pgarena.bench.runner import (
        RunConfig,
        SilentReporter,
        check_target_database,
        check_writable,
        parse_targets,
        run_plan,
    )
    from pgarena.bench.servers import ServerOptions
    from pgarena.database.pgbouncer import check_pooler
    from pgarena.results.slo import parse_slo
    from pgarena.service.server import SERVERS

    check_pooler(pooler)
    if server is not None and server not in SERVERS:
        raise UserError(f"unknown server {server!r}; choose from: {', '.join(SERVERS)}")
    thresholds = [parse_slo(text) for text in slo or []]
    known_stacks = available_stacks()
    given_stacks = parse_names(stacks) if stacks else None
    targets = parse_targets(target or [], given_stacks)
    stack_names = list(targets) or given_stacks or known_stacks
    if not targets:
        for name in stack_names:
            if name not in known_stacks:
                raise UserError(f"unknown stack {name!r}; choose from: {', '.join(known_stacks)}")
    from pgarena.bench.workload_file import load_workload_file

    plan = build_plan(
        preset,
        stack_names,
        workloads=parse_names(workloads) if workloads else None,
        files=(load_workload_file(workload_file),) if workload_file is not None else (),
        concurrency=parse_counts(concurrency, "--concurrency") if concurrency else None,
        duration_s=parse_seconds(duration, "--duration") if duration else None,
        requests=requests,
        warmup_s=parse_seconds(warmup, "--warmup") if warmup is not None else None,
        rate=rate,
        repeats=repeats,
        server_lifetime=server_lifetime,
        slow_ms=slow_ms,
        start_servers=not targets,
    )
    if targets and not allow_writes:
        writing = [w.name for w in plan.workloads if w.writes]
        if writing:
            raise UserError(
                f"--target: {', '.join(writing)} write to the target's database; "
                "leave them out or pass --allow-writes"
            )
    out_dir = out or Path("arena-results") / datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    config = RunConfig(
        plan=plan,
        out_dir=out_dir,
        targets=targets,
        target_database=check_target_database(target_database, targets),
        server_options=ServerOptions(
            workers=workers,
            threads=threads,
            pool_size=pool_size,
            max_overflow=max_overflow,
            server=server,
            transaction_pooler=pooler is not None,
        ),
        pooler=pooler if not targets else None,
        generator_processes=generators,
        timeout_s=parse_seconds(timeout, "--timeout"),
        slos=tuple(thresholds),
        profile=profile,
    )
    if profile:
        if targets:
            raise UserError("--profile records the servers pgarena starts; not with --target")
        from pgarena.bench.profiling import py_spy

        py_spy()  # a missing py-spy is a usage error before anything runs
    check_writable(out_dir)
    # Progress on stderr, silenced by --quiet; the result on stdout, unless --json keeps
    # stdout for the JSON document (the table then goes to stderr, with the progress).
    progress = Console(stderr=True, quiet=quiet)
    progress.print(f"[bold]pgarena run[/] - {plan.describe()}")
    # SIGTERM (a kill, a CI timeout) ends the run like Ctrl-C: finished cells are kept and
    # the file says "interrupted".
    previous = signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    try:
        if quiet:
            writer = run_plan(config, SilentReporter(), progress)
        else:
            with RichReporter(plan, progress) as reporter:
                writer = run_plan(config, reporter, progress)
    except KeyboardInterrupt:
        results = out_dir / "results.json"
        Console(stderr=True).print(
            f"[yellow]interrupted[/]: finished cells kept in {results}; "
            f"`pgarena report {results}` writes their reports"
        )
        raise SystemExit(130) from None
    finally:
        signal.signal(signal.SIGTERM, previous)
    print_summary(writer.run, writer.path, progress if json_output else output)
    return RunOutcome(writer.path, writer.run, json_output=json_output, quiet=quiet)


def _raise_keyboard_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def calibrate(
    stack: opt.CalibrateStack = "async",
    path: opt.CalibratePath = "/users/1",
    concurrency: opt.CalibrateConcurrency = "10,50,100",
    duration: opt.CalibrateDuration = "4s",
    rounds: opt.CalibrateRounds = 3,
    target: opt.CalibrateTarget = None,
) -> None:
    """Compare pgarena's load generator with wrk on the same endpoint and concurrency.

    Prints both throughputs, their ratio (the goal is >= 90% of wrk) and the CPU each spends
    per request. Exit code 0 when every level reaches 90%, 1 when one does not, 2 when wrk
    is not installed (Debian/Ubuntu: apt-get install wrk) or the server cannot start.
    """
    from pgarena.bench.calibrate import calibrate_against_wrk
    from pgarena.bench.display import print_calibration

    if not path.startswith("/"):
        raise UserError("--path must start with /")
    if target is None and stack not in available_stacks():
        raise UserError(f"unknown stack {stack!r}; choose from: {', '.join(available_stacks())}")
    levels = parse_counts(concurrency, "--concurrency")
    seconds = parse_seconds(duration, "--duration")
    results, where = calibrate_against_wrk(stack, path, levels, seconds, rounds, target)
    print_calibration(results, where)
    if not all(result.passed for result in results):
        raise SystemExit(1)
