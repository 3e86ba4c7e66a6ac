"""`pgarena locust`: its options; imports Locust only in the processes that run it.

Without the `locust` extra the command says how to install it (exit 2). `--worker` turns
this command into a Locust worker for a master on another machine: the process replaces
itself with `python -m pgarena.bench.locust.worker`, so that gevent's patching happens
before anything else is imported.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from pgarena.bench import options as opt
from pgarena.bench.options import at_least, parse_counts, parse_names, parse_seconds
from pgarena.errors import UserError

LocustWorkers = Annotated[
    int,
    typer.Option(
        "--workers", metavar="N", callback=at_least(0), help="Locust worker processes here."
    ),
]
ExpectWorkers = Annotated[
    int | None,
    typer.Option(
        metavar="N",
        callback=at_least(1),
        help="Workers to wait for in all, the ones on other machines included; the command "
        "to run there is printed.",
        show_default="--workers",
    ),
]
MasterHost = Annotated[
    str,
    typer.Option(
        metavar="ADDRESS",
        help="The master's address: where it listens, and what workers connect to.",
    ),
]
MasterPort = Annotated[int, typer.Option(metavar="PORT", help="The master's port.")]
Worker = Annotated[
    bool,
    typer.Option(
        "--worker",
        help="Be a worker of the master at --master-host (on another machine); takes "
        "--workloads, --workload-file, --slow-ms and --timeout as the master has them.",
    ),
]


def require_locust() -> None:
    """A one-line error (exit 2) when the `locust` extra is missing."""
    if importlib.util.find_spec("locust") is None:
        raise UserError("pgarena locust needs Locust: pip install 'pgarena[locust]'")


def locust_command(
    stacks: opt.Stacks = None,
    workloads: opt.Workloads = None,
    concurrency: opt.Concurrency = None,
    duration: opt.Duration = None,
    warmup: opt.Warmup = None,
    repeats: opt.Repeats = None,
    preset: opt.Preset = "quick",
    workers: LocustWorkers = 1,
    expect_workers: ExpectWorkers = None,
    master_host: MasterHost = "127.0.0.1",
    master_port: MasterPort = 5557,
    worker: Worker = False,
    slow_ms: opt.SlowMs = 50,
    pooler: opt.Pooler = None,
    out: opt.Out = None,
    target: opt.Target = None,
    target_database: opt.TargetDatabase = None,
    workload_file: opt.WorkloadFile = None,
    timeout: opt.Timeout = "10s",
    quiet: opt.Quiet = False,
) -> None:
    """Run pgarena's workloads on Locust, into the same result file as `pgarena run`.

    A master and --workers local worker processes, more on other machines with
    --expect-workers. The result file says `generator: locust`; `report` and `compare` read
    it as any other."""
    require_locust()
    timeout_s = parse_seconds(timeout, "--timeout")
    if worker:
        from pgarena.bench.locust.cluster import ClusterOptions

        joining = ClusterOptions(
            workloads=workloads or "",
            workload_file=str(workload_file) if workload_file is not None else None,
            slow_ms=slow_ms,
            timeout_s=timeout_s,
            master_host=master_host,
            master_port=master_port,
        )
        module = ["-m", "pgarena.bench.locust.worker"]
        os.execv(sys.executable, [sys.executable, *module, *joining.worker_arguments()])
    from rich.console import Console

    from pgarena.bench.display import output, print_summary
    from pgarena.bench.locust.cluster import ClusterFailed, ClusterOptions
    from pgarena.bench.locust.run import LocustRun, run_locust
    from pgarena.bench.plan import build_plan
    from pgarena.bench.runner import (
        RunConfig,
        check_target_database,
        check_writable,
        parse_targets,
    )
    from pgarena.bench.servers import ServerOptions
    from pgarena.bench.workload_file import load_workload_file
    from pgarena.database.pgbouncer import check_pooler

    check_pooler(pooler)

    expected = expect_workers or workers
    if expected < 1:
        raise UserError("--workers 0 needs --expect-workers: workers from other machines")
    if expected < workers:
        raise UserError(f"--expect-workers {expected} is fewer than --workers {workers}")
    known = opt.available_stacks()
    given_stacks = parse_names(stacks) if stacks else None
    targets = parse_targets(target or [], given_stacks)
    stack_names = list(targets) or given_stacks or known
    if not targets:
        for name in stack_names:
            if name not in known:
                raise UserError(f"unknown stack {name!r}; choose from: {', '.join(known)}")
    files = (load_workload_file(workload_file),) if workload_file is not None else ()
    plan = build_plan(
        preset,
        stack_names,
        workloads=parse_names(workloads) if workloads else None,
        files=files,
        concurrency=parse_counts(concurrency, "--concurrency") if concurrency else None,
        duration_s=parse_seconds(duration, "--duration") if duration else None,
        warmup_s=parse_seconds(warmup, "--warmup") if warmup is not None else None,
        repeats=repeats,
        slow_ms=slow_ms,
        start_servers=not targets,
    )
    if targets:
        writing = [w.name for w in plan.workloads if w.writes]
        if writing:
            raise UserError(f"--target: {', '.join(writing)} write to the target's database")
    out_dir = out or Path("arena-results") / datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    check_writable(out_dir)
    builtin = [w.name for w in plan.workloads if w.name not in {f.name for f in files}]
    cluster = ClusterOptions(
        workloads=",".join(builtin),
        workload_file=str(workload_file.resolve()) if workload_file is not None else None,
        slow_ms=slow_ms,
        timeout_s=timeout_s,
        local_workers=workers,
        expect_workers=expected,
        master_host=master_host,
        master_port=master_port,
    )
    config = RunConfig(
        plan=plan,
        out_dir=out_dir,
        targets=targets,
        target_database=check_target_database(target_database, targets),
        timeout_s=timeout_s,
        pooler=pooler if not targets else None,
        server_options=ServerOptions(transaction_pooler=pooler is not None),
    )
    progress = Console(stderr=True, quiet=quiet)
    progress.print(f"[bold]pgarena locust[/] - {plan.describe()}, {expected} Locust worker(s)")
    try:
        writer = run_locust(LocustRun(config, cluster), progress)
    except ClusterFailed as error:
        raise UserError(f"Locust: {error} (logs in {out_dir / 'locust'})") from None
    except KeyboardInterrupt:
        progress.print(f"[yellow]interrupted[/]: finished cells kept in {out_dir}")
        raise SystemExit(130) from None
    print_summary(writer.run, writer.path, output)
    output.print(f"reports: pgarena report {writer.path}", soft_wrap=True, highlight=False)
    if writer.run.cells and len(writer.run.failed_cells) == len(writer.run.cells):
        typer.secho("error: every cell failed", fg=typer.colors.RED, err=True)
        raise SystemExit(1)
