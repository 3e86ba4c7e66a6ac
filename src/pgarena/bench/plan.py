"""What a run will do: presets, the plan built from them and the command line, the order of
its cells and how long it takes."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from pgarena.bench.workloads import Workload, resolve_workloads
from pgarena.errors import UserError

# Measured on the 2-core reference machine: `pgarena serve` takes ~2.5 s from exec to a
# healthy /health (imports, migration check, pool), stopping ~0.2 s.
SERVER_START_ESTIMATE_S = 3.0
# Starting (first time: initialising) the embedded PostgreSQL and seeding it.
DATABASE_SETUP_ESTIMATE_S = 10.0
# Per cell: the generator hand-off, resource snapshots, writing the result file (measured
# ~0.6 s on the loaded 2-core machine).
CELL_OVERHEAD_S = 0.7
SERVER_LIFETIMES = ("cell", "stack", "repeat")


@dataclass(frozen=True)
class Preset:
    """A named set of defaults for `pgarena run`."""

    name: str
    summary: str
    workloads: tuple[str, ...]
    concurrency: tuple[int, ...]
    repeats: int
    warmup_s: float
    duration_s: float
    server_lifetime: str
    # When set, duration and repeats shrink so the whole run fits in this many seconds
    # whatever the number of stacks (see `fit_to_budget`).
    budget_s: float | None = None


MIN_BUDGET_DURATION_S = 0.5
MIN_FITTED_DURATION_S = 1.0

PRESETS: dict[str, Preset] = {
    preset.name: preset
    for preset in (
        Preset(
            "quick",
            "the main questions with a verdict on each, in about 4 minutes: sync vs async "
            "ORM, the drivers, ORM vs raw SQL, at low and high concurrency, on seed 004's "
            "reads and on a slow database; 2 repeats; every stack's server alive through a "
            "repeat, the stacks taking turns cell by cell so they meet the same machine",
            ("standard", "slow-db"),
            (10, 100),
            repeats=2,
            warmup_s=1.0,
            duration_s=3.0,
            server_lifetime="repeat",
            budget_s=240.0,
        ),
        Preset(
            "standard",
            "every seed workload and the main TechEmpower types at 2 concurrency levels, "
            "3 repeats; a fresh server for every cell",
            (
                "standard",
                "mixed",
                "advanced",
                "crud",
                "db",
                "queries-1",
                "queries-20",
                "updates-5",
                "fortunes",
                "json",
                "slow-db",
            ),
            (10, 100),
            repeats=3,
            warmup_s=2.0,
            duration_s=5.0,
            server_lifetime="cell",
        ),
        Preset(
            "full",
            "every workload at 5 concurrency levels, 5 repeats of 10 s; a fresh server for "
            "every cell (hours: run it overnight)",
            ("all",),
            (1, 10, 50, 100, 200),
            repeats=5,
            warmup_s=3.0,
            duration_s=10.0,
            server_lifetime="cell",
        ),
    )
}


@dataclass(frozen=True)
class PlannedCell:
    """One cell to run: a stack, a workload, a concurrency level and a repeat."""

    stack: str
    workload: Workload
    concurrency: int
    repeat: int


@dataclass(frozen=True)
class Plan:
    """Everything that decides which cells run, in which order, for how long."""

    stacks: tuple[str, ...]
    workloads: tuple[Workload, ...]
    concurrency: tuple[int, ...]
    repeats: int
    duration_s: float | None
    requests: int | None
    warmup_s: float
    rate: float | None
    preset: str | None
    server_lifetime: str = "cell"
    slow_ms: int = 50
    start_servers: bool = True  # False with --target
    series_interval_s: float = 0.1

    @property
    def mode(self) -> str:
        """ "open" with a fixed arrival rate, else "closed"."""
        return "open" if self.rate else "closed"

    def cells(self) -> list[PlannedCell]:
        """Every cell, in run order.

        Repeats are the outer loop, so each repeat visits every stack before the next
        repeat starts (A B A B ...): slow drift of the machine spreads over all stacks
        instead of favouring whoever ran first. With one server per stack the stack is the
        next loop (a server runs all of its cells); otherwise stacks alternate cell by cell.
        """
        order: list[PlannedCell] = []
        for repeat in range(self.repeats):
            if self.server_lifetime == "stack":  # a server runs all of its stack's cells
                for stack in self.stacks:
                    for workload in self.workloads:
                        for concurrency in self.concurrency:
                            order.append(PlannedCell(stack, workload, concurrency, repeat))
            else:
                for workload in self.workloads:
                    for concurrency in self.concurrency:
                        for stack in self.stacks:
                            order.append(PlannedCell(stack, workload, concurrency, repeat))
        return order

    def warmup_of(self, cell: PlannedCell) -> float:
        """The warmup before `cell`: the same for every cell here (`pgarena claims` gives a
        queue that takes longer to fill a longer one)."""
        return self.warmup_s

    def duration_of(self, cell: PlannedCell) -> float | None:
        """The measured window of `cell` (None: a request count): the same for every cell
        here (`pgarena claims` measures a slowly turning queue for longer)."""
        return self.duration_s

    def server_starts(self) -> int:
        """How many servers the run starts."""
        if not self.start_servers:
            return 0
        if self.server_lifetime in ("stack", "repeat"):
            return self.repeats * len(self.stacks)
        return len(self.cells())

    def cell_seconds(self) -> float:
        """Estimated seconds of load per cell (warmup + measurement + overhead)."""
        measured = self.duration_s if self.duration_s is not None else 5.0  # --requests: a guess
        return self.warmup_s + measured + CELL_OVERHEAD_S

    def estimate_s(self) -> float:
        """Estimated wall time of the whole run."""
        setup = DATABASE_SETUP_ESTIMATE_S if self.start_servers else 0.0
        return (
            setup
            + self.server_starts() * SERVER_START_ESTIMATE_S
            + len(self.cells()) * self.cell_seconds()
        )

    def describe(self) -> str:
        """'36 cells: 6 stacks x 3 workloads x ..., 1 s warmup + 4 s per cell; estimated 4 min'."""
        measured = f"{self.requests} requests" if self.requests else f"{self.duration_s:g} s"
        loop = f"open loop at {self.rate:g} req/s" if self.rate else "closed loop"
        return (
            f"{len(self.cells())} cells: {len(self.stacks)} stacks x {len(self.workloads)} "
            f"workloads x {len(self.concurrency)} concurrency levels x {self.repeats} repeats, "
            f"{self.warmup_s:g} s warmup + {measured} per cell, {loop}; "
            f"estimated {format_duration(self.estimate_s())}"
        )

    def to_dict(self) -> dict[str, Any]:
        """The `plan` object of the result file."""
        return {
            "stacks": list(self.stacks),
            "workloads": [workload.name for workload in self.workloads],
            "concurrency": list(self.concurrency),
            "repeats": self.repeats,
            "duration_s": self.duration_s,
            "requests": self.requests,
            "warmup_s": self.warmup_s,
            "rate": self.rate,
            "mode": self.mode,
            "preset": self.preset,
            "server_lifetime": self.server_lifetime,
            "slow_ms": self.slow_ms,
            "series_interval_s": self.series_interval_s,
            "cells": len(self.cells()),
            "estimated_s": round(self.estimate_s(), 1),
            "workload_descriptions": {w.name: w.description for w in self.workloads},
        }


def fit_to_budget(plan: Plan, preset: Preset) -> Plan:
    """Shrink `plan` to the preset's time budget: first the measured duration (down to
    `MIN_FITTED_DURATION_S`), then the number of repeats, then the duration again (down to
    `MIN_BUDGET_DURATION_S`). Plans without a budget are returned as they are."""
    if preset.budget_s is None:
        return plan
    budget = preset.budget_s
    for repeats in range(plan.repeats, 0, -1):
        candidate = replace(plan, repeats=repeats)
        duration = _duration_within(candidate, budget)
        if duration >= MIN_FITTED_DURATION_S or repeats == 1:
            return replace(candidate, duration_s=max(MIN_BUDGET_DURATION_S, duration))
    return plan  # pragma: no cover - the loop always returns


def _duration_within(plan: Plan, budget: float) -> float:
    cells = max(1, len(plan.cells()))
    fixed = DATABASE_SETUP_ESTIMATE_S + plan.server_starts() * SERVER_START_ESTIMATE_S
    per_cell = (budget - fixed) / cells - plan.warmup_s - CELL_OVERHEAD_S
    return round(min(plan.duration_s or per_cell, per_cell), 2)


def format_duration(seconds: float) -> str:
    """'45 s', '12 min', '3.5 h'."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def build_plan(
    preset_name: str,
    stacks: list[str],
    *,
    workloads: list[str] | None = None,
    concurrency: list[int] | None = None,
    duration_s: float | None = None,
    requests: int | None = None,
    warmup_s: float | None = None,
    rate: float | None = None,
    repeats: int | None = None,
    server_lifetime: str | None = None,
    slow_ms: int = 50,
    start_servers: bool = True,
    files: tuple[Workload, ...] = (),
) -> Plan:
    """The plan of a run: the preset's defaults, overridden by what the user gave.

    `files` are workloads read from the user's workload files: they run instead of the
    preset's workloads, or beside the ones `workloads` names. A preset with a time budget is
    fitted to it only when the user left duration, requests and repeats to the preset."""
    if preset_name not in PRESETS:
        raise UserError(f"unknown preset {preset_name!r}; choose from: {', '.join(PRESETS)}")
    preset = PRESETS[preset_name]
    names = workloads if workloads is not None else () if files else preset.workloads
    own = {workload.name for workload in files}
    chosen = [w for w in resolve_workloads(names) if w.name not in own] + list(files)
    if not chosen:
        raise UserError("--workloads: no workload given")
    if duration_s is not None and requests is not None:
        raise UserError("give --duration or --requests, not both")
    if duration_s is not None and duration_s <= 0:
        raise UserError("--duration must be > 0")
    lifetime = server_lifetime or preset.server_lifetime
    if lifetime not in SERVER_LIFETIMES:
        raise UserError(f"--server-lifetime must be one of: {', '.join(SERVER_LIFETIMES)}")
    plan = Plan(
        stacks=tuple(stacks),
        workloads=tuple(chosen),
        concurrency=tuple(concurrency) if concurrency else preset.concurrency,
        repeats=repeats or preset.repeats,
        duration_s=None if requests is not None else duration_s or preset.duration_s,
        requests=requests,
        warmup_s=warmup_s if warmup_s is not None else preset.warmup_s,
        rate=rate,
        preset=preset.name,
        server_lifetime=lifetime,
        slow_ms=slow_ms,
        start_servers=start_servers,
    )
    if duration_s is None and requests is None and repeats is None:
        plan = fit_to_budget(plan, preset)
    return plan


def describe_presets(stacks: list[str]) -> str:
    """Every preset, its estimated time with these stacks and what it runs (for --help)."""
    return " ".join(
        f"{name}: ~{format_duration(plan.estimate_s())} with the {len(stacks)} stacks "
        f"({len(plan.cells())} cells) - {preset.summary}."
        for name, preset in PRESETS.items()
        if (plan := build_plan(name, stacks))
    )
