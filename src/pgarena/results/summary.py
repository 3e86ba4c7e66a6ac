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
3. Across repeats, each key's throughput combines the repeats' within-cell intervals with
   the variation between repeats, moderated by the run-wide pooled variation between repeats
   (`stats.combine_repeats`): a fresh server per repeat varies more than seconds within one.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
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
from pgarena.results.stats import (
    UNSTABLE_CV,
    Estimate,
    Warning,
    batch_means,
    combine_repeats,
    estimate_from_values,
    mser5,
    pooled_relative_variance,
)

# Other processes may use this much of the machine's CPU before a cell is flagged.
OTHER_CPU_WARNING_SHARE = 0.10


def steady_state(series: Sequence[SeriesPoint], interval_s: float) -> tuple[Steady, list[int]]:
    """Where the steady part of a series starts, its throughput estimate, and the indexes
    of its points."""
    rates = [point.ok / interval_s for point in series]
    first_measured = next(
        (index for index, point in enumerate(series) if point.phase == "measure"), len(series)
    )
    warmup = mser5(rates)
    start = max(warmup.truncation, first_measured)
    indexes = [i for i in range(start, len(series)) if series[i].phase == "measure"]
    if len(indexes) < 2:  # too short to settle: use the whole measured window
        indexes = [i for i, point in enumerate(series) if point.phase == "measure"]
    batches = batch_means([rates[i] for i in indexes])
    start_s = series[indexes[0]].t if indexes else 0.0
    steady = Steady(
        start_s=start_s,
        points=len(indexes),
        steady=warmup.steady,
        rps=batches.estimate,
        batch_points=batches.batch_size,
        lag1=batches.lag1,
    )
    return steady, indexes


def finish_cell(cell: Cell, interval_s: float) -> Cell:
    """A measured cell with its figures taken from the steady part of its series.

    Cells without a series (older result files, a generator that sent none) keep the
    figures of their whole measured window.
    """
    if not cell.series or not any(point.phase == "measure" for point in cell.series):
        return cell
    steady, indexes = steady_state(cell.series, interval_s)
    points = [cell.series[i] for i in indexes]
    histogram = new_histogram()
    for point in points:
        if point.histogram:
            histogram.add(decode_histogram(point.histogram))
    ok = sum(point.ok for point in points)
    server_cpu = _total(point.server_cpu_s for point in points)
    latency = latency_summary_ms(histogram) if ok else dict(cell.latency_ms)
    return replace(
        cell,
        rps=steady.rps.mean,
        latency_ms=latency,
        histogram=histogram.encode().decode("ascii") if ok else cell.histogram,
        requests_per_server_cpu_s=ok / server_cpu if server_cpu else cell.requests_per_server_cpu_s,
        steady=steady,
    )


def summarize_run(cells: Sequence[Cell]) -> list[Summary]:
    """One summary per cell key, in first-seen order."""
    groups = group_cells(cells)
    throughputs = [
        [cell.rps for cell in members if cell.measured and cell.rps is not None]
        for members in groups.values()
    ]
    pooled = pooled_relative_variance(throughputs)
    return [summarize_key(key, members, pooled) for key, members in groups.items()]


def summarize_key(
    key: CellKey, members: Sequence[Cell], pooled: tuple[float, float] | None = None
) -> Summary:
    """The repeats of one cell key, summarised (only measured repeats give figures)."""
    measured = [cell for cell in members if cell.measured]
    rps = _throughput(measured, pooled)
    efficiency = [c.requests_per_server_cpu_s for c in measured]
    requests = sum(cell.requests or 0 for cell in measured)
    errors = sum(cell.error_count for cell in measured)
    peaks = [c.resources.get("server_rss_peak_bytes") for c in measured]
    statements = [c.statements_per_request for c in measured]
    summary = Summary(
        key=key,
        repeats=len(measured),
        failed=len(members) - len(measured),
        requests=requests,
        rps=rps,
        requests_per_server_cpu_s=estimate_from_values(_known(efficiency))
        if _known(efficiency)
        else None,
        latency_p50_ms=estimate_from_values(_known(c.latency_ms.get("p50") for c in measured)),
        latency_p99_ms=estimate_from_values(_known(c.latency_ms.get("p99") for c in measured)),
        error_rate=errors / requests if requests else None,
        cpu_share={part: _mean(c.cpu_share.get(part) for c in measured) for part in CPU_PARTS},
        peak_rss_bytes=int(max(_known(peaks))) if _known(peaks) else None,
        statements_per_request=_mean(statements),
    )
    return replace(summary, warnings=tuple(_warnings(summary, members)))


def _throughput(measured: Sequence[Cell], pooled: tuple[float, float] | None) -> Estimate:
    within = [
        cell.steady.rps if cell.steady is not None else estimate_from_values([cell.rps])
        for cell in measured
        if cell.rps is not None
    ]
    if not within:
        return estimate_from_values([])
    variance, df = pooled if pooled is not None else (None, 0.0)
    return combine_repeats(within, pooled_relative_variance=variance, pooled_df=df)


def _warnings(summary: Summary, members: Sequence[Cell]) -> list[Warning]:
    """Every stability rule, applied in one place."""
    warnings = []
    failed = [cell for cell in members if not cell.measured]
    if failed:
        warnings.append(
            Warning(
                "failed",
                f"failed: {len(failed)} of {len(members)} repeats ({failed[0].error})",
            )
        )
    measured = [cell for cell in members if cell.measured]
    values = _known(cell.rps for cell in measured)
    if len(values) >= 2 and statistics.fmean(values):
        cv = statistics.stdev(values) / statistics.fmean(values)
        if cv > UNSTABLE_CV:
            warnings.append(
                Warning("unstable", f"unstable: repeats differ, CV {cv:.0%} > {UNSTABLE_CV:.0%}")
            )
    unsettled = [cell for cell in measured if cell.steady is not None and not cell.steady.steady]
    if unsettled:
        warnings.append(
            Warning(
                "not-steady",
                f"not steady: throughput still drifting at the end of {len(unsettled)} of "
                f"{len(measured)} repeats (measure longer)",
            )
        )
    if summary.rps.mean is not None and summary.rps.ci95_low is None:
        warnings.append(Warning("no-interval", "no interval: too few measurements"))
    errors: dict[str, int] = {}
    for cell in measured:
        for kind, count in cell.errors.items():
            if count:
                errors[kind] = errors.get(kind, 0) + count
    if errors:
        kinds = ", ".join(f"{kind}: {count}" for kind, count in sorted(errors.items()))
        warnings.append(
            Warning("errors", f"errors: {sum(errors.values())} failed requests ({kinds})")
        )
    other = summary.cpu_share.get("other")
    if other is not None and other > OTHER_CPU_WARNING_SHARE:
        warnings.append(
            Warning(
                "busy-machine",
                f"busy machine: other processes used {other:.0%} of the CPU during the cell",
            )
        )
    return warnings


def _known(values: object) -> list[float]:
    return [float(value) for value in values if value is not None]  # type: ignore[attr-defined]


def _mean(values: object) -> float | None:
    known = _known(values)
    return statistics.fmean(known) if known else None


def _total(values: object) -> float | None:
    known = _known(values)
    return sum(known) if known else None
