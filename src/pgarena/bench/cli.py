"""`pgarena run` and `pgarena calibrate`: their options, parsed; the work is elsewhere.

The plan is built in `plan.py`, the database prepared in `database.py`, the cells run in
`runner.py`, and what the user sees is drawn by `display.py`. Reports are written by the
top-level command (`pgarena.cli`), which calls this and then `pgarena.report`: the harness
never imports the reports.
"""

from __future__ import annotations

import re
import signal
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from pgarena.bench.plan import build_plan, describe_presets
from pgarena.bench.workloads import WORKLOADS
from pgarena.errors import UserError


def available_stacks() -> list[str]:
    """Every stack `pgarena serve` knows, in its order."""
    from pgarena.service.stacks import STACKS

    return list(STACKS)


def parse_seconds(text: str, option: str) -> float:
    """'10s', '500ms', '2m', '1.5' (seconds) -> seconds."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m|min)?\s*", text)
    if match is None:
        raise UserError(f"{option}: expected a duration like 10s, 500ms or 2m, got {text!r}")
    value = float(match.group(1))
    unit = match.group(2) or "s"
    return value / 1000 if unit == "ms" else value * 60 if unit in ("m", "min") else value


def parse_names(text: str) -> list[str]:
    """'a,b, c' -> ['a', 'b', 'c']."""
    return [name.strip() for name in text.split(",") if name.strip()]


def parse_counts(text: str, option: str) -> list[int]:
    """'1,10,100' -> [1, 10, 100], each >= 1."""
    try:
        counts = [int(part) for part in parse_names(text)]
    except ValueError:
        raise UserError(f"{option}: expected numbers like 1,10,100, got {text!r}") from None
    if not counts or min(counts) < 1:
        raise UserError(f"{option}: every value must be >= 1")
    return counts


@dataclass(frozen=True)
class RunOutcome:
    """Where a finished run's results are, and whether every SLO held."""

    results: Path
    slo_failed: bool


def run(
    stacks: Annotated[
        str | None, typer.Option(help="Comma-separated stacks (default: all).")
    ] = None,
    workloads: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated workloads or groups (advanced, queries, updates, techempower, "
            f"all). Workloads: {', '.join(WORKLOADS)}."
        ),
    ] = None,
    concurrency: Annotated[
        str | None, typer.Option(help="Comma-separated connection counts, e.g. 1,10,100.")
    ] = None,
    duration: Annotated[str | None, typer.Option(help="Measured time per cell, e.g. 10s.")] = None,
    requests: Annotated[
        int | None, typer.Option(min=1, help="Measure this many requests per cell instead.")
    ] = None,
    rate: Annotated[
        float | None,
        typer.Option(min=0.001, help="Open loop: requests per second due (latency from due time)."),
    ] = None,
    repeats: Annotated[int | None, typer.Option(min=1, help="Repeats of every cell.")] = None,
    warmup: Annotated[str | None, typer.Option(help="Load before measuring, not counted.")] = None,
    preset: Annotated[str, typer.Option(help=describe_presets(available_stacks()))] = "quick",
    workers: Annotated[int | None, typer.Option(min=1, help="Server worker processes.")] = None,
    threads: Annotated[int | None, typer.Option(min=1, help="Threads for sync endpoints.")] = None,
    pool_size: Annotated[int | None, typer.Option(min=1, help="Database pool per worker.")] = None,
    max_overflow: Annotated[
        int | None, typer.Option(min=0, help="Connections beyond the pool.")
    ] = None,
    server: Annotated[
        str | None, typer.Option(help="ASGI server: uvicorn, gunicorn or granian.")
    ] = None,
    server_lifetime: Annotated[
        str | None,
        typer.Option(
            help="cell: a fresh server per cell; stack: one per stack and repeat; repeat: "
            "every stack's server alive through a repeat, the stacks taking turns cell by cell."
        ),
    ] = None,
    slow_ms: Annotated[
        int, typer.Option(min=0, help="How long each slow-db request waits in PostgreSQL.")
    ] = 50,
    slo: Annotated[
        list[str] | None,
        typer.Option(
            help="A threshold every cell must meet, k6-style: 'p99<100ms', 'errors<1%', "
            "'rps>500', optionally scoped 'STACK:WORKLOAD:p99<20ms'. Repeatable; a failure "
            "makes the run exit 1."
        ),
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="Output directory (default ./arena-results/<UTC time>).")
    ] = None,
    target: Annotated[
        str | None, typer.Option(help="Measure a running service at this http:// URL.")
    ] = None,
    allow_writes: Annotated[
        bool, typer.Option(help="With --target: allow workloads that write.")
    ] = False,
    generators: Annotated[int, typer.Option(min=1, help="Load generator processes.")] = 1,
    workload_file: Annotated[
        Path | None,
        typer.Option(
            help="A TOML workload file (README: 'Your own service and workload'); runs it "
            "instead of --workloads, or beside the ones --workloads names."
        ),
    ] = None,
    timeout: Annotated[str, typer.Option(help="Per-request timeout.")] = "10s",
) -> RunOutcome:
    """Benchmark the stacks: every stack x workload x concurrency x repeat, one result file.

    Starts PostgreSQL (embedded, or DATABASE_URL, whose tables are truncated and re-seeded).
    For every cell: a server, a warmup, a measurement by a separate load generator process;
    throughput with a 95% interval, latency percentiles, errors, CPU and memory of the
    server, PostgreSQL and the generator, statements per request. Ctrl-C keeps every
    finished cell.
    """
    from pgarena.bench.display import RichReporter, console, print_summary
    from pgarena.bench.runner import RunConfig, Target, check_writable, run_plan
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
    plan = build_plan(
        preset,
        stack_names,
        # With only a workload file, "standard" holds its place until it is swapped in below.
        workloads=parse_names(workloads) if workloads else ["standard"] if workload_file else None,
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
    if workload_file is not None:
        from pgarena.bench.workload_file import load_workload_file

        own = load_workload_file(workload_file)
        kept = plan.workloads if workloads else ()
        plan = replace(plan, workloads=(*[w for w in kept if w.name != own.name], own))
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
    console.print(f"[bold]pgarena run[/] - {plan.describe()}")
    # SIGTERM (a kill, a CI timeout) ends the run like Ctrl-C: finished cells are kept and
    # the file says "interrupted".
    previous = signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    try:
        with RichReporter(plan) as reporter:
            writer = run_plan(config, reporter, console)
    except KeyboardInterrupt:
        results = out_dir / "results.json"
        console.print(
            f"[yellow]interrupted[/]: finished cells kept in {results}; "
            f"`pgarena report {results}` writes their reports"
        )
        raise SystemExit(130) from None
    finally:
        signal.signal(signal.SIGTERM, previous)
    print_summary(writer.run, writer.path)
    return RunOutcome(writer.path, any(not result["passed"] for result in writer.run.slo))


def _raise_keyboard_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def calibrate(
    stack: Annotated[str, typer.Option(help="Stack of the server to load.")] = "async",
    path: Annotated[str, typer.Option(help="Endpoint both tools request.")] = "/users/1",
    concurrency: Annotated[
        str, typer.Option(help="Comma-separated connection counts (the presets' levels).")
    ] = "10,50,100",
    duration: Annotated[str, typer.Option(help="Measured time per tool, level and round.")] = "4s",
    rounds: Annotated[int, typer.Option(min=1, help="Rounds per level (medians compared).")] = 3,
    target: Annotated[
        str | None, typer.Option(help="Load a running service at this http:// URL instead.")
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
