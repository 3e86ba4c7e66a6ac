"""`pgarena claims`: plan the experiments, run them through the harness, write the verdicts.

The experiments are ordinary pgarena runs, one per server configuration (`claims.plan`),
each in `<out>/runs/<configuration>/` with its own `results.json` and server logs. After
each run, every cell so far is gathered into `<out>/results.json`: one result file in the
harness's schema (each workload named for the server settings it ran under), so that
`pgarena report` and `pgarena compare` read it like any run, and a crash keeps every cell
measured. The verdicts are computed from that file alone (`claims.table`) and written beside
it (`claims.report`).
"""

from __future__ import annotations

import contextlib
from dataclasses import replace
from pathlib import Path
from typing import Any

from pgarena.claims.catalogue import Claim, Experiment, load_catalogue
from pgarena.claims.plan import Group, estimate_s, plan_groups, point_for, points_of
from pgarena.errors import UserError
from pgarena.results.file import (
    RESULT_FILENAME,
    SCHEMA_VERSION,
    load_run,
    utc_now,
    write_atomically,
)
from pgarena.results.model import Run
from pgarena.results.summary import summarize_run


def select(claims: tuple[Claim, ...], only: str | None) -> tuple[Claim, ...]:
    """The claims `--only` names (all without it); an unknown id is a one-line error."""
    if only is None:
        return claims
    wanted = [name.strip() for name in only.split(",") if name.strip()]
    known = {claim.id for claim in claims}
    unknown = [name for name in wanted if name not in known]
    if unknown or not wanted:
        raise UserError(f"--only: unknown claim {(unknown or [only])[0]!r}; see catalogue.toml")
    return tuple(claim for claim in claims if claim.id in wanted)


def experiment_points(claims: tuple[Claim, ...], quick: bool) -> dict[Experiment, list[str]]:
    """Every point the claims need, with the stacks to run there (in first-named order)."""
    points: dict[Experiment, list[str]] = {}
    for claim in claims:
        for point in points_of(claim, quick):
            for stack in claim.compare:
                stacks = points.setdefault(point_for(point, stack), [])
                if stack not in stacks:
                    stacks.append(stack)
    return points


def planned(claims: tuple[Claim, ...], quick: bool) -> list[Group]:
    """The runs that test `claims`."""
    return plan_groups(experiment_points(claims, quick), quick)


def run_claims(quick: bool, only: str | None, out: Path, *, quiet: bool = False) -> Path:
    """Run the experiments of the selected claims, write results and reports; return the
    Markdown report's path. `quiet`: no estimate and no progress on stderr."""
    from rich.console import Console

    from pgarena.bench.database import arena_database
    from pgarena.bench.plan import format_duration
    from pgarena.bench.runner import check_writable
    from pgarena.claims.report import write_claims_reports

    claims = select(load_catalogue(), only)
    groups = planned(claims, quick)
    other = planned(claims, not quick)
    check_writable(out)
    console = Console(stderr=True, quiet=quiet)
    mode, other_mode = ("--quick", "the full version") if quick else ("full", "--quick")
    console.print(
        f"{len(claims)} claims, {sum(len(g.points) for g in groups)} experiment points on "
        f"{len(groups)} server configurations, {sum(len(g.plan.cells()) for g in groups)} cells; "
        f"{mode}: estimated {format_duration(estimate_s(groups))} "
        f"({other_mode}: {format_duration(estimate_s(other))})",
        highlight=False,
    )
    runs: list[Run] = []
    try:
        with arena_database(console, purpose="pgarena claims") as database:
            for index, group in enumerate(groups, 1):
                console.print(f"[{index}/{len(groups)}] {group.describe()}", highlight=False)
                runs.append(_run_group(group, out, database))
                _gather(runs, out, quick, "running")
    except KeyboardInterrupt:
        # The interrupted run's finished cells are in its own file (written cell by cell):
        # they join the others, so that Ctrl-C loses nothing measured.
        if len(runs) < len(groups):
            with contextlib.suppress(UserError):
                runs.append(load_run(out / "runs" / groups[len(runs)].name))
        if runs:
            _gather(runs, out, quick, "interrupted")
        raise
    run = _gather(runs, out, quick, "complete")
    return write_claims_reports(claims, run, out, quick)


def _run_group(group: Group, out: Path, database: Any) -> Run:
    from pgarena.bench.runner import RunConfig, run_plan

    config = RunConfig(group.plan, out / "runs" / group.name, server_options=group.config.options())
    return run_plan(replace(config, database=database)).run


def merge_runs(runs: list[Run], quick: bool, status: str) -> Run:
    """One result file of every cell of `runs` (whose workloads never share a name)."""
    if not runs:
        raise UserError("pgarena claims: no experiment ran")
    cells = tuple(cell for run in runs for cell in run.cells)
    first = runs[0]
    descriptions: dict[str, str] = {}
    for run in runs:
        server = run.metadata.get("server") or {}
        setting = ", ".join(
            f"{k} {server.get(k)}" for k in ("pool_size", "max_overflow", "threads")
        )
        for name, text in (run.plan.get("workload_descriptions") or {}).items():
            descriptions[name] = f"{text} (server: {setting})"
    plan: dict[str, Any] = {
        **first.plan,
        "stacks": list(dict.fromkeys(s for run in runs for s in run.stacks)),
        "workloads": list(dict.fromkeys(w for run in runs for w in run.workloads)),
        "concurrency": sorted({c for run in runs for c in run.concurrency}),
        "warmup_s": min(float(run.plan["warmup_s"]) for run in runs),
        "preset": "claims --quick" if quick else "claims",
        "cells": sum(int(run.plan.get("cells") or 0) for run in runs),
        "estimated_s": round(sum(float(run.plan.get("estimated_s") or 0) for run in runs), 1),
        "workload_descriptions": descriptions,
    }
    notes = [
        *(first.metadata.get("notes") or []),
        "pgarena claims: one run per server configuration (runs/*/results.json); the settings "
        "each workload ran under are in its name (after '@') and its description, so "
        "metadata.server names none.",
    ]
    server = {**first.metadata.get("server", {}), "pool_size": None, "max_overflow": None}
    server["threads"] = None
    return Run(
        schema_version=SCHEMA_VERSION,
        status=status,
        started_at=first.started_at,
        finished_at=utc_now() if status != "running" else None,
        metadata={**first.metadata, "server": server, "notes": notes},
        plan=plan,
        cells=cells,
        summaries=tuple(summarize_run(cells)),
    )


def _gather(runs: list[Run], out: Path, quick: bool, status: str) -> Run:
    """Write every cell so far into `<out>/results.json` and return that run."""
    run = merge_runs(runs, quick, status)
    write_atomically(out / RESULT_FILENAME, run.to_dict())
    return run
