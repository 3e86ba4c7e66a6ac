"""What the Locust master and workers exchange, and how `pgarena locust` reads it back into
a cell: no Locust, no server (Locust itself would patch this process for gevent)."""

from __future__ import annotations

import sys

import pytest

from pgarena.bench.locust.protocol import (
    INTERVAL_S,
    Seconds,
    class_name,
    error_kind,
    merge,
    serialize,
)
from pgarena.bench.locust.run import load_result
from pgarena.results.histograms import decode_histogram


def test_the_pytest_process_never_imports_locust() -> None:
    assert "locust" not in sys.modules and "gevent.monkey" not in sys.modules


@pytest.mark.parametrize(
    "text, kind",
    [
        ("CatchResponseError('status_404')", "status_404"),
        ("CatchResponseError('body')", "body"),
        ("CatchResponseError('setup')", "setup"),
        ("ConnectionRefusedError(111, 'Connection refused')", "connect"),
        ("ConnectionTimeout()", "timeout"),
        ("ConnectionResetError(104, 'Connection reset by peer')", "disconnect"),
    ],
)
def test_error_kinds_are_pgarenas_whatever_locust_wraps_them_in(text: str, kind: str) -> None:
    assert error_kind(text) == kind


def test_class_names_are_identifiers_derived_from_the_workload() -> None:
    assert class_name("queries-5") == "Workload_queries_5"
    assert class_name("queries-5").isidentifier()


def test_two_workers_reports_add_up_per_interval() -> None:
    first, second = Seconds(), Seconds()
    for latency_ms in (1.0, 2.0, 3.0):
        first.record(True, latency_ms)
    second.record(True, 10.0)
    second.record(False, 50.0)
    phase: dict[int, list] = {}
    merge(phase, first.report())
    merge(phase, second.report())
    assert first.report() == {}  # a report starts the worker afresh
    assert sum(entry[0] for entry in phase.values()) == 4
    assert sum(entry[1] for entry in phase.values()) == 1
    counts = sum(entry[2].get_total_count() for entry in phase.values())
    assert counts == 4  # failures have no latency in the histogram


def _phase(seconds: Seconds, requests: int, failures: int, by_worker: dict) -> dict:
    merged: dict[int, list] = {}
    merge(merged, seconds.report())
    return {
        "requests": requests,
        "failures": failures,
        "by_worker": by_worker,
        "errors": {"status_500": failures} if failures else {},
        "seconds": serialize(merged),
    }


def test_a_master_result_becomes_a_load_result_with_its_window_and_series() -> None:
    warmup, measure = Seconds(), Seconds()
    warmup.record(True, 5.0)
    for _ in range(9):
        measure.record(True, 2.0)
    measure.record(False, 1.0)
    key = next(iter(measure.by_second))
    start = key * INTERVAL_S
    result = {
        "started": start - 1.0,
        "measure_started": start,
        "measure_ended": start + 2.0,
        "workers": ["a", "b"],
        "warmup": _phase(warmup, 1, 0, {"a": 1}),
        "measure": _phase(measure, 10, 1, {"a": 6, "b": 4}),
    }
    load = load_result(result, generator_cpu_s=0.5)
    assert (load.requests, load.ok, load.errors["status_500"]) == (10, 9, 1)
    assert load.duration_s == pytest.approx(2.0)
    assert load.warmup_duration_s == pytest.approx(1.0)
    assert load.warmup_requests == 1 and load.processes == 2
    assert load.histogram.get_total_count() == 9
    assert load.latency_ms()["p50"] == pytest.approx(2.0, rel=0.01)
    measured = [point for point in load.series if point.phase == "measure"]
    assert sum(point.ok for point in measured) == 9
    assert measured[0].t == pytest.approx(1.0)  # from the start of the warmup
    assert sum(decode_histogram(p.histogram).get_total_count() for p in measured) == 9


def test_answers_stamped_outside_the_window_join_its_edge_intervals() -> None:
    """Workers' clocks and the master's are read milliseconds apart: an answer stamped just
    after the window's end is in its last interval, never a sliver of a rate of its own."""
    histogram = Seconds()
    histogram.record(True, 1.0)
    encoded = next(iter(histogram.report().values()))[2]
    start = 4000 * INTERVAL_S  # the window: 2.1 s from an interval's start
    keys = range(4000, 4010)  # 4009 starts 0.15 s after the window's end
    measure = {str(k): [10, 0, encoded] for k in keys}
    result = {
        "started": start - 1.0,
        "measure_started": start,
        "measure_ended": start + 2.1,
        "workers": ["a"],
        "warmup": {"requests": 0, "failures": 0, "by_worker": {}, "errors": {}, "seconds": {}},
        "measure": {
            "requests": 100,
            "failures": 0,
            "by_worker": {"a": 100},
            "errors": {},
            "seconds": measure,
        },
    }
    points = load_result(result, None).series
    assert sum(point.ok for point in points) == 100
    assert min(point.duration_s for point in points) >= INTERVAL_S / 2
    assert points[-1].t + points[-1].duration_s == pytest.approx(3.1)
    assert sum(point.duration_s for point in points) == pytest.approx(2.1)
