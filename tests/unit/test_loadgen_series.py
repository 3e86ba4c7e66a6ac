"""A job's time series: interval marks into points, and the points of two processes merged."""

from __future__ import annotations

import pytest

from pgarena.bench.loadgen import SeriesPoint
from pgarena.bench.loadgen.series import IntervalMark, build_series, merge_series
from pgarena.results.histograms import (
    decode_histogram,
    histogram_from_latencies,
    latency_summary_ms,
    tail_latency_ms,
)

# Process A: answers of 1 ms in the warmup, then 2, 3 and 4 ms in three measured intervals.
A_LATENCIES = [1000] * 10 + [2000] * 20 + [3000] * 30 + [4000] * 40
A_MARKS = [
    IntervalMark(100.00, "warmup", answered=0, errors=0, cpu_s=5.0),
    IntervalMark(100.25, "measure", answered=10, errors=1, cpu_s=5.1),
    IntervalMark(100.50, "measure", answered=30, errors=1, cpu_s=5.2),
    IntervalMark(100.75, "measure", answered=60, errors=3, cpu_s=5.3),
    IntervalMark(101.00, "done", answered=100, errors=3, cpu_s=5.4),
]
# Process B started 10 ms later, with two short warmup intervals and 10x slower answers.
B_LATENCIES = [10_000] * 4 + [20_000] * 5 + [30_000] * 6 + [40_000] * 7
B_MARKS = [
    IntervalMark(7.00, "warmup", answered=0, errors=0, cpu_s=1.0),
    IntervalMark(7.10, "warmup", answered=2, errors=0, cpu_s=1.05),
    IntervalMark(7.24, "measure", answered=4, errors=0, cpu_s=1.1),
    IntervalMark(7.50, "measure", answered=9, errors=2, cpu_s=1.2),
    IntervalMark(7.74, "measure", answered=15, errors=2, cpu_s=1.3),
    IntervalMark(8.00, "done", answered=22, errors=2, cpu_s=1.4),
]


def test_each_pair_of_marks_is_one_point_with_its_own_latencies() -> None:
    points = build_series(A_MARKS, A_LATENCIES, started=100.0)

    assert [point.phase for point in points] == ["warmup", "measure", "measure", "measure"]
    assert [point.index for point in points] == [0, 1, 2, 3]
    assert [point.t for point in points] == pytest.approx([0, 0.25, 0.5, 0.75])
    assert [point.duration_s for point in points] == pytest.approx([0.25] * 4)
    assert [point.ok for point in points] == [10, 20, 30, 40]
    assert [point.errors for point in points] == [1, 0, 2, 0]
    assert [point.generator_cpu_s for point in points] == pytest.approx([0.1] * 4)
    assert [point.p99_ms for point in points] == pytest.approx([1, 2, 3, 4], rel=1e-3)
    assert [decode_histogram(p.histogram).get_total_count() for p in points] == [10, 20, 30, 40]
    assert points[2].rps == pytest.approx(120)


def test_an_interval_of_no_length_and_no_answer_is_left_out() -> None:
    marks = [
        IntervalMark(0.0, "warmup", answered=0, errors=0, cpu_s=0.0),
        IntervalMark(0.0, "measure", answered=0, errors=0, cpu_s=0.0),
        IntervalMark(0.5, "done", answered=3, errors=0, cpu_s=0.1),
    ]

    (point,) = build_series(marks, [500, 600, 700], started=0.0)

    assert (point.index, point.phase, point.ok, point.p50_ms) == (0, "measure", 3, 0.6)
    assert point.p90_ms == point.p99_ms == point.max_ms == pytest.approx(0.7, rel=1e-3)


def test_two_processes_merge_interval_by_interval() -> None:
    a = build_series(A_MARKS, A_LATENCIES, started=100.0)
    b = build_series(B_MARKS, B_LATENCIES, started=7.0)

    # On the machine's monotonic clock, B started 10 ms after A.
    started, merged = merge_series([(1000.01, b), (1000.0, a)])

    assert started == 1000.0
    # A's one warmup interval meets B's first; the measured ones pair up in order.
    assert [point.phase for point in merged] == [
        "warmup",
        "warmup",
        "measure",
        "measure",
        "measure",
    ]
    assert [point.index for point in merged] == [0, 1, 2, 3, 4]
    assert [point.t for point in merged] == pytest.approx([0, 0.11, 0.25, 0.5, 0.75])
    assert [point.ok for point in merged] == [12, 2, 25, 36, 47]
    assert [point.errors for point in merged] == [1, 0, 2, 2, 0]
    assert [point.generator_cpu_s for point in merged] == pytest.approx([0.15, 0.05, 0.2, 0.2, 0.2])
    assert [point.duration_s for point in merged] == pytest.approx([0.25, 0.14, 0.26, 0.25, 0.26])
    # Histograms are added, so each merged percentile is that of both processes' answers.
    last = merged[-1]
    both = histogram_from_latencies([4000] * 40 + [40_000] * 7)
    assert decode_histogram(last.histogram).get_total_count() == 47
    assert (last.p50_ms, last.p90_ms, last.p99_ms, last.max_ms) == (
        tail_latency_ms(both)["p50"],
        tail_latency_ms(both)["p90"],
        tail_latency_ms(both)["p99"],
        tail_latency_ms(both)["max"],
    )
    assert last.p50_ms == pytest.approx(4, rel=1e-3)
    assert last.p99_ms == pytest.approx(40, rel=1e-3)
    measured_total = sum(point.ok for point in merged if point.phase == "measure")
    assert measured_total == 90 + 18


def test_one_process_series_is_kept_as_it_is() -> None:
    a = build_series(A_MARKS, A_LATENCIES, started=100.0)

    assert merge_series([(5.0, a)]) == (5.0, list(a))


def test_a_point_has_the_json_shape_the_result_file_stores() -> None:
    point = build_series(A_MARKS, A_LATENCIES, started=100.0)[1]

    assert point.to_dict() == {
        "t": point.t,
        "duration_s": point.duration_s,
        "phase": "measure",
        "ok": 20,
        "errors": 0,
        "p50_ms": point.p50_ms,
        "p90_ms": point.p90_ms,
        "p99_ms": point.p99_ms,
        "max_ms": point.max_ms,
        "generator_cpu_s": point.generator_cpu_s,
        "histogram": point.histogram,
    }
    assert isinstance(point, SeriesPoint)


def test_the_quick_tail_summary_agrees_with_the_full_one() -> None:
    histogram = histogram_from_latencies(list(range(100, 200_000, 37)))

    full = latency_summary_ms(histogram)

    assert tail_latency_ms(histogram) == {key: full[key] for key in ("p50", "p90", "p99", "max")}
    assert tail_latency_ms(histogram_from_latencies([])) == dict.fromkeys(
        ("p50", "p90", "p99", "max")
    )
