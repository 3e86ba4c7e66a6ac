"""What the Locust master and workers agree on: class names, error kinds, and the answers and
latency histograms per interval that each worker records.

Locust's own statistics keep counts and one latency distribution per request name, and a
history of rolling 10-second figures; a pgarena cell needs its time series (answers, errors
and a latency histogram every `interval_s`, a quarter second by default), which MSER-5 and
batch means read to find the steady state. Each worker records
them from Locust's `request` event into HDR histograms (pgarena's range and precision),
sends them with every report to the master and starts afresh, as Locust does with its own.
"""

from __future__ import annotations

import re
import time
from typing import Any

from pgarena.results.histograms import decode_histogram, encode_histogram, new_histogram

INTERVAL_S = 0.25

# A failure's message is its error kind; Locust stores it as the exception's repr.
KIND = re.compile(r"^\w+\('(?P<kind>[a-z0-9_]+)'\)$")


def class_name(workload: str) -> str:
    """The user class of a workload: 'queries-5' -> 'Workload_queries_5'. Master and
    workers build their classes from the same names, so they agree without sending code."""
    return "Workload_" + re.sub(r"\W", "_", workload)


def error_kind(locust_error: str) -> str:
    """pgarena's error kind from Locust's text of a failure (`CatchResponseError('body')`);
    a transport error (refused, reset, timed out) is named by its exception."""
    match = KIND.match(locust_error)
    if match:
        return match.group("kind")
    name = locust_error.split("(", 1)[0].strip().lower()
    if "timeout" in name:
        return "timeout"
    if "refused" in name:
        return "connect"
    return "disconnect"


class Seconds:
    """Answers per interval since the last report: {interval: [ok, errors, histogram]},
    interval `k` being the wall-clock time [k * interval_s, (k + 1) * interval_s)."""

    def __init__(self, interval_s: float = INTERVAL_S) -> None:
        self.interval_s = interval_s
        self.by_second: dict[int, list[Any]] = {}

    def record(self, ok: bool, response_time_ms: float) -> None:
        second = int(time.time() / self.interval_s)
        entry = self.by_second.get(second)
        if entry is None:
            entry = self.by_second[second] = [0, 0, new_histogram()]
        if ok:
            entry[0] += 1
            entry[2].record_value(max(1, round(response_time_ms * 1000)))
        else:
            entry[1] += 1

    def report(self) -> dict[str, list[Any]]:
        """What to send to the master (JSON-able), and start afresh."""
        sent = {str(s): [e[0], e[1], encode_histogram(e[2])] for s, e in self.by_second.items()}
        self.by_second = {}
        return sent


def merge(into: dict[int, list[Any]], report: dict[str, list[Any]]) -> None:
    """Add one worker's report to a phase's seconds ([ok, errors, HdrHistogram])."""
    for second, (ok, errors, encoded) in report.items():
        entry = into.setdefault(int(second), [0, 0, new_histogram()])
        entry[0] += ok
        entry[1] += errors
        if ok:
            entry[2].add(decode_histogram(encoded))


def serialize(seconds: dict[int, list[Any]]) -> dict[str, list[Any]]:
    """A phase's seconds as JSON."""
    return {str(s): [e[0], e[1], encode_histogram(e[2])] for s, e in sorted(seconds.items())}
