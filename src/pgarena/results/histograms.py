"""Latency histograms: HdrHistogram with pgarena's range and precision, in microseconds.

The load generator records into them, the result file stores them encoded (compressed base64,
mergeable), and reports decode and merge them; all three use these helpers so a histogram
written by one is read the same way by the others.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from hdrh.histogram import HdrHistogram

# Latencies in microseconds, from 1 us to 10 minutes, 3 significant digits.
HISTOGRAM_LOWEST_US = 1
HISTOGRAM_HIGHEST_US = 600_000_000
HISTOGRAM_DIGITS = 3


def new_histogram() -> HdrHistogram:
    """An empty latency histogram with pgarena's range and precision."""
    return HdrHistogram(HISTOGRAM_LOWEST_US, HISTOGRAM_HIGHEST_US, HISTOGRAM_DIGITS)


def decode_histogram(encoded: str) -> HdrHistogram:
    """A histogram from `LoadResult.encoded_histogram()` / a result file's `histogram`."""
    histogram = new_histogram()
    if encoded:
        histogram.decode_and_add(encoded.encode("ascii"))
    return histogram


def encode_histogram(histogram: HdrHistogram) -> str:
    """The compressed base64 form that `decode_histogram` reads back."""
    return histogram.encode().decode("ascii")


def tail_latency_ms(histogram: HdrHistogram) -> dict[str, float | None]:
    """p50/p90/p99/max in milliseconds, the same values as `latency_summary_ms`, cheaply.

    One pass for the three percentiles and no mean (hdrh's mean walks every bucket, ~30 ms):
    a time series asks this for hundreds of short intervals.
    """
    if histogram.get_total_count() == 0:
        return dict.fromkeys(("p50", "p90", "p99", "max"))
    values = histogram.get_percentile_to_value_dict([50, 90, 99])
    return {
        "p50": values[50] / 1000,
        "p90": values[90] / 1000,
        "p99": values[99] / 1000,
        "max": histogram.get_max_value() / 1000,
    }


def latency_summary_ms(histogram: HdrHistogram) -> dict[str, float | None]:
    """The percentiles pgarena reports, in milliseconds."""
    if histogram.get_total_count() == 0:
        return dict.fromkeys(("p50", "p90", "p99", "p99_9", "max", "mean"))
    return {
        "p50": histogram.get_value_at_percentile(50) / 1000,
        "p90": histogram.get_value_at_percentile(90) / 1000,
        "p99": histogram.get_value_at_percentile(99) / 1000,
        "p99_9": histogram.get_value_at_percentile(99.9) / 1000,
        "max": histogram.get_max_value() / 1000,
        "mean": histogram.get_mean_value() / 1000,
    }


def histogram_from_latencies(latencies_us: Sequence[int] | np.ndarray) -> HdrHistogram:
    """Record many latencies at once: bucket with numpy, then one record per distinct value.

    Recording values one by one costs microseconds each in pure Python; doing it here, after
    the measurement window has closed, keeps that work off the measured path.
    """
    histogram = new_histogram()
    if len(latencies_us) == 0:
        return histogram
    values, counts = np.unique(np.asarray(latencies_us, dtype=np.int64), return_counts=True)
    values = np.clip(values, HISTOGRAM_LOWEST_US, HISTOGRAM_HIGHEST_US)
    for value, count in zip(values.tolist(), counts.tolist(), strict=True):
        histogram.record_value(value, count)
    return histogram
