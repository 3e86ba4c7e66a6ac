"""Statistics of a run: one estimate per figure, one comparison per pair of cells.

A figure's uncertainty has two sources and an honest interval holds both: the seconds within
one cell (estimated from its time series by batch means, `pgarena.results.series`) and the
fresh servers of its repeats, which vary more than seconds within one server do. Repeats are
few (1 to 5), so intervals use Student's t with the degrees of freedom each source really has,
not a bootstrap, which needs far more samples than a benchmark can afford to be trustworthy.

Used by `pgarena run` (the summary in the result file) and by `pgarena compare`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any, Literal

from scipy import stats as scipy_stats

Verdict = Literal["faster", "slower", "within noise"]
Method = Literal["batch means", "repeats", "pooled repeats", "single value", "none"]
# pyperf's rule: above this CV across repeats a figure is unstable (see results.warnings).
UNSTABLE_CV = 0.10


def _finite_or_none(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def _t975(df: float) -> float:
    return float(scipy_stats.t.ppf(0.975, df))


@dataclass(frozen=True)
class Estimate:
    """One figure's point estimate and its 95% interval (Student's t on `df`).

    `se` is the standard error of `mean`; `n` is how many values it came from (points of a
    series, or repeats); `method` says how the uncertainty was estimated. With no values
    everything is None; with one value and no standard error the interval is None.
    """

    mean: float | None
    se: float | None
    df: float | None
    ci95_low: float | None
    ci95_high: float | None
    n: int
    method: Method

    @classmethod
    def of(
        cls, mean: float | None, se: float | None, df: float | None, n: int, method: Method
    ) -> Estimate:
        """The estimate with its 95% interval mean +/- t(0.975, df) * se, when both exist."""
        if mean is None:
            return cls(None, None, None, None, None, n, "none")
        if se is None or df is None or df <= 0:
            return cls(mean, se, df, None, None, n, method)
        half_width = _t975(df) * se
        return cls(mean, se, df, mean - half_width, mean + half_width, n, method)

    @classmethod
    def from_values(cls, values: Sequence[float]) -> Estimate:
        """Mean of independent values (repeats) with se = stdev / sqrt(n) and n-1 df."""
        data = [float(v) for v in values]
        n = len(data)
        if n == 0:
            return cls.of(None, None, None, 0, "none")
        mean = math.fsum(data) / n
        if n == 1:
            return cls.of(mean, None, None, 1, "single value")
        variance = math.fsum((v - mean) ** 2 for v in data) / (n - 1)
        return cls.of(mean, math.sqrt(variance / n), n - 1, n, "repeats")

    @property
    def relative_half_width(self) -> float | None:
        """Half the interval's width over |mean|: 0.05 means "known to +/-5%"."""
        if self.ci95_low is None or self.ci95_high is None or not self.mean:
            return None
        return (self.ci95_high - self.ci95_low) / 2 / abs(self.mean)

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape used in the result file."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Estimate:
        """The inverse of `to_dict`."""
        return cls(**{name: data.get(name) for name in cls.__dataclass_fields__})


# --- Repeats of one cell --------------------------------------------------------------------


def pooled_relative_variance(groups: Sequence[Sequence[float]]) -> tuple[float, float] | None:
    """How much repeat means vary relative to their cell's mean, pooled over a whole run.

    Each group holds one cell's repeat means. Within a group the values are divided by the
    group mean, so cells of 100 and 10,000 requests/s pool on one scale; the squared
    deviations of those relative values are summed over every group of at least two values
    with a non-zero mean, and divided by their degrees of freedom (sum of size - 1). Returns
    (relative variance, df), or None when no group can contribute.
    """
    squares, df = 0.0, 0
    for group in groups:
        values = [float(v) for v in group]
        mean = math.fsum(values) / len(values) if values else 0.0
        if len(values) < 2 or mean == 0:
            continue
        squares += math.fsum((v / mean - 1.0) ** 2 for v in values)
        df += len(values) - 1
    return (squares / df, float(df)) if df else None


def combine_repeats(
    repeats: Sequence[Estimate],
    pooled_relative_variance: float | None = None,
    pooled_df: float = 0,
) -> Estimate:
    """One cell's estimate from the within-cell estimates of its repeats.

    Each repeat starts a fresh server (and database connections, caches, the scheduler's
    placement), and that varies more than seconds within one server: the interval of a
    repeat's own series understates how far another run would land. So with R >= 2 repeats
    the variance of the grand mean is the between-repeat variance var(m_r) / R with R-1 df,
    which already contains the within-repeat noise; it is never taken smaller than the
    within-repeat component mean(se_r^2) / R, which guards against repeats that agree by luck.

    Two or three repeats give few df (t(0.975, 1) = 12.7). When the run as a whole shows how
    much repeats vary (`pooled_relative_variance` s0^2 with `pooled_df` d0, from
    `pooled_relative_variance()`), the cell's relative variance s^2 (d = R-1 df) is moderated
    towards it, as limma's empirical Bayes does for genes: s2 = (d0 s0^2 + d s^2) / (d0 + d)
    with d0 + d df. A cell that behaves like the rest gets an interval of the run's typical
    width; one that is noisier than the rest still shows it, diluted by d0.

    With one repeat its own estimate (batch means) is returned unchanged.
    """
    known = [r for r in repeats if r.mean is not None]
    if not known:
        return Estimate.of(None, None, None, 0, "none")
    if len(known) == 1:
        return known[0]
    means = [r.mean for r in known if r.mean is not None]
    count = len(means)
    grand = math.fsum(means) / count
    variance = math.fsum((m - grand) ** 2 for m in means) / (count - 1)
    df: float = count - 1
    method: Method = "repeats"
    if pooled_relative_variance is not None and pooled_df > 0 and grand != 0:
        relative = variance / grand**2
        relative = (pooled_df * pooled_relative_variance + df * relative) / (pooled_df + df)
        variance, df, method = relative * grand**2, pooled_df + df, "pooled repeats"
    variance_of_mean = variance / count
    within = [r.se**2 for r in known if r.se is not None]
    if within:
        variance_of_mean = max(variance_of_mean, math.fsum(within) / len(within) / count)
    return Estimate.of(grand, math.sqrt(variance_of_mean), df, count, method)


# --- Comparing two estimates ----------------------------------------------------------------


@dataclass(frozen=True)
class Comparison:
    """`new` against `base`: the ratio of means, its 95% interval, and what it means.

    `p_worse` is the one-sided p-value of "new is worse than base by more than the
    threshold", `p_better` its mirror, `p_value` the two-sided one (2 * the smaller, at most
    1). They are None when no interval exists. `base`/`new` are the two estimates compared.
    """

    ratio: float | None
    ci95_low: float | None
    ci95_high: float | None
    verdict: Verdict
    base: Estimate
    new: Estimate
    p_value: float | None = None
    p_worse: float | None = None
    p_better: float | None = None
    df: float | None = None
    threshold: float = 0.0
    higher_is_better: bool = True

    def to_dict(self) -> dict[str, object]:
        """The JSON shape used by `pgarena compare --format json`."""
        return {
            "ratio": self.ratio,
            # JSON has no infinity: an unbounded interval is written as null.
            "ci95_low": _finite_or_none(self.ci95_low),
            "ci95_high": _finite_or_none(self.ci95_high),
            "verdict": self.verdict,
            "p_value": self.p_value,
            "p_worse": self.p_worse,
            "p_better": self.p_better,
            "df": _finite_or_none(self.df),
            "threshold": self.threshold,
            "higher_is_better": self.higher_is_better,
            "base": self.base.to_dict(),
            "new": self.new.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Comparison:
        """The inverse of `to_dict` (a null interval end reads back as unbounded)."""

        low, high = data.get("ci95_low"), data.get("ci95_high")
        bounded = data.get("p_value") is not None or (low is not None and high is not None)
        return cls(
            ratio=data.get("ratio"),
            ci95_low=low if low is not None or not bounded else -math.inf,
            ci95_high=high if high is not None or not bounded else math.inf,
            verdict=data["verdict"],
            base=Estimate.from_dict(data["base"]),
            new=Estimate.from_dict(data["new"]),
            p_value=data.get("p_value"),
            p_worse=data.get("p_worse"),
            p_better=data.get("p_better"),
            df=data.get("df"),
            threshold=data.get("threshold", 0.0),
            higher_is_better=data.get("higher_is_better", True),
        )


def band_verdict(
    low: float, high: float, threshold: float, *, higher_is_better: bool = True
) -> Verdict:
    """The verdict of a ratio's interval [low, high]: a difference only when the whole
    interval lies outside the band 1 +/- threshold ("faster" means better for the figure)."""
    above, below = low > 1.0 + threshold, high < 1.0 - threshold
    if not (above or below):
        return "within noise"
    return "faster" if (above if higher_is_better else below) else "slower"


def compare_estimates(
    base: Estimate,
    new: Estimate,
    *,
    higher_is_better: bool = True,
    threshold: float = 0.0,
) -> Comparison:
    """Compare two estimates of one figure: is `new` faster than `base`, and how sure is that?

    `ratio` is new.mean / base.mean. Its 95% interval comes from Fieller's theorem for the
    ratio of two independent means, with Welch-Satterthwaite degrees of freedom, so it is
    honest about unequal spreads and asymmetric around the ratio. A difference is only
    called when the interval lies outside the band 1 +/- threshold: "faster" means better for
    the figure (higher throughput, or lower latency with `higher_is_better=False`).

    The p-values test the same band with t = (m_new - r0 m_base) / sqrt(se_new^2 +
    r0^2 se_base^2): for throughput, `p_worse` tests H0 ratio >= 1 - threshold (r0 = 1 -
    threshold) against "worse by more than the threshold", `p_better` tests H0 ratio <= 1 +
    threshold; for lower-is-better figures the two bounds swap roles. Feed `p_worse` of many
    cells to `holm` or `benjamini_hochberg` to gate CI without false alarms.
    """
    if threshold < 0:
        raise ValueError("threshold must be >= 0")
    no_verdict = Comparison(None, None, None, "within noise", base, new)
    result = replace(no_verdict, threshold=threshold, higher_is_better=higher_is_better)
    if not base.mean or new.mean is None:
        return result
    ratio = new.mean / base.mean
    result = replace(result, ratio=ratio)
    if not (base.se is not None and new.se is not None and base.df and new.df):
        return result  # no interval on a side: the ratio alone says nothing
    low, high = _fieller_interval(base, new, ratio)
    verdict = band_verdict(low, high, threshold, higher_is_better=higher_is_better)
    # P(ratio below the band) and P(ratio above the band), one-sided.
    p_below = _t_probability(base, new, 1.0 - threshold, lower_tail=True)
    p_above = _t_probability(base, new, 1.0 + threshold, lower_tail=False)
    p_worse, p_better = (p_below, p_above) if higher_is_better else (p_above, p_below)
    return replace(
        result,
        ci95_low=low,
        ci95_high=high,
        verdict=verdict,
        p_value=min(1.0, 2 * min(p_worse, p_better)),
        p_worse=p_worse,
        p_better=p_better,
        df=_welch_df(base, new, ratio),
    )


def _welch_df(base: Estimate, new: Estimate, ratio: float) -> float:
    """Welch-Satterthwaite df of m_new - ratio * m_base (inf when there is no spread)."""
    assert base.se is not None and new.se is not None and base.df and new.df
    var_new, var_base = new.se**2, ratio**2 * base.se**2
    denominator = var_new**2 / new.df + var_base**2 / base.df
    return (var_new + var_base) ** 2 / denominator if denominator > 0 else math.inf


def _t_probability(base: Estimate, new: Estimate, r0: float, *, lower_tail: bool) -> float:
    """P(T <= t) (or P(T >= t)) for t = (m_new - r0 m_base) / sqrt(se_new^2 + r0^2 se_base^2)."""
    assert base.mean is not None and new.mean is not None
    assert base.se is not None and new.se is not None
    difference = new.mean - r0 * base.mean
    spread = math.sqrt(new.se**2 + r0**2 * base.se**2)
    if spread == 0:  # no noise at all: the answer is certain (or a coin toss at equality)
        t = math.copysign(math.inf, difference) if difference else 0.0
    else:
        t = difference / spread
    df = _welch_df(base, new, r0)
    if lower_tail:
        return float(scipy_stats.t.cdf(t, df))
    return float(scipy_stats.t.sf(t, df))


def _fieller_interval(base: Estimate, new: Estimate, ratio: float) -> tuple[float, float]:
    """95% interval of new.mean / base.mean; (-inf, inf) when base.mean is not
    distinguishable from zero."""
    assert base.mean is not None and new.mean is not None
    assert base.se is not None and new.se is not None
    var_base, var_new = base.se**2, new.se**2
    if var_base == 0 and var_new == 0:
        return ratio, ratio  # no spread at all: the ratio is exact
    t2 = _t975(_welch_df(base, new, ratio)) ** 2
    # (m_new - r m_base)^2 = t^2 (v_new + r^2 v_base), a quadratic a r^2 + b r + c = 0.
    a = base.mean**2 - t2 * var_base
    b = -2.0 * new.mean * base.mean
    c = new.mean**2 - t2 * var_new
    discriminant = b * b - 4 * a * c
    if a <= 0 or discriminant < 0:
        return -math.inf, math.inf
    root = math.sqrt(discriminant)
    return (-b - root) / (2 * a), (-b + root) / (2 * a)


# --- Many comparisons at once ---------------------------------------------------------------


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values (family-wise error), in the order given.

    Sorted ascending, the i-th (from 1) of m becomes max over j <= i of (m - j + 1) p_(j),
    capped at 1. Rejecting where the adjusted value is below alpha keeps the chance of even
    one false alarm among all cells below alpha, without assuming the cells independent.
    """
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [0.0] * m
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[index]))
        adjusted[index] = running
    return adjusted


def benjamini_hochberg(p_values: Sequence[float]) -> list[float]:
    """Benjamini-Hochberg adjusted p-values (false discovery rate), in the order given.

    Sorted ascending, the i-th (from 1) of m becomes min over j >= i of m p_(j) / j, capped
    at 1. Rejecting where the adjusted value is below q keeps the expected share of false
    alarms among the reported changes below q: more power than Holm when many cells change.
    """
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [0.0] * m
    running = 1.0
    for rank in range(m - 1, -1, -1):
        index = order[rank]
        running = min(running, m * p_values[index] / (rank + 1))
        adjusted[index] = running
    return adjusted
