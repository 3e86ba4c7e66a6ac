"""The figures a report shows: a view of one `Run`, never a recomputation.

Every report (Markdown, HTML, charts) reads the same `RunFigures`, so the three can never
disagree; and `RunFigures` reads the summaries and verdicts the run stored or that
`pgarena.results` derives from them, so a report cannot disagree with `pgarena run` either.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pgarena.results.model import Cell, CellKey, Keyed, Run, Summary
from pgarena.results.stats import Estimate
from pgarena.results.verdicts import StackComparison, stack_comparisons

# The parts of the machine's CPU charts stack, in order ("other" is shown apart).
CPU_PARTS = ("server", "postgres", "generator")


@dataclass(frozen=True)
class CellFigures(Keyed):
    """One (stack, workload, concurrency): its stored summary and its repeats."""

    summary: Summary
    repeats: list[Cell]  # the repeats that finished, in repeat order
    failures: list[Cell]  # the repeats that failed, with their reason

    @property
    def key(self) -> CellKey:  # type: ignore[override]
        """The cell key."""
        return self.summary.key

    @property
    def label(self) -> str:
        """'async at concurrency 64', for sentences and warnings."""
        return f"{self.stack} at concurrency {self.concurrency}"

    @property
    def warnings(self) -> list[str]:
        """The run's warnings for this cell, as sentences. "One repeat" is said once for
        the run (see findings), not beside every figure, where it would bury the warnings
        that single out a cell."""
        return [w.message for w in self.summary.warnings if w.kind != "single-repeat"]

    @property
    def single_repeat(self) -> bool:
        """True when only one repeat finished: the interval is within one server's run."""
        return any(w.kind == "single-repeat" for w in self.summary.warnings)

    @property
    def rps(self) -> Estimate | None:
        """Requests per second, or None when no repeat finished."""
        return self.summary.rps if self.summary.repeats else None

    @property
    def requests_per_server_cpu_s(self) -> Estimate | None:
        """Requests per server CPU-second."""
        return self.summary.requests_per_server_cpu_s if self.summary.repeats else None

    @property
    def latency_p50_ms(self) -> Estimate | None:
        """Median latency across repeats."""
        return self.summary.latency_p50_ms if self.summary.repeats else None

    @property
    def latency_p99_ms(self) -> Estimate | None:
        """99th percentile latency across repeats."""
        return self.summary.latency_p99_ms if self.summary.repeats else None

    @property
    def peak_rss_bytes(self) -> float | None:
        """The server's peak RSS (all processes), highest across repeats."""
        return self.summary.peak_rss_bytes

    @property
    def cpu_share(self) -> dict[str, float] | None:
        """Mean share of the machine's CPU per part."""
        shares = {k: v for k, v in self.summary.cpu_share.items() if v is not None}
        return shares or None

    @property
    def histograms(self) -> list[str]:
        """The encoded HDR latency histograms (microseconds) of every finished repeat."""
        return [cell.histogram for cell in self.repeats if cell.histogram]


@dataclass
class RunFigures:
    """Everything a report needs from one result file, in the run's own order."""

    run: Run
    cells: dict[tuple[str, str, int], CellFigures] = field(default_factory=dict)
    comparisons: list[StackComparison] = field(default_factory=list)

    @property
    def stacks(self) -> list[str]:
        """Stacks in the run's order."""
        return self.run.stacks

    @property
    def workloads(self) -> list[str]:
        """Workloads in the run's order."""
        return self.run.workloads

    @property
    def concurrency(self) -> list[int]:
        """Concurrency levels, ascending."""
        return self.run.concurrency

    @property
    def metadata(self) -> Mapping[str, Any]:
        """The run's metadata block (machine, versions, settings, command line)."""
        return self.run.metadata

    @property
    def plan(self) -> Mapping[str, Any]:
        """The run's plan (stacks, workloads, concurrency, repeats, duration...)."""
        return self.run.plan

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
        key = CellKey(stack, workload, concurrency)
        return next((c for c in self.comparisons if c.key == key), None)

    @property
    def failed_cells(self) -> list[Cell]:
        """Every cell (one repeat) that failed, with its reason."""
        return self.run.failed_cells

    @property
    def has_server_figures(self) -> bool:
        """False when no server's CPU and memory were measured (a target on another machine)."""
        return any(
            cell.requests_per_server_cpu_s is not None or cell.peak_rss_bytes is not None
            for cell in self.cells.values()
        )


def build_figures(run: Run) -> RunFigures:
    """The report's view of a run: its stored summaries, its cells, its verdicts."""
    figures = RunFigures(run=run, comparisons=stack_comparisons(run))
    for summary in run.summaries:
        members = run.cells_of(summary.key)
        key = summary.key
        figures.cells[(key.stack, key.workload, key.concurrency)] = CellFigures(
            summary=summary,
            repeats=[cell for cell in members if cell.measured],
            failures=[cell for cell in members if not cell.measured],
        )
    return figures
