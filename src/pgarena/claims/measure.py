"""What a run measured of a claim's metric, as a figure with its 95% interval.

Only finished repeats count (as in every pgarena summary): a failed cell has no figures to
offer, and a claim with nothing measured gets no value, never a made-up one. Ratios pair the
two stacks' repeats (A B A B ... run order) and take the interval of the per-repeat log
ratios, the same paired comparison `pgarena compare` uses.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from scipy import stats as scipy_stats

from pgarena.claims.catalogue import RATIO_METRICS, Claim
from pgarena.claims.verdict import Interval
from pgarena.results.model import Cell, CellKey, Run
from pgarena.results.stats import Estimate
from pgarena.results.verdicts import paired_comparison


def figure(claim: Claim, cell: Cell) -> float | None:
    """The claim's figure in one cell (one stack, one repeat)."""
    if claim.metric in ("rps", "rps_ratio"):
        return cell.rps
    if claim.metric in ("latency_ms", "latency_ratio"):
        return cell.latency_ms.get(claim.statistic or "p50")
    if claim.metric in ("rss_bytes", "rss_ratio"):
        value = cell.resources.get("server_rss_peak_bytes")
        return float(value) if value is not None else None
    return cell.error_rate  # error_rate


def per_repeat(claim: Claim, run: Run, key: CellKey) -> dict[int, float]:
    """The figure of every finished repeat of `key`, by repeat number."""
    values = {}
    for cell in run.cells_of(key):
        value = figure(claim, cell)
        if cell.measured and value is not None and math.isfinite(value):
            values[cell.repeat] = value
    return values


def measure(claim: Claim, run: Run, workload: str, concurrency: int) -> Interval | None:
    """The claim's figure measured by `run` at one load, or None when it measured nothing
    usable (no finished repeat, or too few for an interval)."""
    base, new = (CellKey(stack, workload, concurrency) for stack in claim.compare)
    if claim.metric in RATIO_METRICS:
        return _ratio(claim, run, base, new)
    key = CellKey(claim.stack or claim.compare[1], workload, concurrency)
    if claim.metric == "rps":
        summary = run.summary(key)
        return Interval.from_estimate(summary.rps) if summary is not None else None
    values = list(per_repeat(claim, run, key).values())
    if not values:
        return None
    return Interval.from_estimate(Estimate.from_values(values))


def _ratio(claim: Claim, run: Run, base: CellKey, new: CellKey) -> Interval | None:
    base_values, new_values = per_repeat(claim, run, base), per_repeat(claim, run, new)
    paired = [r for r in new_values if r in base_values and base_values[r] > 0 < new_values[r]]
    if not paired:
        return None
    log_ratios = [math.log(new_values[r] / base_values[r]) for r in paired]
    comparison = paired_comparison(
        Estimate.from_values([base_values[r] for r in paired]),
        Estimate.from_values([new_values[r] for r in paired]),
        log_ratios,
        None,
    )
    if comparison is None or comparison.ci95_low is None or comparison.ci95_high is None:
        return None
    return Interval(comparison.ci95_low, comparison.ratio or math.nan, comparison.ci95_high)


def slope(points: Sequence[tuple[float, float]]) -> Interval | None:
    """The least-squares slope of (setting, figure) points, with its 95% interval: how much
    the figure grows per unit of the setting (e.g. RSS bytes per thread)."""
    if len({x for x, _ in points}) < 2 or len(points) < 3:
        return None
    fit = scipy_stats.linregress([x for x, _ in points], [y for _, y in points])
    half = float(scipy_stats.t.ppf(0.975, len(points) - 2)) * float(fit.stderr)
    return Interval(fit.slope - half, float(fit.slope), fit.slope + half)


def measure_slope(
    claim: Claim, runs: Mapping[int, tuple[Run, str, int]], stack: str | None = None
) -> Interval | None:
    """The slope of the claim's figure over its swept setting; `runs` maps each swept value
    to (the run, workload, concurrency) that measured it."""
    stack = stack or claim.stack or claim.compare[1]
    points = [
        (float(value), figure_value)
        for value, (run, workload, concurrency) in runs.items()
        for figure_value in per_repeat(claim, run, CellKey(stack, workload, concurrency)).values()
    ]
    return slope(points)
