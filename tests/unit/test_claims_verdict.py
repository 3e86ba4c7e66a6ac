"""The verdict rule: known intervals in, known verdicts out."""

from __future__ import annotations

import math

import pytest

from pgarena.claims.catalogue import load_catalogue
from pgarena.claims.verdict import (
    DOES_NOT_HOLD,
    HOLDS,
    INCONCLUSIVE,
    Interval,
    judge,
    sweep_verdict,
    verdict,
)
from pgarena.results.stats import Estimate
from pgarena.results.verdicts import MIN_EFFECT

CLAIMS = {claim.id: claim for claim in load_catalogue()}


def interval(low: float, high: float) -> Interval:
    return Interval(low, (low + high) / 2, high)


@pytest.mark.parametrize(
    ("claimed", "direction", "measured", "expected"),
    [
        # "async serves at least 10x the requests/s of sync"
        ((10, 10), "higher", (8, 12), HOLDS),  # covers 10
        ((10, 10), "higher", (11, 14), HOLDS),  # beyond, in the claimed direction
        ((10, 10), "higher", (1.1, 1.3), DOES_NOT_HOLD),  # wholly below
        ((10, 10), "higher", (10, 10), HOLDS),  # touching counts as covering
        # "async answers in 12% of sync's time or less"
        ((0.12, 0.12), "lower", (0.05, 0.08), HOLDS),
        ((0.12, 0.12), "lower", (0.9, 1.05), DOES_NOT_HOLD),
        ((0.12, 0.12), "lower", (0.1, 0.2), HOLDS),
        # "about": only meeting it holds, either side fails
        ((45, 55), "about", (50.5, 51.5), HOLDS),
        ((45, 55), "about", (54, 80), HOLDS),  # any part of the range
        ((45, 55), "about", (56, 60), DOES_NOT_HOLD),
        ((45, 55), "about", (30, 44), DOES_NOT_HOLD),
        # a range with a direction: "30-50% less memory"
        ((0.5, 0.7), "lower", (0.6, 0.9), HOLDS),
        ((0.5, 0.7), "lower", (0.2, 0.3), HOLDS),  # less still
        ((0.5, 0.7), "lower", (0.75, 0.95), DOES_NOT_HOLD),
    ],
)
def test_judge(
    claimed: tuple[float, float], direction: str, measured: tuple[float, float], expected: str
) -> None:
    assert judge(*claimed, direction, interval(*measured)) == expected


def test_no_finite_interval_is_inconclusive() -> None:
    assert judge(10, 10, "higher", None) == INCONCLUSIVE
    assert judge(10, 10, "higher", Interval(2, 8, math.inf)) == INCONCLUSIVE
    assert judge(10, 10, "higher", Interval(math.nan, 8, 9)) == INCONCLUSIVE
    # one repeat: an Estimate without an interval gives no Interval at all
    assert Interval.from_estimate(Estimate.of(812.0, None, None, 1, "repeats")) is None
    assert Interval.from_estimate(Estimate.of(812.0, 10.0, 4, 5, "repeats")) is not None


def test_an_interval_that_meets_the_claim_and_no_difference_is_inconclusive() -> None:
    # 0.8x-12x meets "10x" and "1x" alike: the run cannot tell the claim from no effect
    assert judge(10, 10, "higher", interval(0.8, 12), neutral=1.0) == INCONCLUSIVE
    assert judge(10, 10, "higher", interval(1.5, 12), neutral=1.0) == HOLDS
    # ... but an "about 1" claim is a claim of no difference, and holds
    assert judge(0.9, 1.1, "about", interval(0.95, 1.2), neutral=1.0) == HOLDS


def test_a_ratio_within_the_runs_noise_band_does_not_confirm_a_claim() -> None:
    # 1.02-1.30 meets "1.2x faster" but also the 5% within which a run calls no winner
    assert judge(1.2, 1.2, "higher", interval(1.02, 1.3), 1.0, MIN_EFFECT) == INCONCLUSIVE
    assert judge(1.2, 1.2, "higher", interval(1.06, 1.3), 1.0, MIN_EFFECT) == HOLDS
    assert judge(0.8, 0.8, "lower", interval(0.7, 0.96), 1.0, MIN_EFFECT) == INCONCLUSIVE
    assert judge(0.8, 0.8, "lower", interval(0.7, 0.94), 1.0, MIN_EFFECT) == HOLDS
    # verdict() applies that band to ratio claims: "10x" is not confirmed by 1.02-12
    assert verdict(CLAIMS["seed000-rps-10x"], interval(1.02, 12)) == INCONCLUSIVE
    assert verdict(CLAIMS["seed000-rps-10x"], interval(1.06, 12)) == HOLDS


def test_a_claim_is_judged_by_its_own_value_and_direction() -> None:
    ten_x = CLAIMS["seed000-rps-10x"]  # rps_ratio, at least 10
    assert verdict(ten_x, interval(0.95, 1.08)) == DOES_NOT_HOLD
    assert verdict(ten_x, interval(0.9, 11.0)) == INCONCLUSIVE
    assert verdict(ten_x, interval(9.0, 11.0)) == HOLDS
    slower = CLAIMS["seed004-mixed-10"]  # asyncpg 19.28% slower than psycopg2: lower
    assert verdict(slower, interval(0.75, 0.79)) == HOLDS
    assert verdict(slower, interval(0.97, 1.04)) == DOES_NOT_HOLD
    timeouts = CLAIMS["seed001-table-1000-sync"]  # error_rate, at least 1% of requests fail
    assert verdict(timeouts, Interval(0.0, 0.0, 0.015)) == INCONCLUSIVE  # no failure seen
    assert verdict(timeouts, Interval(0.004, 0.008, 0.015)) == HOLDS
    assert verdict(timeouts, Interval(0.0, 0.0, 0.002)) == DOES_NOT_HOLD
    easily = CLAIMS["seed000-async-handles-1000"]  # error_rate, under 1%
    assert verdict(easily, Interval(0.0, 0.0, 0.003)) == HOLDS
    sync_500 = CLAIMS["seed001-table-10-sync"]  # latency_ms, at least 500
    assert verdict(sync_500, interval(501.0, 509.0)) == HOLDS
    assert verdict(sync_500, interval(51.0, 52.0)) == DOES_NOT_HOLD


def test_a_sweep_names_where_the_claim_holds() -> None:
    claim = CLAIMS["seed001-table-10-ratio"]  # async's latency <= 0.12 of sync's; threads swept
    measured = {
        1: interval(0.09, 0.11),  # one thread: 10 requests queue, sync takes ~500 ms
        4: interval(0.35, 0.45),
        40: interval(0.95, 1.05),
        100: interval(0.97, 1.04),
    }
    result = sweep_verdict(claim, measured)
    assert result.points == {1: HOLDS, 4: DOES_NOT_HOLD, 40: DOES_NOT_HOLD, 100: DOES_NOT_HOLD}
    assert result.held_at == (1,)
    assert result.summary == "holds only when threads 1"


def test_a_sweep_that_agrees_everywhere_or_nowhere_says_so() -> None:
    claim = CLAIMS["seed001-table-10-ratio"]
    everywhere = {1: interval(0.05, 0.1), 4: interval(0.08, 0.1)}
    nowhere = {1: interval(0.9, 1.1), 4: interval(0.9, 1.1)}
    assert sweep_verdict(claim, everywhere).summary == HOLDS
    assert sweep_verdict(claim, nowhere).summary == DOES_NOT_HOLD
    unsure = {1: interval(0.9, 1.1), 4: None}  # a value whose run failed
    assert sweep_verdict(claim, unsure).summary == INCONCLUSIVE
    mixed = {1: interval(0.05, 0.1), 4: interval(0.08, 0.2), 40: None, 100: interval(0.9, 1.1)}
    assert sweep_verdict(claim, mixed).summary == "holds when threads 1, 4; inconclusive at 40"


def test_sweeping_a_claim_that_sweeps_nothing_is_a_mistake() -> None:
    with pytest.raises(ValueError, match="sweeps nothing"):
        sweep_verdict(CLAIMS["seed000-rps-10x"], {1: interval(1, 2)})
    # ... unless the caller names the setting it swept
    result = sweep_verdict(CLAIMS["seed000-rps-10x"], {10: interval(1, 2)}, setting="concurrency")
    assert result.summary == DOES_NOT_HOLD
