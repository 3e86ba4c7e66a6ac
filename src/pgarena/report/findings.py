"""'What this run says': sentences generated from the figures, and only what they support.

A difference is stated only when the run's verdict calls it (`pgarena.results.verdicts`: the
95% interval lies more than 5% from 1 and the call survives Holm's correction); everything
else is said to be within noise. Unstable or failed measurements are named, so a reader knows
which sentences to trust less.
"""

from __future__ import annotations

import math

from pgarena.report.figures import CPU_PARTS, CellFigures, RunFigures, StackComparison
from pgarena.report.formatting import DASH, difference_sentence, listing, targets

# How the CPU parts are named in sentences.
CPU_PART_NAMES = {
    "server": "the server",
    "postgres": "PostgreSQL",
    "generator": "the load generator",
}


def _bounded(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


def _called(comparison: StackComparison, figure: str) -> bool:
    """True when the interval of the ratio is known and the verdict calls a difference."""
    result = getattr(comparison, figure)
    return (
        result is not None
        and _bounded(result.ci95_low)
        and _bounded(result.ci95_high)
        and result.verdict in ("faster", "slower")
    )


def _undecided(comparison: StackComparison, figure: str) -> bool:
    """True when there is no interval at all (one repeat), so nothing can be said."""
    result = getattr(comparison, figure)
    return result is None or result.ci95_low is None or result.ci95_high is None


def _throughput_findings(figures: RunFigures) -> list[str]:
    sentences = []
    for workload in figures.workloads:
        for stack in figures.stacks[1:]:
            comparisons = [c for c in figures.comparisons_of(workload) if c.stack == stack]
            if not comparisons:
                continue
            base = comparisons[0].base
            called = [c for c in comparisons if _called(c, "rps")]
            noise = [c for c in comparisons if not _called(c, "rps") and not _undecided(c, "rps")]
            if not called and not noise:
                continue
            if not called:
                levels = listing([str(c.concurrency) for c in noise])
                sentences.append(
                    f"On {workload}, {stack} and {base} are within noise of each other "
                    f"at every concurrency measured ({levels})."
                )
                continue
            parts = [
                f"{difference_sentence(stack, base, c.rps)} at concurrency {c.concurrency}"
                for c in called
            ]
            if noise:
                levels = listing([str(c.concurrency) for c in noise])
                parts.append(f"within noise at concurrency {levels}")
            sentences.append(f"On {workload}: {'; '.join(parts)}.")
    return sentences


def _single_measurement_findings(figures: RunFigures) -> list[str]:
    """With one repeat per cell nothing can be called, but a reader of a quick run still
    wants to know where to look: the highest measurement per workload, labelled as such."""
    measured = [cell for cell in figures.cells.values() if cell.rps is not None]
    if not measured or any(_has_interval(cell.rps) for cell in measured):
        return []
    leaders = []
    for workload in figures.workloads:
        for level in figures.concurrency:
            cells = [c for c in figures.cells_of(workload) if c.concurrency == level and c.rps]
            if len(cells) > 1:
                best = max(cells, key=lambda cell: cell.rps.mean if cell.rps else 0.0)
                leaders.append(f"{workload} at {level}: {best.stack}")
    if not leaders:
        return []
    return [
        "Highest single measurement (one repeat each: a lead to confirm, not a verdict): "
        f"{'; '.join(leaders)}."
    ]


def _efficiency_findings(figures: RunFigures) -> list[str]:
    sentences = []
    for workload in figures.workloads:
        for stack in figures.stacks[1:]:
            called = [
                c
                for c in figures.comparisons_of(workload)
                if c.stack == stack and _called(c, "requests_per_server_cpu_s")
            ]
            if not called:
                continue
            parts = [
                difference_sentence(
                    stack,
                    c.base,
                    c.requests_per_server_cpu_s,
                    better="more efficient",
                    worse="less efficient",
                    as_good="as efficient",
                )
                + f" at concurrency {c.concurrency}"
                for c in called
            ]
            sentences.append(f"Requests per server CPU-second on {workload}: {'; '.join(parts)}.")
    return sentences


def _tail_findings(figures: RunFigures) -> list[str]:
    """p99 latency where its verdict calls a difference, as a factor of the base's p99."""
    sentences = []
    for workload in figures.workloads:
        parts = [
            f"{c.stack}'s is {c.latency_p99_ms.ratio:.2f}x {c.base}'s "
            f"({c.latency_p99_ms.ci95_low:.2f}{DASH}{c.latency_p99_ms.ci95_high:.2f}) "
            f"at concurrency {c.concurrency}"
            for c in figures.comparisons_of(workload)
            if _called(c, "latency_p99_ms")
        ]
        if parts:
            sentences.append(f"p99 latency on {workload} (lower is better): {'; '.join(parts)}.")
    return sentences


# How far a repeat's mean latency may be from clients / throughput for Little's law to be
# taken as holding (it held within 1% in pgarena's own closed-loop cells).
LITTLE_TOLERANCE = 0.1


def _closed_loop(cell: CellFigures | None) -> bool:
    """Whether every repeat of the cell kept all its clients busy: mean latency = clients /
    throughput (Little's law), as in a closed loop without think time or failed requests."""
    if cell is None or not cell.repeats:
        return False
    for repeat in cell.repeats:
        mean_ms, rps = repeat.latency_ms.get("mean"), repeat.rps
        if not mean_ms or not rps:
            return False
        if abs(mean_ms / 1000 * rps / cell.concurrency - 1) > LITTLE_TOLERANCE:
            return False
    return True


def _little_findings(figures: RunFigures) -> list[str]:
    """Where p99 verdicts are called in a closed loop: whether the tail is the throughput's.

    With N clients always waiting for an answer, the mean latency is N over the throughput
    (Little's law): a stack that serves a quarter of the requests waits four times as long
    on average, so its p99 ratio measures its throughput before its tail. The latency ratio
    the throughput predicts is the inverse of the throughput's, with its interval; a p99 ratio
    whose whole interval lies above that is a tail of the stack's own (the kind worth
    profiling), below it a tighter one. Said only of cells where the law held in every
    repeat: not in open-loop runs, with think time or with failing requests.
    """
    sentences = []
    for workload in figures.workloads:
        predicted: dict[str, list[str]] = {}  # stack -> its concurrency levels
        beyond: dict[str, list[str]] = {"longer": [], "shorter": []}
        for c in figures.comparisons_of(workload):
            rps, p99 = c.rps, c.latency_p99_ms
            if not (_called(c, "latency_p99_ms") and rps is not None and _called(c, "rps")):
                continue
            base = figures.cell(c.base, workload, c.concurrency)
            cell = figures.cell(c.stack, workload, c.concurrency)
            if not (_closed_loop(base) and _closed_loop(cell)):
                continue
            low, high = 1 / rps.ci95_high, 1 / rps.ci95_low  # the latency ratio it predicts
            if low <= p99.ci95_high and p99.ci95_low <= high:
                predicted.setdefault(c.stack, []).append(str(c.concurrency))
                continue
            beyond["longer" if p99.ci95_low > high else "shorter"].append(
                f"{c.stack} at concurrency {c.concurrency} ({p99.ratio:.2f}x, where its "
                f"throughput predicts {low:.2f}{DASH}{high:.2f}x)"
            )
        clauses = []
        if predicted:
            stacks = [
                f"{stack} at concurrency {listing(levels)}" for stack, levels in predicted.items()
            ]
            clauses.append(f"what the throughput predicts for {listing(stacks)}")
        if beyond["longer"]:
            clauses.append(f"longer, a tail of its own, for {listing(beyond['longer'])}")
        if beyond["shorter"]:
            clauses.append(f"shorter, a tighter tail, for {listing(beyond['shorter'])}")
        if clauses:
            sentences.append(
                f"On {workload}, in a closed loop the mean latency is the clients over the "
                "throughput (Little's law), so p99 follows throughput. The p99 ratio to "
                f"{figures.base_stack}'s is {'; '.join(clauses)}. To compare tails at one load, "
                "run with --rate."
            )
    return sentences


def _cpu_findings(figures: RunFigures) -> list[str]:
    shares = [cell.cpu_share for cell in figures.cells.values() if cell.cpu_share]
    if not shares:
        return []
    ranges = []
    for part in CPU_PARTS:
        values = [share[part] for share in shares if part in share]
        if values:
            ranges.append(
                f"{CPU_PART_NAMES[part]} {min(values) * 100:.0f}{DASH}{max(values) * 100:.0f}%"
            )
    cores = (figures.metadata.get("machine") or {}).get("cpu_count")
    where = f"this {cores}-core machine" if cores else "this machine"
    return [
        f"Share of {where}'s CPU per cell (lowest{DASH}highest): {listing(ranges)}. "
        "They ran on the same machine and competed for the same cores."
    ]


def _warning_findings(figures: RunFigures) -> list[str]:
    sentences = []
    warned = [cell for cell in figures.cells.values() if cell.warnings]
    if warned:
        levels: dict[tuple[str, str], list[str]] = {}
        for cell in warned:
            levels.setdefault((cell.stack, cell.workload), []).append(str(cell.concurrency))
        names = [
            f"{stack} on {workload} at concurrency {listing(found)}"
            for (stack, workload), found in levels.items()
        ]
        sentences.append(
            f"{len(warned)} of {len(figures.cells)} measured cells carry a warning "
            f"(unstable, errors or failures), so their verdicts deserve less trust: "
            f"{'; '.join(names)}."
        )
    measured = [cell for cell in figures.cells.values() if cell.rps is not None]
    if measured and all(cell.single_repeat for cell in measured):
        sentences.append(
            "One repeat per cell: each interval covers the seconds within one server's run, "
            "not the variation between fresh servers. Run with --repeats 2 or more before "
            "you trust a difference."
        )
    single = [cell for cell in measured if not _has_interval(cell.rps)]
    if single and len(single) == len(measured):
        sentences.append(
            "No cell has an interval (too short to measure one, and a single repeat): no "
            "difference is called. Run with --repeats 3 (or --preset standard) to get them."
        )
    elif single:
        sentences.append(f"{len(single)} cells have no interval: no difference is called for them.")
    return sentences


def _has_interval(estimate: object) -> bool:
    return getattr(estimate, "ci95_low", None) is not None


def _run_findings(figures: RunFigures) -> list[str]:
    sentences = []
    status = figures.run.status
    if status and status != "complete":
        finished = sum(len(cell.repeats) + len(cell.failures) for cell in figures.cells.values())
        sentences.append(
            f"This run is {status}: it holds {finished} measured repeats; "
            "cells that never ran are missing from every table."
        )
    target = figures.metadata.get("target")
    if target and not figures.has_server_figures:
        several = isinstance(target, dict)  # an A/B run
        what = "already running services" if several else "an already running service"
        sentences.append(
            f"Measured against {what} ({targets(target)}): the server's CPU "
            "and memory were not measured, so there are no per-CPU-second figures."
        )
    return sentences


def findings(figures: RunFigures) -> list[str]:
    """Plain sentences, each one backed by figures shown in the report's tables."""
    return [
        *_run_findings(figures),
        *_throughput_findings(figures),
        *_single_measurement_findings(figures),
        *_efficiency_findings(figures),
        *_tail_findings(figures),
        *_little_findings(figures),
        *_cpu_findings(figures),
        *_warning_findings(figures),
    ]
