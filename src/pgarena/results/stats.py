"""Statistics across repeats: one summary per cell, one comparison per pair of cells.

Used by `pgarena run` (the summary in the result file) and by `pgarena compare`. Repeats are
few (3 by default), so the intervals use Student's t distribution rather than a bootstrap,
which needs far more samples than a benchmark can afford to be trustworthy.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Literal

from scipy import stats as scipy_stats

Verdict = Literal["faster", "slower", "within noise"]

# pyperf's rule of thumb: above this coefficient of variation a figure is not to be trusted.
UNSTABLE_CV = 0.10


@dataclass(frozen=True)
class Summary:
    """Mean, spread and 95% confidence interval of one figure across repeats.

    `ci95_low`/`ci95_high`/`stdev`/`cv` are None when they cannot be computed (fewer than two
    values, or a mean of zero for `cv`).
    """

    n: int
    mean: float | None
    median: float | None
    stdev: float | None
    ci95_low: float | None
    ci95_high: float | None
    cv: float | None
    values: list[float]

    def to_dict(self) -> dict[str, object]:
        """The JSON shape used in the result file."""
        return asdict(self)


@dataclass(frozen=True)
class Comparison:
    """`new` against `base`: the ratio of means, its 95% interval, and what it means."""

    ratio: float | None
    ci95_low: float | None
    ci95_high: float | None
    verdict: Verdict
    base: Summary
    new: Summary

    def to_dict(self) -> dict[str, object]:
        """The JSON shape used by `pgarena compare --json`."""
        return {
            "ratio": self.ratio,
            # JSON has no infinity: an unbounded interval is written as null.
            "ci95_low": _finite_or_none(self.ci95_low),
            "ci95_high": _finite_or_none(self.ci95_high),
            "verdict": self.verdict,
            "base": self.base.to_dict(),
            "new": self.new.to_dict(),
        }


def _finite_or_none(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def summarize(values: Sequence[float]) -> Summary:
    """Summarize repeated measurements of one figure.

    The 95% confidence interval is for the mean, from Student's t distribution with n-1
    degrees of freedom (mean +/- t * stdev / sqrt(n)); stdev is the sample standard
    deviation (n-1 denominator) and cv is stdev / mean.
    """
    data = [float(v) for v in values]
    n = len(data)
    if n == 0:
        return Summary(0, None, None, None, None, None, None, [])
    mean = math.fsum(data) / n
    median = _median(data)
    if n < 2:
        return Summary(n, mean, median, None, None, None, None, data)
    stdev = math.sqrt(math.fsum((v - mean) ** 2 for v in data) / (n - 1))
    half_width = float(scipy_stats.t.ppf(0.975, n - 1)) * stdev / math.sqrt(n)
    cv = stdev / abs(mean) if mean != 0 else None
    return Summary(n, mean, median, stdev, mean - half_width, mean + half_width, cv, data)


def compare(
    base: Sequence[float],
    new: Sequence[float],
    *,
    higher_is_better: bool = True,
    threshold: float = 0.0,
) -> Comparison:
    """Compare two sets of repeats of one figure (for example requests/s of two stacks).

    `ratio` is mean(new) / mean(base). Its 95% interval comes from Fieller's theorem for
    the ratio of two independent means, with Welch-Satterthwaite degrees of freedom, so it
    is honest about unequal spreads and asymmetric around the ratio. A difference is only
    called when the interval excludes 1.0 and, with `threshold`, the whole band
    1 +/- threshold: "faster" means better for the figure (higher throughput, or lower
    latency with `higher_is_better=False`). With fewer than two values on a side no
    interval exists and the verdict is "within noise".
    """
    if threshold < 0:
        raise ValueError("threshold must be >= 0")
    base_summary, new_summary = summarize(base), summarize(new)
    if not base_summary.mean or new_summary.mean is None:
        return Comparison(None, None, None, "within noise", base_summary, new_summary)
    ratio = new_summary.mean / base_summary.mean
    low, high = _fieller_interval(base_summary, new_summary, ratio)
    if low is None or high is None:
        return Comparison(ratio, low, high, "within noise", base_summary, new_summary)
    above, below = low > 1.0 + threshold, high < 1.0 - threshold
    verdict: Verdict = "within noise"
    if above or below:
        better = above if higher_is_better else below
        verdict = "faster" if better else "slower"
    return Comparison(ratio, low, high, verdict, base_summary, new_summary)


def _fieller_interval(
    base: Summary, new: Summary, ratio: float
) -> tuple[float | None, float | None]:
    """95% interval of mean(new)/mean(base); (None, None) when it cannot be computed,
    (-inf, inf) when the base mean is not distinguishable from zero."""
    if base.n < 2 or new.n < 2 or base.stdev is None or new.stdev is None:
        return None, None
    assert base.mean is not None and new.mean is not None
    var_base = base.stdev**2 / base.n  # variance of each mean
    var_new = new.stdev**2 / new.n
    if var_base == 0 and var_new == 0:
        return ratio, ratio  # no spread at all: the ratio is exact
    df = (var_new + ratio**2 * var_base) ** 2 / (
        var_new**2 / (new.n - 1) + (ratio**2 * var_base) ** 2 / (base.n - 1)
    )
    t2 = float(scipy_stats.t.ppf(0.975, df)) ** 2
    # (m_new - r m_base)^2 = t^2 (v_new + r^2 v_base), a quadratic a r^2 + b r + c = 0.
    a = base.mean**2 - t2 * var_base
    b = -2.0 * new.mean * base.mean
    c = new.mean**2 - t2 * var_new
    discriminant = b * b - 4 * a * c
    if a <= 0 or discriminant < 0:
        return -math.inf, math.inf
    root = math.sqrt(discriminant)
    return (-b - root) / (2 * a), (-b + root) / (2 * a)


def _median(data: list[float]) -> float:
    ordered = sorted(data)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    return (ordered[middle - 1] + ordered[middle]) / 2


def stability_warnings(summary: Summary, label: str = "") -> list[str]:
    """pyperf-style warnings for a figure whose repeats disagree too much."""
    if summary.cv is not None and summary.cv > UNSTABLE_CV:
        prefix = f"{label} " if label else ""
        return [f"unstable: {prefix}CV {summary.cv:.0%} > {UNSTABLE_CV:.0%}"]
    return []
