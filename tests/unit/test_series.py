"""A cell's time series: batch-means intervals, MSER-5 warmup, and the warnings they raise."""

from __future__ import annotations

import json
import math
import statistics

import numpy as np
import pytest
from scipy import stats as scipy_stats

from pgarena.results.series import BatchMeans, Warmup, batch_means, mser5
from pgarena.results.stats import Estimate
from pgarena.results.warnings import UNSTABLE_CV, CellWarning, stability_warnings


def ar1(rng: np.random.Generator, phi: float, n: int, mean: float = 0.0) -> np.ndarray:
    """An AR(1) series started in its stationary distribution."""
    values = np.empty(n)
    values[0] = rng.normal(0, 1 / math.sqrt(1 - phi**2))
    for i in range(1, n):
        values[i] = phi * values[i - 1] + rng.normal()
    return mean + values


def transient(rng: np.random.Generator, length: int = 40, steady: int = 360) -> np.ndarray:
    """A cold start: 50 above the steady level, decaying over `length` points, then noise."""
    start = 100 + 50 * np.exp(-np.arange(length) / 8) + rng.normal(0, 2, length)
    return np.concatenate([start, 100 + rng.normal(0, 2, steady)])


# --- Batch means -------------------------------------------------------------------------------


def test_an_uncorrelated_series_keeps_batches_of_one_and_the_plain_t_interval() -> None:
    result = batch_means([4, 6, 5, 5, 3, 7], min_batches=5)

    # r1 = (-1 + 0 + 0 + 0 - 4) / 10 = -0.5, inside 2 / sqrt(6) = 0.82: batches of 1.
    # mean 5, stdev sqrt(10 / 5), se = sqrt(2 / 6), t(0.975, 5) = 2.570582
    assert (result.batch_size, result.batches, result.dropped) == (1, 6, 0)
    assert result.lag1 == pytest.approx(-0.5)
    assert result.independent
    assert result.estimate.mean == 5
    assert result.estimate.ci95_low == pytest.approx(5 - 2.570582 * math.sqrt(2 / 6))
    assert result.estimate.ci95_high == pytest.approx(5 + 2.570582 * math.sqrt(2 / 6))
    assert (result.estimate.df, result.estimate.method) == (5, "batch means")


def test_a_series_of_repeated_pairs_is_batched_in_pairs_and_its_odd_first_point_dropped() -> None:
    rng = np.random.default_rng(3)
    pairs = rng.normal(100, 5, 100)
    series = [100.0, *np.repeat(pairs, 2)]  # 201 points: one does not fit in a batch of 2

    result = batch_means(series)

    assert (result.batch_size, result.batches, result.dropped) == (2, 100, 1)
    assert result.estimate.mean == pytest.approx(statistics.fmean(pairs))
    assert result.estimate.se == pytest.approx(statistics.stdev(pairs) / 10)
    assert result.estimate.n == 200
    assert result.estimate.ci95_high - result.estimate.mean == pytest.approx(
        float(scipy_stats.t.ppf(0.975, 99)) * statistics.stdev(pairs) / 10
    )


def test_strong_autocorrelation_forces_larger_batches_and_a_wider_interval() -> None:
    series = ar1(np.random.default_rng(8), phi=0.9, n=800, mean=50)

    result = batch_means(series)
    naive_se = float(np.std(series, ddof=1)) / math.sqrt(len(series))

    assert result.batch_size >= 16
    assert result.batches >= 10 and result.independent
    assert abs(result.lag1) < max(0.2, 2 / math.sqrt(result.batches))
    assert result.estimate.se > 2.5 * naive_se


def test_batch_means_intervals_cover_the_mean_of_correlated_series_far_better_than_naive() -> None:
    rng = np.random.default_rng(9)
    covered = naive = 0
    for _ in range(200):
        series = ar1(rng, phi=0.7, n=400)
        estimate = batch_means(series).estimate
        covered += estimate.ci95_low <= 0 <= estimate.ci95_high
        naive += abs(series.mean()) <= 1.97 * np.std(series, ddof=1) / 20

    assert covered / 200 >= 0.85
    assert naive / 200 < 0.70


def test_a_trend_never_becomes_independent_and_says_so() -> None:
    result = batch_means(np.arange(100.0))

    assert not result.independent
    assert result.batches >= 10  # the largest batches that still leave min_batches
    assert result.batch_size == 8


def test_short_and_constant_series_still_give_an_honest_answer() -> None:
    assert batch_means([]).estimate.mean is None
    single = batch_means([42.0])
    assert (single.estimate.mean, single.estimate.ci95_low, single.independent) == (42, None, False)
    flat = batch_means([3.0] * 20)
    assert (flat.estimate.ci95_low, flat.estimate.ci95_high, flat.lag1) == (3, 3, 0)


def test_batch_means_survive_json() -> None:
    result = batch_means(ar1(np.random.default_rng(10), 0.5, 200))

    assert BatchMeans.from_dict(json.loads(json.dumps(result.to_dict()))) == result


# --- MSER-5 ------------------------------------------------------------------------------------


def test_mser5_truncates_a_cold_start_near_the_end_of_its_transient() -> None:
    warmup = mser5(transient(np.random.default_rng(20)))

    assert warmup.steady is True
    assert 25 <= warmup.truncation <= 60


def test_mser5_finds_the_transient_in_most_runs() -> None:
    rng = np.random.default_rng(21)
    near = sum(25 <= mser5(transient(rng)).truncation <= 60 for _ in range(100))

    assert near >= 85


def test_mser5_keeps_most_of_a_series_that_starts_steady() -> None:
    warmup = mser5(np.random.default_rng(22).normal(100, 2, 400))

    assert warmup.steady is True
    assert warmup.truncation <= 40


def test_a_trending_series_is_flagged_not_steady() -> None:
    rng = np.random.default_rng(23)
    rising = np.linspace(100, 200, 400) + rng.normal(0, 2, 400)

    warmup = mser5(rising)

    assert warmup.steady is False
    assert warmup.truncation == 200  # the whole first half, a lower bound at best


def test_a_transient_longer_than_half_the_cell_is_not_steady() -> None:
    rng = np.random.default_rng(24)
    slow = np.concatenate([np.linspace(300, 100, 250), np.full(150, 100.0)])

    warmup = mser5(slow + rng.normal(0, 2, 400))

    assert warmup.steady is False
    assert warmup.truncation == 200


def test_mser5_does_not_judge_a_series_too_short_for_it() -> None:
    assert mser5([1.0, 2.0, 3.0] * 6) == Warmup(truncation=0, steady=None)
    assert Warmup.from_dict(json.loads(json.dumps(mser5(range(100)).to_dict()))).steady is False


# --- Warnings ----------------------------------------------------------------------------------


def test_a_clean_cell_has_no_warnings() -> None:
    estimate = Estimate.of(1000.0, 5.0, 20, 3, "pooled repeats")
    series = batch_means([4, 6, 5, 5, 3, 7], min_batches=5)

    assert stability_warnings(estimate, repeat_cv=0.02, repeats=3, series=series) == []


def test_each_rule_gives_its_own_kind_of_warning() -> None:
    wide = Estimate.of(100.0, 10.0, 2, 3, "repeats")
    trend = batch_means(np.arange(100.0))

    warnings = stability_warnings(
        wide,
        label="rps",
        repeat_cv=0.17,
        repeats=1,
        failed=2,
        failure_reason="server did not start",
        errors={"timeout": 3, "http_500": 2, "connect": 0},
        series=trend,
        warmup=mser5(np.arange(100.0)),
    )

    assert [w.kind for w in warnings] == [
        "failed",
        "errors",
        "unstable",
        "imprecise",
        "not-steady",
        "autocorrelated",
        "single-repeat",
    ]
    messages = [str(w) for w in warnings]
    assert messages[0] == "failed: 2 of 3 repeats (server did not start)"
    assert messages[1] == "errors: 5 failed requests (http_500: 2, timeout: 3)"
    assert messages[2] == f"unstable: rps CV 17% > {UNSTABLE_CV:.0%}"
    assert "+/-43%" in messages[3]
    assert [CellWarning.from_dict(w.to_dict()) for w in warnings] == warnings
