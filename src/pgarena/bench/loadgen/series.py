"""A job's time series: the generator's counters cut into short intervals.

Nothing here runs per request. While the job runs, the client engine only writes down its
counters at each interval boundary (an `IntervalMark`: a few integers, four times a second);
the latencies themselves are the one list every answer already goes into. Once the window
has closed, `build_series` turns the marks into points, each with the histogram of its own
slice of that list, and `merge_series` adds up the points of several generator processes.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from hdrh.histogram import HdrHistogram

from pgarena.bench.loadgen.job import SeriesPoint
from pgarena.results.histograms import (
    decode_histogram,
    encode_histogram,
    histogram_from_latencies,
    tail_latency_ms,
)

PHASES = ("warmup", "measure")


@dataclass(frozen=True)
class IntervalMark:
    """The generator's counters when one interval began (the last mark ends the series)."""

    at: float  # time.perf_counter()
    phase: str  # of the interval that begins here: "warmup", "measure", or "done"
    answered: int  # correct answers so far, both phases: an index into the latency list
    errors: int  # failed requests so far, both phases
    cpu_s: float  # time.process_time()


class SeriesRecorder:
    """Writes down the counters at each interval boundary of one job, on its event loop.

    `begin_phase` closes the running interval and starts a phase; within a phase a timer
    marks a boundary every `interval_s`, except one that would fall within half an interval
    of the phase's planned end: the phase change closes that interval, so no sliver of an
    interval is left at the end of a phase.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        interval_s: float,
        counters: Callable[[], tuple[int, int]],  # (correct answers, failed requests)
    ) -> None:
        self.loop = loop
        self.interval_s = interval_s
        self.counters = counters
        self.marks: list[IntervalMark] = []
        self.phase = "warmup"
        self.phase_end: float | None = None
        self.next_boundary = 0.0
        self.timer: asyncio.TimerHandle | None = None

    def begin_phase(self, phase: str, planned_s: float | None) -> None:
        """Start `phase`, planned to last `planned_s` (None: until `end`)."""
        self.phase = phase
        self._mark()
        self.phase_end = None if planned_s is None else self.next_boundary + planned_s
        self._schedule()

    def end(self) -> None:
        """Close the last interval."""
        self.phase = "done"
        self._mark()

    def points(self, latencies_us: np.ndarray, started: float) -> tuple[SeriesPoint, ...]:
        """The series, once the job has ended; `started` is the perf_counter time of t=0."""
        return build_series(self.marks, latencies_us, started)

    def _mark(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        now = time.perf_counter()
        answered, errors = self.counters()
        self.marks.append(IntervalMark(now, self.phase, answered, errors, time.process_time()))
        self.next_boundary = now

    def _schedule(self) -> None:
        self.next_boundary += self.interval_s
        if self.phase_end is not None and self.next_boundary > self.phase_end - self.interval_s / 2:
            return
        delay = max(0.0, self.next_boundary - time.perf_counter())
        self.timer = self.loop.call_later(delay, self._on_timer)

    def _on_timer(self) -> None:
        self.timer = None
        if self.phase == "done":
            return
        boundary = self.next_boundary
        self._mark()
        self.next_boundary = boundary  # keep to the grid, however late the timer fired
        self._schedule()


def series_point(
    index: int,
    t: float,
    duration_s: float,
    phase: str,
    counts: tuple[int, int, float | None],  # ok, errors, generator CPU seconds
    histogram: HdrHistogram,
) -> SeriesPoint:
    """One interval of a cell's series, its latency figures from `histogram` (an interval
    without answers keeps no histogram). Shared by pgarena's generator and the Locust
    import, whose generator CPU is not known per interval (None)."""
    tail = tail_latency_ms(histogram)
    ok, errors, cpu_s = counts
    return SeriesPoint(
        index=index,
        t=t,
        duration_s=duration_s,
        phase=phase,
        ok=ok,
        errors=errors,
        p50_ms=tail["p50"],
        p90_ms=tail["p90"],
        p99_ms=tail["p99"],
        max_ms=tail["max"],
        generator_cpu_s=cpu_s,
        histogram=encode_histogram(histogram) if ok else "",
    )


def build_series(
    marks: Sequence[IntervalMark], latencies_us: Sequence[int] | np.ndarray, started: float
) -> tuple[SeriesPoint, ...]:
    """One point per pair of consecutive marks; `started` is the perf_counter time of t=0.

    An interval of no length and no answer (a phase that ended as it began) is left out.
    """
    latencies = np.asarray(latencies_us, dtype=np.int64)
    points: list[SeriesPoint] = []
    for begin, end in itertools.pairwise(marks):
        ok = end.answered - begin.answered
        errors = end.errors - begin.errors
        duration = end.at - begin.at
        if duration <= 0 and ok == 0 and errors == 0:
            continue
        histogram = histogram_from_latencies(latencies[begin.answered : end.answered])
        points.append(
            series_point(
                len(points),
                begin.at - started,
                duration,
                begin.phase,
                (ok, errors, end.cpu_s - begin.cpu_s),
                histogram,
            )
        )
    return tuple(points)


def merge_series(
    parts: Sequence[tuple[float, Sequence[SeriesPoint]]],
) -> tuple[float, list[SeriesPoint]]:
    """Add up the series of processes that shared a job: (started_monotonic, points) each.

    Points are matched by phase and position within the phase (the n-th measure interval of
    one process with the n-th of another), so a process whose warmup had one interval more
    or less cannot shift the measured ones. Counts and CPU are summed, histograms added; a
    merged point starts at the earliest of its parts, on the clock of the earliest process.
    """
    started = min(start for start, _ in parts)
    if len(parts) == 1:
        return started, list(parts[0][1])
    groups: dict[tuple[int, int], list[tuple[float, SeriesPoint]]] = {}
    for start, points in parts:
        positions = dict.fromkeys(PHASES, 0)
        for point in points:
            key = (PHASES.index(point.phase), positions[point.phase])
            positions[point.phase] += 1
            groups.setdefault(key, []).append((start - started, point))
    merged = []
    for key in sorted(groups):
        group = groups[key]
        histogram = decode_histogram(group[0][1].histogram)
        for _, point in group[1:]:
            histogram.add(decode_histogram(point.histogram))
        merged.append(
            series_point(
                len(merged),
                min(offset + point.t for offset, point in group),
                max(point.duration_s for _, point in group),
                PHASES[key[0]],
                (
                    sum(point.ok for _, point in group),
                    sum(point.errors for _, point in group),
                    sum(point.generator_cpu_s or 0.0 for _, point in group),
                ),
                histogram,
            )
        )
    return started, merged
