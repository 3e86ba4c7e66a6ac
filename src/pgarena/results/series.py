"""What one cell's time series says: where its warmup ends, and how well its mean is known.

A cell records a figure per short interval (for example requests completed per 0.25 s). Those
values are not independent (a slow second is followed by another: a vacuum, a checkpoint, a
noisy neighbour), so stdev / sqrt(n) would give an interval far too narrow. Batch means
averages consecutive values into batches long enough to be nearly independent and takes the
interval from the batch means; MSER-5 finds where the start-up transient ends.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from pgarena.results.stats import Estimate

# Below this many batches of 5, MSER-5 has too little to go on (20 points: 5 s at 0.25 s).
MSER_MIN_BATCHES = 4


@dataclass(frozen=True)
class BatchMeans:
    """A series' mean with its batch-means interval, and how the batches were chosen.

    `dropped` leading points were left out so that every batch has `batch_size` points;
    `lag1` is the lag-1 autocorrelation of the batch means (None with fewer than 3 batches);
    `independent` says whether it passed the test in `batch_means`.
    """

    estimate: Estimate
    batch_size: int
    batches: int
    dropped: int
    lag1: float | None
    independent: bool

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape used in the result file."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BatchMeans:
        """The inverse of `to_dict`."""
        fields = {name: data.get(name) for name in cls.__dataclass_fields__}
        return cls(**{**fields, "estimate": Estimate.from_dict(data["estimate"])})


@dataclass(frozen=True)
class Warmup:
    """Where a series' start-up transient ends (MSER-5).

    `truncation` is the number of leading points to discard. `steady` is False when the
    series had not settled within its first half, None when it is too short to judge.
    """

    truncation: int
    steady: bool | None

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape used in the result file."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Warmup:
        """The inverse of `to_dict`."""
        return cls(truncation=int(data["truncation"]), steady=data.get("steady"))


def _lag1(values: np.ndarray) -> float | None:
    """Sample lag-1 autocorrelation (Box & Jenkins' r1); 0 for a constant series."""
    if len(values) < 3:
        return None
    centred = values - values.mean()
    denominator = float(centred @ centred)
    if denominator == 0:
        return 0.0
    return float(centred[:-1] @ centred[1:]) / denominator


def batch_means(
    series: Sequence[float], min_batches: int = 10, max_lag1: float = 0.2
) -> BatchMeans:
    """The mean of a stationary series and its 95% interval by the method of batch means.

    The batch size b doubles from 1 until the lag-1 autocorrelation r1 of the k batch means
    is negligible: |r1| < max(max_lag1, 2 / sqrt(k)). 2 / sqrt(k) is the approximate 95%
    bound of r1 for white noise (Box & Jenkins), the test that is possible with few batches;
    0.2 is the practical bound the simulation literature uses (Law & Kelton, "Simulation
    Modeling and Analysis"), so that with many batches a correlation too small to matter
    does not force ever larger batches. Doubling stops before fewer than `min_batches`
    batches remain; if no size passed, the largest is used and `independent` is False (the
    interval is then too narrow, and the cell says so). The default of 10 batches follows
    Schmeiser (1982, "Batching to obtain independent normal observations": 10 to 30
    batches); it also gives the r1 test some power: with 5 batches 2 / sqrt(5) = 0.89 lets
    even a straight line (r1 = 0.5 for 6 batch means) pass as independent.

    The n mod b leading points are dropped, so every batch has b points: the start of a
    series is where any leftover warmup is, the end is the best-settled part. The estimate's
    mean is the mean of the kept points (the mean of the batch means), its se is
    stdev(batch means) / sqrt(k) with k-1 df.
    """
    values = np.asarray(series, dtype=float)
    n = len(values)
    if n < 2:
        estimate = Estimate.from_values(values.tolist())
        return BatchMeans(estimate, 1, n, 0, None, False)

    def batched(size: int) -> tuple[np.ndarray, int]:
        count = n // size
        dropped = n - count * size
        return values[dropped:].reshape(count, size).mean(axis=1), dropped

    size, chosen = 1, None
    independent = False
    while n // size >= min(min_batches, n):
        means, dropped = batched(size)
        r1 = _lag1(means)
        chosen = (size, means, dropped, r1)
        if r1 is not None and abs(r1) < max(max_lag1, 2 / math.sqrt(len(means))):
            independent = True
            break
        size *= 2
    assert chosen is not None
    size, means, dropped, r1 = chosen
    k = len(means)
    se = float(means.std(ddof=1)) / math.sqrt(k)
    estimate = Estimate.of(float(means.mean()), se, k - 1, n - dropped, "batch means")
    return BatchMeans(estimate, size, k, dropped, r1, independent)


def mser5(series: Sequence[float]) -> Warmup:
    """The end of the start-up transient by MSER-5 (White 1997; Franklin & White 2008).

    The series is averaged in batches of 5 (a trailing incomplete batch is ignored), Y_1..Y_m.
    For each candidate d of deleted batches in the first half (0 <= d <= m // 2),
    MSER(d) = sum_{i>d} (Y_i - mean(Y_{>d}))^2 / (m - d)^2, the squared standard error of the
    truncated mean; the truncation that minimises it is kept, as 5 d points. If the minimum
    is at the end of that range, the series was still moving through its first half (a
    trend, or a transient longer than half the cell): `steady` is False and the truncation
    is only a lower bound. With fewer than 4 batches nothing is judged (`steady` None).
    """
    values = np.asarray(series, dtype=float)
    m = len(values) // 5
    if m < MSER_MIN_BATCHES:
        return Warmup(truncation=0, steady=None)
    batches = values[: m * 5].reshape(m, 5).mean(axis=1)
    last = m // 2
    scores = []
    for d in range(last + 1):
        tail = batches[d:]
        scores.append(float(((tail - tail.mean()) ** 2).sum()) / (m - d) ** 2)
    best = int(np.argmin(scores))
    return Warmup(truncation=5 * best, steady=best < last)
