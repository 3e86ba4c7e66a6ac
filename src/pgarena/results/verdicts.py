"""Which stack is faster: every stack against the run's first, with the family of verdicts
corrected for multiple comparisons.

Three figures are judged, each its own family: throughput, requests per server CPU-second
(what a busy machine moves least) and p99 latency (lower is better: "faster" is a shorter
tail). In a closed loop p99 mostly mirrors throughput (each client waits for its answer,
so a stack that serves less answers later); at a fixed rate (`--rate`), or in an A/B run of
a change that leaves throughput alone, it is the tail's own verdict.

Repeats are paired. Repeat r of every stack ran on the machine as it was during repeat r
(with `--server-lifetime repeat`, within seconds of each other), so the ratio of two stacks
in one repeat is free of the machine's slow drift, which moves both. The interval of a
ratio therefore comes from how much the per-repeat ratios vary (in log space), moderated
towards that variation pooled over the workload's other comparisons, exactly as the
summaries' intervals are. The ratio itself is the ratio of the summaries' means, so the
tables' figures and their verdicts agree. Without paired repeats (one repeat, or repeats
that failed on one side) the comparison falls back to the two summaries' own intervals
(Fieller's ratio of two independent means).

A run with six stacks, five workloads and two concurrency levels makes fifty comparisons;
at 95% each, a couple would be called "faster" by chance alone, and the next run would call
them differently. Holm's step-down correction keeps the chance of any false call in the
whole family at 5%: a difference is called only when its interval clears the minimum effect
below and its adjusted p-value is below 0.05. The intervals shown stay the plain 95% ones.

Significance alone is not enough on a machine whose state drifts between runs. Where every
stack sits at the same ceiling (a pool of 20 connections, each held 50 ms), two stacks differ
by 3-8%, and a run's paired repeats can be tight enough to call that "faster" while the next
run's are not: the same comparison flickers between runs. So a call also needs a minimum
effect, as `pgarena compare` asks of a regression: the whole interval must lie beyond
`MIN_EFFECT` (5%) of equality, and the p-values test that band, not the point 1. A
difference smaller than that is reported with its interval and called "within noise".
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, replace

from scipy import stats as scipy_stats

from pgarena.results.model import CellKey, Keyed, Run, Summary
from pgarena.results.stats import Comparison, Estimate, band_verdict, compare_estimates, holm

ALPHA = 0.05
# A verdict names a winner only when the interval of the ratio lies beyond 1 +/- MIN_EFFECT.
MIN_EFFECT = 0.05
VERDICT_RULE = (
    "a verdict names a winner only when the whole 95% interval of the ratio lies more than "
    f"{MIN_EFFECT:.0%} from 1 and the call survives Holm's correction for the number of "
    "comparisons; otherwise it says within noise"
)


@dataclass(frozen=True)
class StackComparison(Keyed):
    """One stack against the base stack, on one workload and concurrency."""

    base: str
    key: CellKey
    rps: Comparison | None
    requests_per_server_cpu_s: Comparison | None
    latency_p99_ms: Comparison | None = None


def _compare(
    base: Estimate | None, new: Estimate | None, higher_is_better: bool
) -> Comparison | None:
    if base is None or new is None or base.mean is None or new.mean is None:
        return None
    return compare_estimates(base, new, higher_is_better=higher_is_better, threshold=MIN_EFFECT)


LogRatios = list[float]


def _log_ratios(run: Run, base: CellKey, new: CellKey, figure: str) -> LogRatios:
    """log(new / base) of `figure` in every repeat both finished."""
    base_values = {c.repeat: getattr(c, figure) for c in run.cells_of(base) if c.measured}
    ratios = []
    for cell in run.cells_of(new):
        value, reference = getattr(cell, figure), base_values.get(cell.repeat)
        if cell.measured and value and reference:
            ratios.append(math.log(value / reference))
    return ratios


def _pooled(groups: Sequence[LogRatios]) -> tuple[float, float] | None:
    """The variance of per-repeat log ratios around their own mean, pooled over groups."""
    squares = sum(sum((x - statistics.fmean(g)) ** 2 for x in g) for g in groups if len(g) > 1)
    df = sum(len(g) - 1 for g in groups if len(g) > 1)
    return (squares / df, float(df)) if df else None


def paired_comparison(
    base: Estimate,
    new: Estimate,
    log_ratios: LogRatios,
    pooled: tuple[float, float] | None,
    threshold: float = 0.0,
    *,
    higher_is_better: bool = True,
) -> Comparison | None:
    """`new` against `base` from paired repeats: the ratio of means, with an interval from
    the per-repeat log ratios' spread (moderated by `pooled`); None when it cannot pair.

    A winner is named only when the interval lies beyond 1 +/- `threshold`; `p_better` and
    `p_worse` test those two bounds, one-sided (better is above for throughput, below for
    a latency: `higher_is_better`)."""
    if base.mean is None or new.mean is None or base.mean <= 0 or new.mean <= 0:
        return None
    count = len(log_ratios)
    variance = statistics.variance(log_ratios) if count > 1 else None
    df = float(count - 1)
    if pooled is not None:
        prior, prior_df = pooled
        variance = (prior_df * prior + df * (variance or 0.0)) / (prior_df + df)
        df += prior_df
    if count == 0 or variance is None or df <= 0:
        return None
    ratio = new.mean / base.mean
    se = math.sqrt(variance / count)
    direction = {"higher_is_better": higher_is_better, "threshold": threshold}
    if se == 0:
        verdict = band_verdict(ratio, ratio, threshold, higher_is_better=higher_is_better)
        return Comparison(ratio, ratio, ratio, verdict, base, new, df=df, **direction)
    half = float(scipy_stats.t.ppf(0.975, df)) * se
    low, high = ratio * math.exp(-half), ratio * math.exp(half)
    p_above = float(scipy_stats.t.sf(math.log(ratio / (1 + threshold)) / se, df))
    p_below = float(scipy_stats.t.cdf(math.log(ratio / (1 - threshold)) / se, df))
    p_better, p_worse = (p_above, p_below) if higher_is_better else (p_below, p_above)
    return Comparison(
        ratio,
        low,
        high,
        band_verdict(low, high, threshold, higher_is_better=higher_is_better),
        base,
        new,
        p_value=min(1.0, 2 * min(p_better, p_worse)),
        p_worse=p_worse,
        p_better=p_better,
        df=df,
        **direction,
    )


# The figures a verdict is given on, and whether higher is better; a cell and a summary
# both carry them by these names.
FIGURES = {"rps": True, "requests_per_server_cpu_s": True, "latency_p99_ms": False}


def stack_comparisons(run: Run) -> list[StackComparison]:
    """Every stack against the run's first stack, per workload and concurrency, in the run's
    order, with Holm-corrected verdicts beyond `MIN_EFFECT` (each figure is its own family)."""
    stacks = run.stacks
    if not stacks:
        return []
    base = stacks[0]
    pairs: list[tuple[Summary, Summary]] = []
    for workload in run.workloads:
        for level in run.concurrency:
            base_summary = run.summary(CellKey(base, workload, level))
            if base_summary is None:
                continue
            for stack in stacks[1:]:
                summary = run.summary(CellKey(stack, workload, level))
                if summary is not None:
                    pairs.append((base_summary, summary))
    results: dict[str, list[Comparison | None]] = {}
    for figure, higher_is_better in FIGURES.items():
        ratios = [_log_ratios(run, old.key, new.key, figure) for old, new in pairs]
        pooled = {
            workload: _pooled(
                [
                    r
                    for r, (old, _) in zip(ratios, pairs, strict=True)
                    if old.key.workload == workload
                ]
            )
            for workload in run.workloads
        }
        found = []
        for (old, new), log_ratios in zip(pairs, ratios, strict=True):
            before, after = getattr(old, figure), getattr(new, figure)
            paired = None
            if before is not None and after is not None:
                paired = paired_comparison(
                    before,
                    after,
                    log_ratios,
                    pooled[old.key.workload],
                    MIN_EFFECT,
                    higher_is_better=higher_is_better,
                )
            found.append(paired or _compare(before, after, higher_is_better))
        results[figure] = found
    comparisons = [
        StackComparison(
            base=base,
            key=new.key,
            rps=results["rps"][index],
            requests_per_server_cpu_s=results["requests_per_server_cpu_s"][index],
            latency_p99_ms=results["latency_p99_ms"][index],
        )
        for index, (_, new) in enumerate(pairs)
    ]
    for figure in FIGURES:
        comparisons = _corrected(comparisons, figure)
    return comparisons


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
