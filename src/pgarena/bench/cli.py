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
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from pgarena.bench.options import (
    at_least,
    parse_counts,
    parse_names,
    parse_seconds,
    positive_duration,
    server_default,
)
from pgarena.bench.plan import build_plan, describe_presets
from pgarena.bench.workloads import WORKLOADS
from pgarena.errors import UserError

if TYPE_CHECKING:
    from pgarena.results.model import Run


def available_stacks() -> list[str]:
    """Every stack `pgarena serve` knows, in its order."""
    from pgarena.service.stacks import STACKS

    return list(STACKS)


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
    stacks: Annotated[
        str | None,
        typer.Option(
            "--stacks",
            "-s",
            metavar="NAME[,NAME...]",
            help="Comma-separated stacks (see `pgarena stacks`).",
            show_default="all",
        ),
    ] = None,
    workloads: Annotated[
        str | None,
        typer.Option(
            "--workloads",
            "-w",
            metavar="NAME[,NAME...]",
            help="Comma-separated workloads or groups (advanced, queries, updates, techempower, "
            f"all). Workloads: {', '.join(WORKLOADS)}.",
            show_default="the preset's",
        ),
    ] = None,
    concurrency: Annotated[
        str | None,
        typer.Option(
            "--concurrency",
            "-c",
            metavar="N[,N...]",
            help="Comma-separated connection counts, e.g. 1,10,100.",
            show_default="the preset's",
        ),
    ] = None,
    duration: Annotated[
        str | None,
        typer.Option(
            "--duration",
            "-d",
            metavar="TIME",
            help="Measured time per cell, e.g. 10s, 500ms, 2m.",
            show_default="the preset's",
        ),
    ] = None,
    requests: Annotated[
        int | None,
        typer.Option(
            metavar="N",
            callback=at_least(1),
            help="Measure this many requests per cell instead of a duration.",
            show_default="none",
        ),
    ] = None,
    rate: Annotated[
        float | None,
        typer.Option(
            metavar="RPS",
            callback=at_least(0.001),
            help="Open loop: requests per second due (latency from due time).",
            show_default="closed loop",
        ),
    ] = None,
    repeats: Annotated[
        int | None,
        typer.Option(
            "--repeats",
            "-r",
            metavar="N",
            callback=at_least(1),
            help="Repeats of every cell.",
            show_default="the preset's",
        ),
    ] = None,
    warmup: Annotated[
        str | None,
        typer.Option(
            metavar="TIME",
            help="Load before measuring, not counted.",
            show_default="the preset's",
        ),
    ] = None,
    preset: Annotated[
        str,
        typer.Option("--preset", "-p", metavar="NAME", help=describe_presets(available_stacks())),
    ] = "quick",
    workers: Annotated[
        int | None,
        typer.Option(
            metavar="N",
            callback=at_least(1),
            envvar="PGARENA_WORKERS",
            help="Server worker processes.",
            show_default=server_default("workers"),
        ),
    ] = None,
    threads: Annotated[
        int | None,
        typer.Option(
            metavar="N",
            callback=at_least(1),
            envvar="PGARENA_THREADS",
            help="Threads for sync endpoints.",
            show_default="pool size + overflow",
        ),
    ] = None,
    pool_size: Annotated[
        int | None,
        typer.Option(
            metavar="N",
            callback=at_least(1),
            envvar="PGARENA_POOL_SIZE",
            help="Database pool per worker.",
            show_default=server_default("pool_size"),
        ),
    ] = None,
    max_overflow: Annotated[
        int | None,
        typer.Option(
            metavar="N",
            callback=at_least(0),
            envvar="PGARENA_MAX_OVERFLOW",
            help="Connections beyond the pool.",
            show_default=server_default("max_overflow"),
        ),
    ] = None,
    server: Annotated[
        str | None,
        typer.Option(
            metavar="NAME",
            help="ASGI server: uvicorn, gunicorn or granian.",
            show_default="uvicorn",
        ),
    ] = None,
    server_lifetime: Annotated[
        str | None,
        typer.Option(
            metavar="cell|stack|repeat",
            help="cell: a fresh server per cell; stack: one per stack and repeat; repeat: "
            "every stack's server alive through a repeat, the stacks taking turns cell by cell.",
            show_default="the preset's",
        ),
    ] = None,
    slow_ms: Annotated[
        int,
        typer.Option(
            metavar="MS",
            callback=at_least(0),
            help="How long each slow-db request waits in PostgreSQL.",
        ),
    ] = 50,
    slo: Annotated[
        list[str] | None,
        typer.Option(
            metavar="SLO",
            help="A threshold every cell must meet, k6-style: 'p99<100ms', 'errors<1%', "
            "'rps>500', optionally scoped 'STACK:WORKLOAD:p99<20ms'. Repeatable; a failure "
            "makes the run exit 1.",
            show_default="none",
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            metavar="DIR",
            help="Output directory.",
            show_default="./arena-results/<UTC time>",
        ),
    ] = None,
    target: Annotated[
        str | None,
        typer.Option(
            metavar="URL",
            help="Measure a running service at this http:// URL.",
            show_default="start pgarena's servers",
        ),
    ] = None,
    allow_writes: Annotated[
        bool, typer.Option(help="With --target: allow workloads that write.")
    ] = False,
    generators: Annotated[
        int, typer.Option(metavar="N", callback=at_least(1), help="Load generator processes.")
    ] = 1,
    workload_file: Annotated[
        Path | None,
        typer.Option(
            metavar="FILE",
            help="A TOML workload file (README: 'Your own service and workload'); runs it "
            "instead of --workloads, or beside the ones --workloads names.",
        ),
    ] = None,
    timeout: Annotated[
        str, typer.Option(metavar="TIME", callback=positive_duration, help="Per-request timeout.")
    ] = "10s",
    quiet: Annotated[
        bool,
        typer.Option("--quiet", "-q", help="No progress on stderr; warnings and the result only."),
    ] = False,
    json_output: Annotated[
        bool,
        typer.Option(
            "--json",
            help="Print one JSON document on stdout (summaries, verdicts, SLO results) "
            "instead of the table.",
        ),
    ] = False,
) -> RunOutcome:
    """Benchmark the stacks: every stack x workload x concurrency x repeat, one result file.

    Starts PostgreSQL (embedded, or DATABASE_URL, whose tables are truncated and re-seeded).
    For every cell: a server, a warmup, a measurement by a separate load generator process;
    throughput with a 95% interval, latency percentiles, errors, CPU and memory of the
    server, PostgreSQL and the generator, statements per request. Ctrl-C keeps every
    finished cell.
    """
    from pgarena.bench.display import RichReporter, output, print_summary
    from pgarena.bench.runner import RunConfig, SilentReporter, Target, check_writable, run_plan
    from pgarena.bench.servers import ServerOptions
    from pgarena.results.slo import parse_slo
    from pgarena.service.server import SERVERS

    if server is not None and server not in SERVERS:
        raise UserError(f"unknown server {server!r}; choose from: {', '.join(SERVERS)}")
    thresholds = [parse_slo(text) for text in slo or []]
    known_stacks = available_stacks()
    stack_names = parse_names(stacks) if stacks else known_stacks
    target_spec = Target.parse(target, https=True) if target else None
    if target_spec is None:
        for name in stack_names:
            if name not in known_stacks:
                raise UserError(f"unknown stack {name!r}; choose from: {', '.join(known_stacks)}")
    elif len(stack_names) != 1:
        stack_names = ["target"]  # one service is measured; --stacks NAME only labels it
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
        start_servers=target_spec is None,
    )
    if target_spec is not None and not allow_writes:
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
        target=target_spec,
        server_options=ServerOptions(
            workers=workers,
            threads=threads,
            pool_size=pool_size,
            max_overflow=max_overflow,
            server=server,
        ),
        generator_processes=generators,
        timeout_s=parse_seconds(timeout, "--timeout"),
        slos=tuple(thresholds),
    )
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
    stack: Annotated[
        str, typer.Option("--stack", "-s", metavar="NAME", help="Stack of the server to load.")
    ] = "async",
    path: Annotated[str, typer.Option(help="Endpoint both tools request.")] = "/users/1",
    concurrency: Annotated[
        str,
        typer.Option(
            "--concurrency",
            "-c",
            metavar="N[,N...]",
            help="Comma-separated connection counts (the presets' levels).",
        ),
    ] = "10,50,100",
    duration: Annotated[
        str,
        typer.Option(
            "--duration", "-d", metavar="TIME", help="Measured time per tool, level and round."
        ),
    ] = "4s",
    rounds: Annotated[
        int,
        typer.Option(
            metavar="N", callback=at_least(1), help="Rounds per level (medians compared)."
        ),
    ] = 3,
    target: Annotated[
        str | None,
        typer.Option(
            metavar="URL",
            help="Load a running service at this http:// URL instead.",
            show_default="start a server",
        ),
    ] = None,
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
