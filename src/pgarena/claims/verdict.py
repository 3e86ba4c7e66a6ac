"""The verdict on a claim: does the measurement's 95% interval agree with what was claimed?

The rule (issue 12) reads a claim's value, or range, against the interval:
- holds: the interval meets the claimed value (any part of a claimed range), or lies beyond
  it in the claimed direction ("10x faster" is not refuted by 12x);
- does not hold: the interval lies wholly on the wrong side (for "about": on either side);
- inconclusive: there is no finite interval (one repeat, a ratio over a figure that may be
  zero), or the interval is so wide that it meets the claim *and* "no difference".

The last case is the one the literal rule would call "holds": a ratio measured as 0.8-12
meets "10x" but meets 1x too, so the measurement cannot tell the claim from no effect at all,
and calling that a confirmation would be publishing noise. It applies to directional claims
on figures that have a "nothing happened" value: 1 for a ratio, 0 for an error rate (no
failed request in a few hundred gives an interval of 0-1.5%, which meets "at least 1% fail"
but shows no failure at all). Other absolute figures have none, and an "about" claim whose
range contains it claims nothing happens itself.

For a ratio, "no difference" is the band the run's own verdicts use (1 +/- `MIN_EFFECT`,
5%), not the point 1: a run never calls a stack faster on a lead of 1.02-1.30, so a claim of
"1.2x faster" is not confirmed by it either. Judged against the point, such a claim held in
one run (1.01-1.30) and was inconclusive in the next (0.99-1.28), a flip that no change in
the code explained.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from pgarena.claims.catalogue import RATIO_METRICS, Claim
from pgarena.results.stats import Estimate
from pgarena.results.verdicts import MIN_EFFECT

HOLDS = "holds"
DOES_NOT_HOLD = "does not hold"
INCONCLUSIVE = "inconclusive"


@dataclass(frozen=True)
class Interval:
    """A measured figure: its point estimate and 95% interval."""

    low: float
    mean: float
    high: float

    @classmethod
    def from_estimate(cls, estimate: Estimate) -> Interval | None:
        """The estimate's interval, or None when it has none (too few values)."""
        if estimate.mean is None or estimate.ci95_low is None or estimate.ci95_high is None:
            return None
        return cls(estimate.ci95_low, estimate.mean, estimate.ci95_high)

    @property
    def finite(self) -> bool:
        return all(math.isfinite(x) for x in (self.low, self.mean, self.high))


def judge(
    claimed_low: float,
    claimed_high: float,
    direction: str,
    measured: Interval | None,
    neutral: float | None = None,
    margin: float = 0.0,
) -> str:
    """The verdict of a measurement on the claim "the figure is in [low, high]" (or beyond it,
    in `direction`). `neutral` is the figure's "no difference" value (1 for a ratio), if any,
    and `margin` the relative band around it that still counts as no difference."""
    if measured is None or not measured.finite or measured.low > measured.high:
        return INCONCLUSIVE
    below = measured.high < claimed_low  # wholly under the claim
    above = measured.low > claimed_high  # wholly over it
    if direction == "about":
        return DOES_NOT_HOLD if below or above else HOLDS
    wrong_side, right_side = (below, above) if direction == "higher" else (above, below)
    if wrong_side:
        return DOES_NOT_HOLD
    if right_side:
        return HOLDS
    if (
        neutral is not None
        and measured.low <= neutral * (1 + margin)
        and measured.high >= neutral * (1 - margin)
        and not claimed_low <= neutral <= claimed_high
    ):
        return INCONCLUSIVE  # the interval meets the claim and "no difference" alike
    return HOLDS


def verdict(claim: Claim, measured: Interval | None) -> str:
    """The verdict on `claim` of a measurement of its metric (see `judge`)."""
    if claim.metric in RATIO_METRICS:
        return judge(claim.low, claim.high, claim.direction, measured, 1.0, MIN_EFFECT)
    neutral = 0.0 if claim.metric == "error_rate" else None
    return judge(claim.low, claim.high, claim.direction, measured, neutral)


@dataclass(frozen=True)
class SweepVerdict:
    """The verdict at each swept value, and what they say together.

    `summary` is the row's verdict: "holds" or "does not hold" when every point agrees,
    "holds only when threads 1, 4" when the claim held at some values and failed at all the
    others, "holds when threads 1; inconclusive at 40" when the others are not all failures,
    and "inconclusive" when it held nowhere and failed not everywhere."""

    setting: str
    points: Mapping[int, str]  # swept value -> verdict, in sweep order
    summary: str

    @property
    def held_at(self) -> tuple[int, ...]:
        return tuple(value for value, v in self.points.items() if v == HOLDS)


def sweep_verdict(
    claim: Claim, measured: Mapping[int, Interval | None], setting: str | None = None
) -> SweepVerdict:
    """The verdict of a sweep: `measured` maps each swept value (of the claim's sweep, or of
    `setting`) to the figure measured there; a value that did not run maps to None."""
    if setting is None:
        if claim.experiment.sweep is None:
            raise ValueError(f"claim {claim.id} sweeps nothing")
        setting = claim.experiment.sweep[0]
    if not measured:
        raise ValueError(f"claim {claim.id}: no swept value was measured")
    points = {value: verdict(claim, interval) for value, interval in measured.items()}
    return SweepVerdict(setting, points, _summary(setting, points))


def _summary(setting: str, points: Mapping[int, str]) -> str:
    held = [value for value, v in points.items() if v == HOLDS]
    failed = [value for value, v in points.items() if v == DOES_NOT_HOLD]
    unsure = [value for value, v in points.items() if v == INCONCLUSIVE]
    if len(held) == len(points):
        return HOLDS
    if len(failed) == len(points):
        return DOES_NOT_HOLD
    if not held:
        return INCONCLUSIVE
    where = f"{setting} {_values(held)}"
    if not unsure:
        return f"holds only when {where}"
    return f"holds when {where}; inconclusive at {_values(unsure)}"


def _values(values: list[int]) -> str:
    return ", ".join(str(value) for value in values)
