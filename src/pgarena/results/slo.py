"""Service-level objectives as k6 users write them: `p99<100ms`, `errors<1%`, `rps>500`.

An SLO is checked against every cell it applies to at the end of a run; one failure makes
`pgarena run` exit 1, so CI can hold a service to its latency, error and throughput budgets.

Grammar: `[STACK:WORKLOAD:]METRIC OP VALUE[UNIT]`, with OP one of < <= > >=.
- latency, in us, ms or s (a unit is required; stored in ms): p50, p90, p99, p99.9, max,
  mean (k6's spellings p(99), avg and med work too);
- errors, the share of requests that failed: `errors<1%` (a percentage), or `errors<=0`.
  Any other number without % is refused: "errors<5" could mean 5 requests or 5%;
- rps (requests per second) and cpu_efficiency (requests per server CPU-second), no unit.
The optional scope limits the SLO to a stack and/or a workload; empty or * means any:
`async-raw:db:p99<20ms`, `sync::errors<1%`, `:fortunes:rps>100`, `*:db:p99<50ms`.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from pgarena.errors import UserError
from pgarena.results.histograms import decode_histogram, latency_summary_ms, new_histogram
from pgarena.results.model import Run, Summary

EXAMPLE = "'p99<100ms', 'errors<1%', 'rps>500' or 'async-raw:db:p99<20ms'"

# The name a user writes -> the key of the figure it is checked against.
LATENCY_METRICS = {
    "p50": "p50",
    "med": "p50",
    "p90": "p90",
    "p99": "p99",
    "p99.9": "p99_9",
    "max": "max",
    "mean": "mean",
    "avg": "mean",
}
PLAIN_METRICS = {"rps": "rps", "cpu_efficiency": "cpu_efficiency"}
LATENCY_UNITS_MS = {"us": 0.001, "µs": 0.001, "ms": 1.0, "s": 1000.0}
OPERATORS: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}

_NAME = r"[A-Za-z0-9_.-]*|\*"
_PATTERN = re.compile(
    rf"^(?:(?P<stack>{_NAME}):(?P<workload>{_NAME}):)?\s*"
    r"(?P<metric>[a-z_]+[0-9.]*|p\([0-9.]+\))\s*"
    r"(?P<op><=|>=|<|>)\s*"
    r"(?P<value>(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)\s*"
    r"(?P<unit>[a-zµ%]*)$"
)


@dataclass(frozen=True)
class SloResult:
    """One SLO checked on one cell: what was observed and whether it passed.

    `observed` is in the figure's unit (ms, a fraction of requests, requests/s); `reason`
    says why a check failed without a comparison ("not measured").
    """

    slo: str
    stack: str | None
    workload: str | None
    concurrency: int | None
    metric: str
    observed: float | None
    threshold: float
    passed: bool
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape used in the result file."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SloResult:
        """The inverse of `to_dict`."""
        return cls(**{name: data.get(name) for name in cls.__dataclass_fields__})


@dataclass(frozen=True)
class Slo:
    """One parsed objective. `text` is the user's spelling, kept for display; `metric` is
    the figure key (p50, p90, p99, p99_9, max, mean, error_rate, rps, cpu_efficiency) and
    `threshold` is in that figure's unit (ms for latency, a fraction for error_rate)."""

    text: str
    metric: str
    op: str
    threshold: float
    stack: str | None = None
    workload: str | None = None

    def applies_to(self, stack: str, workload: str) -> bool:
        """Whether this SLO is checked on cells of `stack` running `workload`."""
        return self.stack in (None, stack) and self.workload in (None, workload)

    def evaluate(
        self,
        figures: Mapping[str, float | None],
        *,
        stack: str | None = None,
        workload: str | None = None,
        concurrency: int | None = None,
    ) -> SloResult:
        """Check the SLO on one cell's figures (keyed as `metric`). A figure that is
        missing or not a number fails: an objective nobody measured is not met."""
        observed = figures.get(self.metric)
        if observed is not None and math.isnan(observed):
            observed = None
        passed = observed is not None and OPERATORS[self.op](observed, self.threshold)
        return SloResult(
            slo=self.text,
            stack=stack,
            workload=workload,
            concurrency=concurrency,
            metric=self.metric,
            observed=observed,
            threshold=self.threshold,
            passed=passed,
            reason="not measured" if observed is None else None,
        )

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape used in the result file."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Slo:
        """The inverse of `to_dict`."""
        return cls(**{name: data.get(name) for name in cls.__dataclass_fields__})


def _refuse(text: str, reason: str) -> UserError:
    return UserError(f"invalid SLO {text!r}: {reason} (examples: {EXAMPLE})")


def parse_slo(text: str) -> Slo:
    """Parse one `--slo` value; a malformed one raises `UserError` naming it."""
    spelled = text.strip()
    match = _PATTERN.match(spelled)
    if match is None:
        if spelled.count(":") not in (0, 2):
            raise _refuse(text, "the scope is STACK:WORKLOAD: (either may be empty or *)")
        raise _refuse(text, "expected METRIC<VALUE, with < <= > or >=")
    name = re.sub(r"^p\((.*)\)$", r"p\1", match["metric"])
    value, unit, op = float(match["value"]), match["unit"], match["op"]
    if not math.isfinite(value):
        raise _refuse(text, "the value must be a finite number")
    if name in LATENCY_METRICS:
        if unit not in LATENCY_UNITS_MS:
            raise _refuse(text, f"{name} needs a unit: us, ms or s")
        metric, threshold = LATENCY_METRICS[name], value * LATENCY_UNITS_MS[unit]
    elif name in ("errors", "error_rate"):
        if unit == "%":
            threshold = value / 100
        elif unit == "" and value == 0:
            threshold = 0.0
        else:
            raise _refuse(text, "errors are a share of requests: write a percentage like 1%")
        if threshold > 1:
            raise _refuse(text, "errors cannot exceed 100%")
        metric = "error_rate"
    elif name in PLAIN_METRICS:
        if unit:
            raise _refuse(text, f"{name} takes a plain number, without {unit!r}")
        metric, threshold = PLAIN_METRICS[name], value
    else:
        known = ", ".join([*LATENCY_METRICS, "errors", *PLAIN_METRICS])
        raise _refuse(text, f"unknown metric {name!r}; known: {known}")

    def scope(part: str | None) -> str | None:
        return None if part in (None, "", "*") else part

    return Slo(spelled, metric, op, threshold, scope(match["stack"]), scope(match["workload"]))


def run_figures(run: Run, summary: Summary) -> dict[str, float | None]:
    """The figures an SLO can name, for one cell key of a run: latency percentiles of all
    its measured repeats merged (HDR histograms add up exactly), mean throughput, error
    rate and requests per server CPU-second."""
    histogram = new_histogram()
    for cell in run.cells_of(summary.key):
        if cell.measured and cell.histogram:
            histogram.add(decode_histogram(cell.histogram))
    efficiency = summary.requests_per_server_cpu_s
    return {
        **latency_summary_ms(histogram),
        "rps": summary.rps.mean,
        "error_rate": summary.error_rate,
        "cpu_efficiency": efficiency.mean if efficiency is not None else None,
    }


def evaluate_slos(run: Run, slos: Sequence[Slo]) -> list[dict[str, Any]]:
    """Every SLO against every cell key it applies to, as the result file records them."""
    results = []
    for summary in run.summaries:
        key = summary.key
        applicable = [slo for slo in slos if slo.applies_to(key.stack, key.workload)]
        if not applicable:
            continue
        figures = run_figures(run, summary)
        for slo in applicable:
            result = slo.evaluate(
                figures, stack=key.stack, workload=key.workload, concurrency=key.concurrency
            )
            results.append(result.to_dict())
    return results
