"""Statistics across repeats, checked on samples drawn from known distributions."""

from __future__ import annotations

import math
import statistics

import numpy as np
import pytest

from pgarena.results.stats import compare, summarize

TRIALS = 400


def draws(rng: np.random.Generator, mean: float, stdev: float, n: int) -> list[float]:
    return rng.normal(mean, stdev, n).tolist()


def test_summary_matches_the_sample_it_describes() -> None:
    values = draws(np.random.default_rng(1), 1000, 50, 7)

    summary = summarize(values)

    assert summary.n == 7
    assert summary.values == values
    assert summary.mean == pytest.approx(statistics.fmean(values))
    assert summary.median == pytest.approx(statistics.median(values))
    assert summary.stdev == pytest.approx(statistics.stdev(values))
    assert summary.cv == pytest.approx(summary.stdev / summary.mean)
    assert summary.ci95_low < summary.mean < summary.ci95_high


def test_the_95_percent_interval_covers_the_true_mean_about_95_percent_of_the_time() -> None:
    rng = np.random.default_rng(2)
    covered = 0
    for _ in range(TRIALS):
        summary = summarize(draws(rng, 100, 10, 3))  # 3 repeats, as `pgarena run` does
        covered += summary.ci95_low <= 100 <= summary.ci95_high

    assert 0.91 <= covered / TRIALS <= 0.99


def test_one_value_has_no_spread_and_no_interval() -> None:
    summary = summarize([123.0])

    assert (summary.n, summary.mean, summary.median) == (1, 123.0, 123.0)
    assert summary.stdev is None and summary.ci95_low is None and summary.cv is None


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
