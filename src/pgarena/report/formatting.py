"""How figures are written: numbers, intervals, ratios and verdicts, the same in every report."""

from __future__ import annotations

import math
from typing import Any

from pgarena.results.stats import Comparison, Estimate

DASH = "\N{EN DASH}"  # between the bounds of a range: 1,180-1,260
MISSING = "\N{EN DASH}"  # a figure that was not measured


def _finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


def number(value: float | None) -> str:
    """A measured figure with about three significant digits: 12,345 / 123 / 12.3 / 1.23 / 0.12."""
    if not _finite(value):
        return MISSING
    magnitude = abs(value)
    if magnitude >= 100:
        return f"{value:,.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    # Rounded to 1 or not, a value near 1 reads 1.00 from either side, not "1" from below.
    if magnitude >= 0.995:
        return f"{value:.2f}"
    return f"{value:.2g}"


def interval(summary: Estimate | None) -> str:
    """'(1,180-1,260)': the 95% interval of a mean, or '' when there is none."""
    if summary is None or not (_finite(summary.ci95_low) and _finite(summary.ci95_high)):
        return ""
    # A dash between a negative bound and the other would read as a minus sign.
    between = DASH if summary.ci95_low >= 0 else " to "
    return f"({number(summary.ci95_low)}{between}{number(summary.ci95_high)})"


def seconds(value: float) -> str:
    """A configured duration: 1 -> '1 s', 0.5 -> '0.5 s'."""
    return f"{value:g} s"


def mean_with_interval(summary: Estimate | None) -> str:
    """'1,234 (1,180-1,260)': a mean with its 95% interval."""
    if summary is None:
        return MISSING
    text = number(summary.mean)
    bounds = interval(summary)
    return f"{text} {bounds}" if bounds else text


def mebibytes(value: float | None) -> str:
    """Bytes as MiB, for memory figures."""
    return MISSING if not _finite(value) else f"{value / 2**20:,.0f}"


def percent(value: float | None, *, signed: bool = False) -> str:
    """A fraction as a percentage: 0.123 -> '12.3%' (or '+12.3%')."""
    if not _finite(value):
        return MISSING
    return f"{value * 100:+.1f}%" if signed else f"{value * 100:.1f}%"


def diff_percent(comparison: Comparison | None) -> str:
    """NEW/BASE as a signed difference: ratio 1.101 -> '+10.1%'."""
    if comparison is None or not _finite(comparison.ratio):
        return MISSING
    return percent(comparison.ratio - 1, signed=True)


def diff_interval(comparison: Comparison | None) -> str:
    """The ratio's 95% interval as signed differences: '+4.0% to +16.5%'."""
    if comparison is None or comparison.ci95_low is None or comparison.ci95_high is None:
        return MISSING
    if not (_finite(comparison.ci95_low) and _finite(comparison.ci95_high)):
        return "unbounded"
    low = percent(comparison.ci95_low - 1, signed=True)
    high = percent(comparison.ci95_high - 1, signed=True)
    return f"{low} to {high}"


def verdict(comparison: Comparison | None, stack: str, base: str) -> str:
    """Who is faster, only when the interval says so: 'async faster' or 'within noise'."""
    if comparison is None:
        return MISSING
    if comparison.ci95_low is None or comparison.ci95_high is None:
        # The verdict says "within noise" here too; the reader deserves the reason.
        return "no interval"
    if comparison.verdict == "faster":
        return f"{stack} faster"
    if comparison.verdict == "slower":
        return f"{base} faster"
    return comparison.verdict


def _pct(value: float) -> str:
    return f"{value:.1f}" if abs(value) < 10 else f"{value:.0f}"


def _change(middle: float, low: float, high: float) -> str:
    """'12% (4.0-20%)' from fractions."""
    return f"{_pct(middle * 100)}% ({_pct(low * 100)}{DASH}{_pct(high * 100)}%)"


def _factor(value: float) -> str:
    return f"{value:.2f}" if value < 10 else f"{value:.1f}"


def difference_sentence(
    stack: str,
    base: str,
    comparison: Comparison,
    *,
    better: str = "faster",
    worse: str = "slower",
    as_good: str = "as fast",
) -> str:
    """'async is 12% (4.0-20%) faster than sync', with the 95% interval of the ratio.

    Big differences read best as factors ('2.1x (1.9-2.3) as fast as'), small ones as
    percentages. When the new stack is much worse the subject flips, so that the factor
    stays above one: 'sync is 2.1x (1.9-2.3) as fast as async'.
    """
    ratio, low, high = comparison.ratio, comparison.ci95_low, comparison.ci95_high
    if ratio >= 1.5:
        factor = f"{_factor(ratio)}x ({_factor(low)}{DASH}{_factor(high)})"
        return f"{stack} is {factor} {as_good} as {base}"
    if ratio >= 1:
        change = _change(ratio - 1, low - 1, high - 1)
        return f"{stack} is {change} {better} than {base}"
    if ratio > 1 / 1.5:
        change = _change(1 - ratio, 1 - high, 1 - low)
        return f"{stack} is {change} {worse} than {base}"
    # base/new: the low bound of the flipped ratio is 1/high (and unbounded when low <= 0).
    upper = _factor(1 / low) if low > 0 else "∞"
    factor = f"{_factor(1 / ratio)}x ({_factor(1 / high)}{DASH}{upper})"
    return f"{base} is {factor} {as_good} as {stack}"


def listing(items: list[str]) -> str:
    """'1, 4 and 16'."""
    if len(items) <= 1:
        return "".join(items)
    return f"{', '.join(items[:-1])} and {items[-1]}"


def targets(value: Any) -> str | None:
    """The `target` of a result file as a reader wants it: the URL of the one service
    measured, or each label with its URL after an A/B run (`a: http://..., b: http://...`);
    None for a run of pgarena's own servers."""
    if isinstance(value, dict):
        return ", ".join(f"{name}: {url}" for name, url in value.items())
    return None if value is None else str(value)
