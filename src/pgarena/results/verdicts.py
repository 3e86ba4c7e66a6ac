"""Which stack is faster: every stack against the run's first, with the family of verdicts
corrected for multiple comparisons.

A run with six stacks, five workloads and two concurrency levels makes fifty comparisons;
at 95% each, a couple would be called "faster" by chance alone, and the next run would call
them differently. Holm's step-down correction keeps the chance of any false call in the
whole family at 5%: a difference is called only when its interval excludes 1 and its
adjusted p-value is below 0.05. The intervals shown stay the plain 95% ones.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from pgarena.results.model import CellKey, Run
from pgarena.results.stats import Comparison, Estimate, compare_estimates, holm

ALPHA = 0.05


@dataclass(frozen=True)
class StackComparison:
    """One stack against the base stack, on one workload and concurrency."""

    base: str
    key: CellKey
    rps: Comparison | None
    requests_per_server_cpu_s: Comparison | None

    @property
    def stack(self) -> str:
        """The stack compared with the base."""
        return self.key.stack

    @property
    def workload(self) -> str:
        """The workload both ran."""
        return self.key.workload

    @property
    def concurrency(self) -> int:
        """The concurrency both ran at."""
        return self.key.concurrency


def _compare(base: Estimate | None, new: Estimate | None) -> Comparison | None:
    if base is None or new is None or base.mean is None or new.mean is None:
        return None
    return compare_estimates(base, new, higher_is_better=True)


def stack_comparisons(run: Run) -> list[StackComparison]:
    """Every stack against the run's first stack, per workload and concurrency, in the run's
    order, with Holm-corrected verdicts (each figure is its own family)."""
    stacks = run.stacks
    if not stacks:
        return []
    base = stacks[0]
    found: list[StackComparison] = []
    for workload in run.workloads:
        for level in run.concurrency:
            base_summary = run.summary(CellKey(base, workload, level))
            if base_summary is None:
                continue
            for stack in stacks[1:]:
                summary = run.summary(CellKey(stack, workload, level))
                if summary is None:
                    continue
                found.append(
                    StackComparison(
                        base=base,
                        key=summary.key,
                        rps=_compare(base_summary.rps, summary.rps),
                        requests_per_server_cpu_s=_compare(
                            base_summary.requests_per_server_cpu_s,
                            summary.requests_per_server_cpu_s,
                        ),
                    )
                )
    for figure in ("rps", "requests_per_server_cpu_s"):
        found = _corrected(found, figure)
    return found


def _corrected(comparisons: list[StackComparison], figure: str) -> list[StackComparison]:
    """Demote to "within noise" every call that does not survive Holm's correction."""
    tested = [
        (index, result)
        for index, comparison in enumerate(comparisons)
        if (result := getattr(comparison, figure)) is not None and result.p_value is not None
    ]
    adjusted = holm([result.p_value for _, result in tested])
    corrected = list(comparisons)
    for (index, result), p_value in zip(tested, adjusted, strict=True):
        if result.verdict != "within noise" and p_value >= ALPHA:
            result = replace(result, verdict="within noise")
        corrected[index] = replace(corrected[index], **{figure: result})
    return corrected
