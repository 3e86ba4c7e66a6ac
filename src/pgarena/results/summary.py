"""Figures of a cell from its time series, and summaries across repeats: computed once.

The harness calls `finish_cell` on each measured cell and `summarize_run` after each cell is
added; both results are stored in the result file, and every report reads them from there.

How a cell's figures are made (issue: "verdicts from the first command"):
1. The cell's series (requests, errors, latency and CPU per interval) includes the fixed
   warmup. MSER-5 finds where the throughput series settles; the steady part starts at the
   later of that point and the end of the fixed warmup. A series that never settles is kept
   but flagged.
2. Throughput is the mean over the steady part, with a within-cell 95% interval by batch
   means (batches grown until their means are not autocorrelated). Latency percentiles come
   from the steady intervals' merged HDR histograms, and requests per server CPU-second
   from the same intervals, so every figure of a cell describes the same seconds.
3. Across repeats, each key's figures combine the repeats' within-cell intervals with the
   variation between repeats (`stats.combine_repeats`): a fresh server per repeat varies
   more than seconds within one. Two or three repeats say little about that variation on
   their own, so it is moderated towards the variation pooled over the cells of the same
   workload. Per workload, because workloads live in different regimes: a slow-db cell
   waits on the pool and repeats to within a few percent, a CPU-bound read workload swings
   with every neighbour on a shared machine; pooling the two would give the first an
   interval it does not need and the second one too narrow.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace

from pgarena.results.histograms import decode_histogram, latency_summary_ms, new_histogram
from pgarena.results.model import (
    CPU_PARTS,
    Cell,
    CellKey,
    SeriesPoint,
    Steady,
    Summary,
    group_cells,
)
from pgarena.results.series import batch_means, mser5
from pgarena.results.stats import Estimate, combine_repeats, pooled_relative_variance
from pgarena.results.warnings import stability_warnings


def steady_state(series: Sequence[SeriesPoint], interval_s: float) -> tuple[Steady, list[int]]:
    """Where the steady part of a series starts, its throughput estimate, and the indexes
    of its points."""
    rates = [point.rps(interval_s) for point in series]
    first_measured = next(
        (index for index, point in enumerate(series) if point.phase == "measure"), len(series)
    )
    warmup = mser5(rates)
    start = max(warmup.truncation, first_measured)
    indexes = [i for i in range(start, len(series)) if series[i].phase == "measure"]
    if len(indexes) < 2:  # too short to settle: use the whole measured window
        indexes = [i for i, point in enumerate(series) if point.phase == "measure"]
    steady = Steady(
        start_s=series[indexes[0]].t if indexes else 0.0,
        points=len(indexes),
        warmup=warmup,
        batches=batch_means([rates[i] for i in indexes]),
    )
    return steady, indexes


def finish_cell(cell: Cell, interval_s: float) -> Cell:
    """A measured cell with its figures taken from the steady part of its series.

    Cells without a series (older result files, a generator that sent none) keep the
    figures of their whole measured window.
    """
    if not any(point.phase == "measure" for point in cell.series):
        return cell
    steady, indexes = steady_state(cell.series, interval_s)
    points = [cell.series[i] for i in indexes]
    histogram = new_histogram()
    for point in points:
        if point.histogram:
            histogram.add(decode_histogram(point.histogram))
    ok = sum(point.ok for point in points)
    server_cpu = _total(point.server_cpu_s for point in points)
    return replace(
        cell,
        rps=steady.rps.mean,
        latency_ms=latency_summary_ms(histogram) if ok else cell.latency_ms,
        histogram=histogram.encode().decode("ascii") if ok else cell.histogram,
        requests_per_server_cpu_s=ok / server_cpu if server_cpu else cell.requests_per_server_cpu_s,
        steady=steady,
    )


# The figures summarised across repeats, and how to read each from a measured cell.
FIGURES: dict[str, Callable[[Cell], float | None]] = {
    "rps": lambda cell: cell.rps,
    "requests_per_server_cpu_s": lambda cell: cell.requests_per_server_cpu_s,
    "latency_p50_ms": lambda cell: cell.latency_ms.get("p50"),
    "latency_p99_ms": lambda cell: cell.latency_p99_ms,
}
Pooled = dict[str, tuple[float, float] | None]


def summarize_run(cells: Sequence[Cell]) -> list[Summary]:
    """One summary per cell key, in first-seen order."""
    groups = group_cells(cells)
    pooled: dict[str, Pooled] = {}
    for workload in dict.fromkeys(key.workload for key in groups):
        members = [cells for key, cells in groups.items() if key.workload == workload]
        pooled[workload] = {
            figure: pooled_relative_variance(
                [_known(read(c) for c in cells if c.measured) for cells in members]
            )
            for figure, read in FIGURES.items()
        }
    return [summarize_key(key, members, pooled[key.workload]) for key, members in groups.items()]


def summarize_key(key: CellKey, members: Sequence[Cell], pooled: Pooled | None = None) -> Summary:
    """The repeats of one cell key, summarised (only measured repeats give figures)."""
    pooled = pooled or {}
    measured = [cell for cell in members if cell.measured]
    efficiency = _known(c.requests_per_server_cpu_s for c in measured)
    errors: dict[str, int] = {}
    for cell in measured:
        for kind, count in cell.errors.items():
            errors[kind] = errors.get(kind, 0) + count
    requests = sum(cell.requests or 0 for cell in measured)
    peaks = _known(c.resources.get("server_rss_peak_bytes") for c in measured)
    summary = Summary(
        key=key,
        repeats=len(measured),
        failed=len(members) - len(measured),
        requests=requests,
        rps=_throughput(measured, pooled.get("rps")),
        requests_per_server_cpu_s=_combined(measured, "requests_per_server_cpu_s", pooled)
        if efficiency
        else None,
        latency_p50_ms=_combined(measured, "latency_p50_ms", pooled),
        latency_p99_ms=_combined(measured, "latency_p99_ms", pooled),
        error_rate=sum(errors.values()) / requests if requests else None,
        cpu_share={part: _mean(c.cpu_share.get(part) for c in measured) for part in CPU_PARTS},
        peak_rss_bytes=int(max(peaks)) if peaks else None,
        statements_per_request=_mean(c.statements_per_request for c in measured),
        new_connections_per_s=_mean(c.new_connections_per_s for c in measured),
    )
    throughputs = _known(cell.rps for cell in measured)
    steadies = [cell.steady for cell in measured if cell.steady is not None]
    failed = [cell for cell in members if not cell.measured]
    warnings = stability_warnings(
        summary.rps,
        repeat_cv=_cv(throughputs),
        repeats=len(measured),
        failed=len(failed),
        failure_reason=failed[0].error if failed else None,
        errors=errors,
        # A cell is as doubtful as its worst repeat. Correlated batches make a within-cell
        # interval too narrow, which matters only where that interval is the one shown: with
        # one repeat. With more, the variation between repeats sets the interval.
        series=next((s.batches for s in steadies if not s.batches.independent), None)
        if len(measured) == 1
        else None,
        warmup=next((s.warmup for s in steadies if s.warmup.steady is False), None),
        other_cpu_share=summary.cpu_share.get("other"),
        reopened_connections_per_s=_mean(c.reopened_connections_per_s for c in measured),
    )
    return replace(summary, warnings=tuple(warnings))


def _throughput(measured: Sequence[Cell], pooled: tuple[float, float] | None) -> Estimate:
    within = [
        cell.steady.rps if cell.steady is not None else Estimate.from_values([cell.rps])
        for cell in measured
        if cell.rps is not None
    ]
    if not within:
        return Estimate.from_values([])
    variance, df = pooled if pooled is not None else (None, 0.0)
    return combine_repeats(within, pooled_relative_variance=variance, pooled_df=df)


def _combined(measured: Sequence[Cell], figure: str, pooled: Pooled) -> Estimate:
    """A figure with no within-cell interval: its repeats, moderated by the workload's pool."""
    values = _known(FIGURES[figure](cell) for cell in measured)
    variance, df = pooled.get(figure) or (None, 0.0)
    repeats = [Estimate.from_values([value]) for value in values]
    return combine_repeats(repeats, pooled_relative_variance=variance, pooled_df=df)


def _cv(values: list[float]) -> float | None:
    if len(values) < 2 or not statistics.fmean(values):
        return None
    return statistics.stdev(values) / statistics.fmean(values)


def _known(values: Iterable[float | int | None]) -> list[float]:
    return [float(value) for value in values if value is not None]


def _mean(values: Iterable[float | None]) -> float | None:
    known = _known(values)
    return statistics.fmean(known) if known else None


def _total(values: Iterable[float | None]) -> float | None:
    known = _known(values)
    return sum(known) if known else None
