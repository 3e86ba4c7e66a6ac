"""What a run measured of a claim's metric, as a figure with its 95% interval.

Only finished repeats give throughput, latency and memory figures (as in every pgarena
summary); a claim with nothing measured gets no value, never a made-up one.

`--quick` has two repeats per cell, and two values alone give t(1) = 12.7: intervals so wide
that every verdict would be "inconclusive". So, as the run's own summaries do, each interval
is moderated towards the repeat-to-repeat variation pooled over the whole claims run (every
cell key for an absolute figure, every pair of stacks for a ratio): a cell that behaves like
the others gets an interval of the run's typical width, a noisier one still shows its noise.

- Ratios pair the two stacks' repeats (repeat r of both ran within seconds of each other) and
  take the interval of the per-repeat log ratios, as `pgarena compare` does.
- Error rates are a proportion of requests: a Wilson interval on every failed request of the
  cells that sent any, *including* cells that failed because no answer was correct. Such a
  cell is what "Timeout/Error" claims predict, so it is evidence for them, counted by the
  kinds of error it saw (timeouts, refused connections...). A cell that failed without
  sending load (the server never started, the generator broke) measured nothing: it is
  reported, and is evidence for nothing.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence

from scipy import stats as scipy_stats

from pgarena.claims.catalogue import RATIO_METRICS, Claim, Experiment
from pgarena.claims.plan import cell_key
from pgarena.claims.verdict import Interval
from pgarena.results.model import Cell, CellKey, Run
from pgarena.results.stats import Estimate, combine_repeats, pooled_relative_variance
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


def keys_of(claim: Claim, point: Experiment) -> tuple[CellKey, ...]:
    """The cell keys a claim reads at one point: both stacks for a ratio, else its stack."""
    if claim.metric in RATIO_METRICS:
        return tuple(cell_key(point, stack) for stack in claim.compare)
    return (cell_key(point, claim.stack or claim.compare[1]),)


def measure(claim: Claim, run: Run, point: Experiment) -> Interval | None:
    """The claim's figure measured by `run` at one point, or None when it measured nothing
    usable (no finished repeat, or too few for an interval)."""
    keys = keys_of(claim, point)
    if claim.metric in RATIO_METRICS:
        return _ratio(claim, run, *keys)
    if claim.metric == "error_rate":
        return _proportion(run.cells_of(keys[0]))
    if claim.metric == "rps":
        summary = run.summary(keys[0])
        return Interval.from_estimate(summary.rps) if summary is not None else None
    values = list(per_repeat(claim, run, keys[0]).values())
    if not values:
        return None
    repeats = [Estimate.from_values([value]) for value in values]
    variance, df = _pooled_relative(run, claim.metric, claim.statistic) or (None, 0.0)
    return Interval.from_estimate(combine_repeats(repeats, variance, df))


def _proportion(cells: Sequence[Cell]) -> Interval | None:
    """Failed requests over requests sent, with a Wilson 95% interval."""
    sent = [cell for cell in cells if cell.requests]
    requests = sum(cell.requests or 0 for cell in sent)
    if not requests:
        return None
    failed = sum(
        cell.error_count if cell.measured else cell.requests - (cell.ok or 0) for cell in sent
    )
    failed = min(failed, requests)
    interval = scipy_stats.binomtest(failed, requests).proportion_ci(method="wilson")
    return Interval(float(interval.low), failed / requests, float(interval.high))


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
        _pooled_log_ratios(run, claim.metric, claim.statistic, claim.compare),
    )
    if comparison is None or comparison.ci95_low is None or comparison.ci95_high is None:
        return None
    return Interval(comparison.ci95_low, comparison.ratio or math.nan, comparison.ci95_high)


def _like(metric: str, statistic: str | None) -> Claim:
    """A stand-in claim that reads `metric` (for pooling over every cell of a run)."""
    return Claim(
        "seed000-pool", "000_0000000000000000.txt", "-", metric, "about", ("sync", "async"),
        0.0, 0.0, {}, Experiment("standard", 1), statistic=statistic,
    )  # fmt: skip


def _pooled_relative(run: Run, metric: str, statistic: str | None) -> tuple[float, float] | None:
    """The relative repeat-to-repeat variance of a figure, pooled over every cell key."""
    claim = _like(metric, statistic)
    keys = dict.fromkeys(cell.key for cell in run.cells)
    return pooled_relative_variance([list(per_repeat(claim, run, key).values()) for key in keys])


def _pooled_log_ratios(
    run: Run, metric: str, statistic: str | None, compare: tuple[str, str]
) -> tuple[float, float] | None:
    """The variance of per-repeat log ratios of the two stacks around their own mean, pooled
    over every (workload, concurrency) the run measured both stacks at."""
    claim = _like(metric, statistic)
    squares, df = 0.0, 0
    for workload, concurrency in dict.fromkeys(
        (c.key.workload, c.key.concurrency) for c in run.cells
    ):
        base, new = (per_repeat(claim, run, CellKey(s, workload, concurrency)) for s in compare)
        logs = [math.log(new[r] / base[r]) for r in new if r in base and base[r] > 0 < new[r]]
        if len(logs) > 1:
            squares += sum((x - statistics.fmean(logs)) ** 2 for x in logs)
            df += len(logs) - 1
    return (squares / df, float(df)) if df else None


def slope(points: Sequence[tuple[float, float]]) -> Interval | None:
    """The least-squares slope of (setting, figure) points, with its 95% interval: how much
    the figure grows per unit of the setting (e.g. RSS bytes per thread)."""
    if len({x for x, _ in points}) < 2 or len(points) < 3:
        return None
    fit = scipy_stats.linregress([x for x, _ in points], [y for _, y in points])
    half = float(scipy_stats.t.ppf(0.975, len(points) - 2)) * float(fit.stderr)
    return Interval(fit.slope - half, float(fit.slope), fit.slope + half)


def measure_slope(claim: Claim, run: Run, points: Sequence[Experiment]) -> Interval | None:
    """The slope of the claim's figure over its swept setting, from every finished repeat
    at every swept value."""
    assert claim.experiment.sweep is not None
    setting = claim.experiment.sweep[0]
    found = [
        (float(getattr(point, setting)), value)
        for point in points
        for value in per_repeat(claim, run, keys_of(claim, point)[0]).values()
    ]
    return slope(found)
