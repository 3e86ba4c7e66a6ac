"""Statistics across repeats, checked on samples drawn from known distributions."""

from __future__ import annotations

import json
import math
import statistics

import numpy as np
import pytest
from scipy import stats as scipy_stats

from pgarena.results.stats import (
    Comparison,
    Estimate,
    benjamini_hochberg,
    combine_repeats,
    compare_estimates,
    holm,
    pooled_relative_variance,
)

TRIALS = 400


def t975(df: float) -> float:
    return float(scipy_stats.t.ppf(0.975, df))


def draws(rng: np.random.Generator, mean: float, stdev: float, n: int) -> list[float]:
    return rng.normal(mean, stdev, n).tolist()


def compare(base: list[float], new: list[float], **options: object) -> Comparison:
    """Two sets of independent repeats, compared as `pgarena compare` compares summaries."""
    return compare_estimates(Estimate.from_values(base), Estimate.from_values(new), **options)  # type: ignore[arg-type]


def test_summary_matches_the_sample_it_describes() -> None:
    values = draws(np.random.default_rng(1), 1000, 50, 7)

    summary = Estimate.from_values(values)

    assert (summary.n, summary.df, summary.method) == (7, 6, "repeats")
    assert summary.mean == pytest.approx(statistics.fmean(values))
    assert summary.se == pytest.approx(statistics.stdev(values) / math.sqrt(7))
    assert summary.ci95_low < summary.mean < summary.ci95_high


def test_the_95_percent_interval_covers_the_true_mean_about_95_percent_of_the_time() -> None:
    rng = np.random.default_rng(2)
    covered = 0
    for _ in range(TRIALS):
        summary = Estimate.from_values(draws(rng, 100, 10, 3))  # 3 repeats
        covered += summary.ci95_low <= 100 <= summary.ci95_high

    assert 0.91 <= covered / TRIALS <= 0.99


def test_one_value_has_no_spread_and_no_interval() -> None:
    summary = Estimate.from_values([123.0])

    assert (summary.n, summary.mean, summary.method) == (1, 123.0, "single value")
    assert summary.se is None and summary.ci95_low is None and summary.ci95_high is None


def test_a_real_20_percent_gain_is_called_faster_and_its_interval_holds_the_true_ratio() -> None:
    rng = np.random.default_rng(3)
    base, new = draws(rng, 1000, 30, 5), draws(rng, 1200, 30, 5)

    throughput = compare(base, new)
    latency = compare(base, new, higher_is_better=False)

    assert throughput.verdict == "faster"
    assert throughput.ratio == pytest.approx(statistics.fmean(new) / statistics.fmean(base))
    assert throughput.ci95_low < 1.2 < throughput.ci95_high
    assert throughput.ci95_low > 1.0
    # The same numbers as latencies: higher is worse.
    assert latency.verdict == "slower"


def test_equal_means_are_within_noise_except_about_5_percent_of_the_time() -> None:
    rng = np.random.default_rng(4)
    called = sum(
        compare(draws(rng, 500, 25, 3), draws(rng, 500, 25, 3)).verdict != "within noise"
        for _ in range(TRIALS)
    )

    assert called / TRIALS <= 0.09


def test_the_ratio_interval_covers_the_true_ratio_about_95_percent_of_the_time() -> None:
    rng = np.random.default_rng(5)
    covered = 0
    for _ in range(TRIALS):
        comparison = compare(draws(rng, 800, 40, 4), draws(rng, 1000, 60, 4))
        covered += comparison.ci95_low <= 1.25 <= comparison.ci95_high

    assert 0.91 <= covered / TRIALS <= 0.99


def test_a_difference_inside_the_threshold_is_not_called() -> None:
    rng = np.random.default_rng(6)
    base, new = draws(rng, 1000, 2, 5), draws(rng, 1030, 2, 5)  # +3%, very little noise

    assert compare(base, new).verdict == "faster"
    assert compare(base, new, threshold=0.05).verdict == "within noise"


def test_noisy_repeats_give_a_wide_interval_and_no_verdict() -> None:
    rng = np.random.default_rng(7)
    base, new = draws(rng, 1000, 300, 3), draws(rng, 1100, 300, 3)

    comparison = compare(base, new)

    assert comparison.verdict == "within noise"
    assert comparison.ci95_low < 1.0 < comparison.ci95_high
    assert comparison.to_dict()["verdict"] == "within noise"


def test_single_runs_cannot_be_called_different() -> None:
    comparison = compare([1000.0], [2000.0])

    assert comparison.ratio == 2.0
    assert comparison.verdict == "within noise"
    assert comparison.ci95_low is None


def test_an_unbounded_interval_is_written_as_null() -> None:
    # A base mean indistinguishable from zero: the ratio can be anything.
    comparison = compare([-5.0, 5.0, 1.0], [10.0, 11.0, 12.0])

    assert math.isinf(comparison.ci95_high)
    assert comparison.to_dict()["ci95_high"] is None
    assert comparison.verdict == "within noise"


# --- Estimate ----------------------------------------------------------------------------------


def test_an_estimate_of_repeats_is_the_t_interval_of_their_mean() -> None:
    estimate = Estimate.from_values([98.0, 100.0, 102.0])

    # mean 100, stdev 2, se 2/sqrt(3), t(0.975, 2) = 4.3027
    assert (estimate.mean, estimate.df, estimate.n, estimate.method) == (100, 2, 3, "repeats")
    assert estimate.se == pytest.approx(2 / math.sqrt(3))
    assert estimate.ci95_low == pytest.approx(100 - 4.302653 * 2 / math.sqrt(3))
    assert estimate.ci95_high == pytest.approx(100 + 4.302653 * 2 / math.sqrt(3))
    assert estimate.relative_half_width == pytest.approx(4.302653 * 2 / math.sqrt(3) / 100)


def test_an_estimate_of_nothing_is_all_none_and_of_one_value_has_no_interval() -> None:
    empty, single = Estimate.from_values([]), Estimate.from_values([7.0])

    assert empty == Estimate(None, None, None, None, None, 0, "none")
    assert (single.mean, single.n, single.method) == (7.0, 1, "single value")
    assert single.se is None and single.ci95_low is None and single.relative_half_width is None


def test_an_estimate_survives_json() -> None:
    estimate = Estimate.of(250.0, 5.0, 7.5, 120, "batch means")

    assert Estimate.from_dict(json.loads(json.dumps(estimate.to_dict()))) == estimate
    assert estimate.ci95_high - estimate.mean == pytest.approx(t975(7.5) * 5.0)


def test_repeats_give_the_student_t_interval_of_their_mean() -> None:
    values = [10.0, 12.0, 11.0, 13.0]
    estimate = Estimate.from_values(values)

    half_width = t975(3) * statistics.stdev(values) / 2
    assert estimate.ci95_low == pytest.approx(11.5 - half_width)
    assert estimate.ci95_high == pytest.approx(11.5 + half_width)


# --- Combining repeats -------------------------------------------------------------------------


def repeat(mean: float, se: float = 1.0, df: float = 30) -> Estimate:
    return Estimate.of(mean, se, df, 100, "batch means")


def test_one_repeat_keeps_its_own_within_cell_interval() -> None:
    only = repeat(500.0, se=4.0)

    assert combine_repeats([only]) is only
    assert combine_repeats([]).mean is None


def test_repeats_that_disagree_widen_the_interval_beyond_their_own() -> None:
    combined = combine_repeats([repeat(100.0), repeat(110.0), repeat(90.0)])

    # var of the means = (0 + 100 + 100) / 2 = 100; se = sqrt(100 / 3); df = 2
    assert (combined.mean, combined.df, combined.n, combined.method) == (100, 2, 3, "repeats")
    assert combined.se == pytest.approx(math.sqrt(100 / 3))
    assert combined.ci95_high == pytest.approx(100 + 4.302653 * math.sqrt(100 / 3))


def test_repeats_that_agree_by_luck_keep_the_within_cell_uncertainty() -> None:
    combined = combine_repeats([repeat(100.0, se=5.0), repeat(100.1, se=5.0)])

    # between: 0.005 / 2; within: mean(se^2) / R = 25 / 2 wins
    assert combined.se == pytest.approx(math.sqrt(25 / 2))
    assert combined.df == 1


def test_the_pooled_relative_variance_is_the_runs_typical_spread_of_repeats() -> None:
    pooled = pooled_relative_variance([[100, 110, 90], [10, 12], [5], []])

    # (0 + 0.01 + 0.01) over 2 df, plus 2 * (1/11)^2 over 1 df; [5] and [] contribute nothing
    assert pooled == pytest.approx(((0.02 + 2 / 121) / 3, 3))
    assert pooled_relative_variance([[1.0], [2.0]]) is None


def test_pooling_spares_a_two_repeat_cell_the_t_1_interval() -> None:
    repeats = [repeat(100.0, se=0.5), repeat(104.0, se=0.5)]

    alone = combine_repeats(repeats)
    pooled = combine_repeats(repeats, pooled_relative_variance=0.0004, pooled_df=20)

    # alone: var 8, se 2, t(0.975, 1) = 12.706
    assert alone.ci95_high - alone.mean == pytest.approx(12.7062 * 2, rel=1e-4)
    # pooled: relative variance (20 * 0.0004 + 1 * 8 / 102^2) / 21, on the grand mean 102
    relative = (20 * 0.0004 + 8 / 102**2) / 21
    assert (pooled.method, pooled.df) == ("pooled repeats", 21)
    assert pooled.se == pytest.approx(math.sqrt(relative * 102**2 / 2))
    assert pooled.ci95_high - pooled.mean == pytest.approx(t975(21) * pooled.se)
    assert pooled.ci95_high - pooled.mean < (alone.ci95_high - alone.mean) / 5


def test_pooled_two_repeat_intervals_cover_the_true_mean_about_95_percent_of_the_time() -> None:
    # A fresh server shifts the mean by 3% (sd); within a repeat it is known to 0.5%.
    rng = np.random.default_rng(11)

    def cell(true_mean: float) -> list[Estimate]:
        shifts = rng.normal(0, 0.03 * true_mean, 2) + rng.normal(0, 0.005 * true_mean, 2)
        return [repeat(true_mean + shift, se=0.005 * true_mean) for shift in shifts]

    covered = 0
    for _ in range(TRIALS):
        others = [[r.mean for r in cell(mean)] for mean in rng.uniform(100, 5000, 15)]
        relative, df = pooled_relative_variance(others)
        combined = combine_repeats(cell(1000.0), relative, df)
        covered += combined.ci95_low <= 1000.0 <= combined.ci95_high

    assert 0.91 <= covered / TRIALS <= 0.99


# --- Comparing estimates -----------------------------------------------------------------------


def test_the_fieller_interval_matches_a_hand_computation() -> None:
    base, new = (
        Estimate.of(100.0, 2.0, 10, 11, "repeats"),
        Estimate.of(110.0, 3.0, 10, 11, "repeats"),
    )

    comparison = compare_estimates(base, new)

    # Welch-Satterthwaite df of 110 - 1.1 * 100: (9 + 1.21 * 4)^2 / (9^2 / 10 + (1.21 * 4)^2 / 10)
    df = (9 + 4.84) ** 2 / (81 / 10 + 4.84**2 / 10)
    t2 = t975(df) ** 2
    # (110 - 100 r)^2 = t^2 (9 + 4 r^2): (10000 - 4 t^2) r^2 - 22000 r + (12100 - 9 t^2) = 0
    a, b, c = 10000 - 4 * t2, -22000.0, 12100 - 9 * t2
    root = math.sqrt(b * b - 4 * a * c)
    assert comparison.ratio == pytest.approx(1.1)
    assert comparison.df == pytest.approx(df)
    assert comparison.ci95_low == pytest.approx((-b - root) / (2 * a))
    assert comparison.ci95_high == pytest.approx((-b + root) / (2 * a))
    for end in (comparison.ci95_low, comparison.ci95_high):  # Fieller's defining equation
        assert (110 - 100 * end) ** 2 == pytest.approx(t2 * (9 + 4 * end**2))
    assert comparison.verdict == "faster"


def test_against_an_exact_base_the_ratio_interval_is_the_new_interval_scaled() -> None:
    base, new = Estimate.of(200.0, 0.0, 5, 6, "repeats"), Estimate.of(180.0, 4.0, 8, 9, "repeats")

    comparison = compare_estimates(base, new)

    assert comparison.ci95_low == pytest.approx(new.ci95_low / 200)
    assert comparison.ci95_high == pytest.approx(new.ci95_high / 200)
    # One-sided p of "worse": P(T_8 <= (180 - 200) / 4), a t-test against a known value.
    assert comparison.p_worse == pytest.approx(float(scipy_stats.t.cdf(-5.0, 8)))
    assert comparison.p_better == pytest.approx(float(scipy_stats.t.sf(-5.0, 8)))
    assert comparison.p_value == pytest.approx(2 * comparison.p_worse)
    assert comparison.verdict == "slower"


def test_a_threshold_moves_the_null_hypothesis_of_the_p_values() -> None:
    base, new = Estimate.of(100.0, 0.0, 5, 6, "repeats"), Estimate.of(93.0, 2.0, 10, 11, "repeats")

    strict = compare_estimates(base, new)
    lenient = compare_estimates(base, new, threshold=0.10)

    # H0 ratio >= 0.9: t = (93 - 90) / 2 = 1.5, so "worse by more than 10%" is not shown.
    assert strict.p_worse < 0.01 and strict.verdict == "slower"
    assert lenient.p_worse == pytest.approx(float(scipy_stats.t.cdf(1.5, 10)))
    assert lenient.verdict == "within noise"


def test_for_latency_a_higher_figure_is_the_worse_one() -> None:
    base, new = Estimate.of(10.0, 0.1, 9, 10, "repeats"), Estimate.of(12.0, 0.1, 9, 10, "repeats")

    comparison = compare_estimates(base, new, higher_is_better=False)

    assert comparison.verdict == "slower"
    assert comparison.p_worse < 1e-6 < 0.999 < comparison.p_better


def test_a_25_percent_throughput_cut_is_caught_with_a_tiny_p_value() -> None:
    rng = np.random.default_rng(12)
    base = Estimate.from_values(draws(rng, 1000, 40, 3))
    new = Estimate.from_values(draws(rng, 750, 30, 3))

    comparison = compare_estimates(base, new)

    assert comparison.verdict == "slower"
    assert comparison.ci95_low < 0.75 < comparison.ci95_high < 1
    assert comparison.p_worse < 0.005


def test_estimates_without_an_interval_are_within_noise_without_p_values() -> None:
    comparison = compare_estimates(Estimate.from_values([10.0]), Estimate.from_values([30.0]))

    assert (comparison.ratio, comparison.verdict) == (3.0, "within noise")
    assert comparison.p_value is None and comparison.ci95_low is None


def test_a_comparison_survives_json() -> None:
    comparison = compare([10.0, 11.0, 12.0], [13.0, 14.0, 12.5], threshold=0.02)
    unbounded = compare([-5.0, 5.0, 1.0], [10.0, 11.0, 12.0])

    for original in (comparison, unbounded):
        assert Comparison.from_dict(json.loads(json.dumps(original.to_dict()))) == original


# --- Multiple comparisons ----------------------------------------------------------------------

WORKED_P = [0.01, 0.04, 0.03, 0.005]


def test_holm_matches_the_worked_example() -> None:
    # Sorted: 0.005 * 4 = 0.02, 0.01 * 3 = 0.03, 0.03 * 2 = 0.06, 0.04 * 1 -> max(0.06, 0.04)
    assert holm(WORKED_P) == pytest.approx([0.03, 0.06, 0.06, 0.02])


def test_benjamini_hochberg_matches_the_worked_example() -> None:
    # Sorted: 0.005 * 4/1 = 0.02, 0.01 * 4/2 = 0.02, 0.03 * 4/3 = 0.04, 0.04 * 4/4 = 0.04
    assert benjamini_hochberg(WORKED_P) == pytest.approx([0.02, 0.04, 0.04, 0.02])


def test_adjusted_p_values_are_capped_at_1_monotone_and_never_smaller() -> None:
    rng = np.random.default_rng(13)
    p_values = rng.uniform(0, 1, 50).tolist()

    for adjust in (holm, benjamini_hochberg):
        adjusted = adjust(p_values)
        by_p = [a for _, a in sorted(zip(p_values, adjusted, strict=True))]
        assert all(a >= p for p, a in zip(p_values, adjusted, strict=True))
        assert all(a <= 1.0 for a in adjusted)
        assert by_p == sorted(by_p)
    assert holm([0.5, 0.6, 0.9]) == [1.0, 1.0, 1.0]
    assert benjamini_hochberg([0.5, 0.6, 0.9]) == pytest.approx([0.9, 0.9, 0.9])
    assert holm([]) == benjamini_hochberg([]) == []


def test_holm_keeps_false_alarms_over_60_equal_cells_rare() -> None:
    rng = np.random.default_rng(14)
    alarms = 0
    for _ in range(40):
        p_worse = [
            compare(draws(rng, 500, 25, 3), draws(rng, 500, 25, 3)).p_worse for _ in range(60)
        ]
        alarms += min(holm(p_worse)) < 0.05

    assert alarms <= 5  # about 2 expected at a 5% family-wise rate
