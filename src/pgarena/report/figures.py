"""The figures a report shows, derived from one result file.

Every report (Markdown, HTML, charts) is a view of the same `RunFigures`, so the three can
never disagree. Per-repeat values come from the result file's cells and are summarised with
the harness's own statistics (`pgarena.results.stats`), the same functions `pgarena run` and
`pgarena compare` use; the warnings (unstable, errors) are the ones the run recorded.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pgarena.results.stats import Comparison, Summary, compare, summarize

# The parts of the machine's CPU a cell accounts for, in the order charts stack them.
CPU_PARTS = ("server", "postgres", "generator")


@dataclass(frozen=True)
class CellFigures:
    """One (stack, workload, concurrency) across its repeats."""

    stack: str
    workload: str
    concurrency: int
    repeats: list[dict[str, Any]]  # the cells that finished ("ok"), in repeat order
    failures: list[dict[str, Any]]  # the cells that failed, with their reason
    warnings: list[str]
    rps: Summary | None
    requests_per_server_cpu_s: Summary | None
    latency_p50_ms: Summary | None
    latency_p99_ms: Summary | None

    @property
    def label(self) -> str:
        """'async at concurrency 64', for sentences and warnings."""
        return f"{self.stack} at concurrency {self.concurrency}"

    @property
    def peak_rss_bytes(self) -> float | None:
        """The server's peak RSS (all processes), highest across repeats; None without it."""
        peaks = [_resource(cell, "server_rss_peak_bytes") for cell in self.repeats]
        known = [peak for peak in peaks if peak is not None]
        return max(known) if known else None

    @property
    def cpu_share(self) -> dict[str, float] | None:
        """Mean share of the machine's CPU per part (server, postgres, generator)."""
        shares = [cell.get("cpu_share") for cell in self.repeats if cell.get("cpu_share")]
        if not shares:
            return None
        return {
            part: statistics.fmean(share.get(part) or 0.0 for share in shares)
            for part in CPU_PARTS
            if any(share.get(part) is not None for share in shares)
        }

    @property
    def histograms(self) -> list[str]:
        """The encoded HDR latency histograms (microseconds) of every finished repeat."""
        return [cell["histogram"] for cell in self.repeats if cell.get("histogram")]


@dataclass(frozen=True)
class StackComparison:
    """One stack against the run's first stack, on one workload and concurrency."""

    base: str
    stack: str
    workload: str
    concurrency: int
    rps: Comparison | None
    requests_per_server_cpu_s: Comparison | None


@dataclass
class RunFigures:
    """Everything a report needs from one result file, in the run's own order."""

    results: dict[str, Any]
    stacks: list[str]
    workloads: list[str]
    concurrency: list[int]
    cells: dict[tuple[str, str, int], CellFigures] = field(default_factory=dict)
    comparisons: list[StackComparison] = field(default_factory=list)

    @property
    def metadata(self) -> dict[str, Any]:
        """The run's metadata block (machine, versions, settings, command line)."""
        return self.results.get("metadata") or {}

    @property
    def plan(self) -> dict[str, Any]:
        """The run's plan (stacks, workloads, concurrency, repeats, duration...)."""
        return self.results.get("plan") or {}

    @property
    def base_stack(self) -> str | None:
        """The stack every other stack is compared with: the first one of the run."""
        return self.stacks[0] if self.stacks else None

    def cell(self, stack: str, workload: str, concurrency: int) -> CellFigures | None:
        """The figures of one cell, or None when the run has no such cell."""
        return self.cells.get((stack, workload, concurrency))

    def cells_of(self, workload: str) -> list[CellFigures]:
        """The cells of one workload, by concurrency then stack order."""
        return [
            cell
            for level in self.concurrency
            for stack in self.stacks
            if (cell := self.cells.get((stack, workload, level))) is not None
        ]

    def levels_of(self, workload: str) -> list[int]:
        """The concurrency levels measured for one workload."""
        return [
            level
            for level in self.concurrency
            if any((stack, workload, level) in self.cells for stack in self.stacks)
        ]

    def comparisons_of(self, workload: str) -> list[StackComparison]:
        """Stack-versus-first-stack comparisons of one workload."""
        return [comparison for comparison in self.comparisons if comparison.workload == workload]

    def comparison(self, stack: str, workload: str, concurrency: int) -> StackComparison | None:
        """The comparison of one stack with the first stack in one cell, if both ran."""
        for candidate in self.comparisons:
            if (candidate.stack, candidate.workload, candidate.concurrency) == (
                stack,
                workload,
                concurrency,
            ):
                return candidate
        return None

    @property
    def failed_cells(self) -> list[dict[str, Any]]:
        """Every cell (one repeat) that failed, with its reason."""
        return [cell for cells in self.cells.values() for cell in cells.failures]

    @property
    def has_server_figures(self) -> bool:
        """False in --target mode, where the server's CPU and memory are not measured."""
        return any(
            cell.requests_per_server_cpu_s is not None or cell.peak_rss_bytes is not None
            for cell in self.cells.values()
        )


def _resource(cell: Mapping[str, Any], name: str) -> float | None:
    resources = cell.get("resources") or {}
    value = resources.get(name)
    return float(value) if value is not None else None


def _summary_of(values: Iterable[float | None]) -> Summary | None:
    known = [float(value) for value in values if value is not None]
    return summarize(known) if known else None


def _ordered(preferred: Sequence[Any], seen: Iterable[Any]) -> list[Any]:
    """The plan's order first, then anything the cells hold that the plan does not name."""
    seen = list(dict.fromkeys(seen))
    return [item for item in preferred if item in seen] + [
        item for item in seen if item not in preferred
    ]


def _comparison(base: Summary | None, new: Summary | None) -> Comparison | None:
    if base is None or new is None:
        return None
    return compare(base.values, new.values, higher_is_better=True)


def build_figures(results: Mapping[str, Any]) -> RunFigures:
    """Derive every report figure from a loaded result file."""
    plan = results.get("plan") or {}
    raw_cells = results.get("cells") or []
    stacks = _ordered(plan.get("stacks") or [], (cell["stack"] for cell in raw_cells))
    workloads = _ordered(plan.get("workloads") or [], (cell["workload"] for cell in raw_cells))
    levels = sorted({int(cell["concurrency"]) for cell in raw_cells})
    figures = RunFigures(
        results=dict(results), stacks=stacks, workloads=workloads, concurrency=levels
    )

    # "One repeat" is said once for the run (see findings), not beside every figure, where
    # it would bury the warnings that single out a cell.
    warnings_by_key = {
        (entry["stack"], entry["workload"], int(entry["concurrency"])): [
            warning
            for warning in entry.get("warnings") or []
            if not warning.startswith("one repeat")
        ]
        for entry in results.get("summary") or []
    }
    grouped: dict[tuple[str, str, int], list[dict[str, Any]]] = {}
    for cell in raw_cells:
        key = (cell["stack"], cell["workload"], int(cell["concurrency"]))
        grouped.setdefault(key, []).append(cell)

    for key, cells in grouped.items():
        cells = sorted(cells, key=lambda cell: cell.get("repeat", 0))
        finished = [cell for cell in cells if cell.get("status") == "ok"]
        failures = [cell for cell in cells if cell.get("status") != "ok"]
        warnings = warnings_by_key.get(key, [])
        if failures:
            warnings = [*warnings, f"failed: {len(failures)} of {len(cells)} repeats"]
        figures.cells[key] = CellFigures(
            stack=key[0],
            workload=key[1],
            concurrency=key[2],
            repeats=finished,
            failures=failures,
            warnings=warnings,
            rps=_summary_of(cell.get("rps") for cell in finished),
            requests_per_server_cpu_s=_summary_of(
                cell.get("requests_per_server_cpu_s") for cell in finished
            ),
            latency_p50_ms=_summary_of(
                (cell.get("latency_ms") or {}).get("p50") for cell in finished
            ),
            latency_p99_ms=_summary_of(
                (cell.get("latency_ms") or {}).get("p99") for cell in finished
            ),
        )

    base = figures.base_stack
    for workload in workloads:
        for level in levels:
            base_cell = figures.cell(base, workload, level) if base else None
            if base_cell is None:
                continue
            for stack in stacks[1:]:
                cell = figures.cell(stack, workload, level)
                if cell is None:
                    continue
                figures.comparisons.append(
                    StackComparison(
                        base=base,
                        stack=stack,
                        workload=workload,
                        concurrency=level,
                        rps=_comparison(base_cell.rps, cell.rps),
                        requests_per_server_cpu_s=_comparison(
                            base_cell.requests_per_server_cpu_s, cell.requests_per_server_cpu_s
                        ),
                    )
                )
    return figures
