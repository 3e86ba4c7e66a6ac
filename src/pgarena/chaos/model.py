"""What a fault did to a stack, as records and checks: pure data, no I/O, unit-tested.

A fault has a window: from the moment it starts (PostgreSQL stopped, frozen, the pool
flooded) to the moment PostgreSQL accepts connections again. Requests that *started* before
the window ends count as "during", the rest as "after". Recovery is the time from the end of
the window to the end of the first request answered 200 after it: what a client sees, not
when the pool says it is ready.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

SCHEMA_VERSION = 1
# The fixed bounds; the request deadline itself comes from the service's settings.
RECOVERY_BOUND_S = 2.0
FRESH_REQUEST_BOUND_S = 1.0
DEFAULT_DEADLINE_S = 5.0


@dataclass(frozen=True)
class Sample:
    """One request: start and end (seconds on the monotonic clock) and its outcome.

    `status` is the HTTP status as text ("200", "503"), or what went wrong before any
    status arrived: "timeout", "error" (connection refused or reset).
    """

    start: float
    end: float
    status: str
    retry_after: bool = False

    @property
    def seconds(self) -> float:
        return self.end - self.start


@dataclass(frozen=True)
class Bounds:
    """How long a client may wait, from the service's own settings.

    `deadline_s` is the service's `request_deadline` (0 disables it: then the pool timeout
    is the longest wait the service itself bounds). A request may take the deadline plus
    one second (the time to answer 503 and the network), as the issue's "Done when" says.
    """

    deadline_s: float = DEFAULT_DEADLINE_S

    @classmethod
    def from_settings(cls, settings: Any) -> Bounds:
        deadline = getattr(settings, "request_deadline", DEFAULT_DEADLINE_S)
        if not deadline:
            deadline = float(settings.pool_timeout)
        return cls(deadline_s=float(deadline))

    @property
    def longest_s(self) -> float:
        return self.deadline_s + 1.0


@dataclass(frozen=True)
class Check:
    """One pass/fail rule of the issue, with what was measured and the bound."""

    name: str
    passed: bool
    measured: str
    bound: str


@dataclass
class FaultResult:
    """One fault on one stack: the figures the report shows and the checks that judge them."""

    stack: str
    fault: str
    during: dict[str, int] = field(default_factory=dict)
    after: dict[str, int] = field(default_factory=dict)
    longest_s: float | None = None
    recovery_s: float | None = None
    leaks: list[str] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return all(check.passed for check in self.checks)

    def to_json(self) -> dict[str, Any]:
        document = asdict(self)
        document["passed"] = self.passed
        return document


def count_by_status(samples: Iterable[Sample]) -> dict[str, int]:
    """How many requests got each status, most frequent first."""
    return dict(Counter(sample.status for sample in samples).most_common())


def split_windows(
    samples: Iterable[Sample], window_end: float
) -> tuple[list[Sample], list[Sample]]:
    """The requests started before the fault's window ended, and those started after."""
    during, after = [], []
    for sample in samples:
        (during if sample.start < window_end else after).append(sample)
    return during, after


def recovery_seconds(samples: Iterable[Sample], window_end: float) -> float | None:
    """Seconds from the window's end to the end of the first 200 answered after it (None:
    no request succeeded after the fault, i.e. the stack never recovered while measured)."""
    ends = [s.end for s in samples if s.status == "200" and s.end >= window_end]
    return max(0.0, min(ends) - window_end) if ends else None


def longest(samples: Iterable[Sample]) -> float | None:
    """The longest request's duration in seconds (None when there was none)."""
    durations = [sample.seconds for sample in samples]
    return max(durations) if durations else None


def no_server_errors(samples: Iterable[Sample]) -> Check:
    """0 responses of 500 (or any 5xx but the 503 of a shed request)."""
    errors = sum(1 for s in samples if s.status.startswith("5") and s.status != "503")
    return Check("no 5xx but 503", errors == 0, f"{errors} responses", "0")


def retry_after_on_503(samples: Iterable[Sample]) -> Check:
    """Every 503 tells the client when to come back."""
    shed = [s for s in samples if s.status == "503"]
    missing = sum(1 for s in shed if not s.retry_after)
    return Check("503 carries Retry-After", missing == 0, f"{missing} of {len(shed)} without", "0")


def every_request_answered(samples: Iterable[Sample]) -> Check:
    """No client saw a timeout or a dropped connection: every request got a status."""
    unanswered = sum(1 for s in samples if not s.status.isdigit())
    return Check("every request answered", unanswered == 0, f"{unanswered} unanswered", "0")


def longest_within(samples: Iterable[Sample], bound_s: float) -> Check:
    worst = longest(samples)
    measured = "no request" if worst is None else f"{worst:.2f} s"
    return Check("longest request", worst is not None and worst <= bound_s, measured,
                 f"<= {bound_s:g} s")  # fmt: skip


def recovered_within(recovery: float | None, bound_s: float = RECOVERY_BOUND_S) -> Check:
    measured = "never" if recovery is None else f"{recovery:.2f} s"
    return Check("time to first 200", recovery is not None and recovery <= bound_s, measured,
                 f"<= {bound_s:g} s")  # fmt: skip


def judge_outage(
    result: FaultResult, samples: list[Sample], window_end: float, bounds: Bounds
) -> FaultResult:
    """Fill `result` for a fault with an outage window (restart, freeze): the figures and
    the checks of the issue (0 x 500, longest request, recovery, Retry-After)."""
    during, after = split_windows(samples, window_end)
    result.during, result.after = count_by_status(during), count_by_status(after)
    result.longest_s = longest(samples)
    result.recovery_s = recovery_seconds(samples, window_end)
    result.checks += [
        no_server_errors(samples),
        longest_within(samples, bounds.longest_s),
        recovered_within(result.recovery_s),
        retry_after_on_503(samples),
    ]
    return result
