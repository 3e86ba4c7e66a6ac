"""When a cell's figures are not to be trusted, and what to tell the reader: every rule here.

pyperf's lesson: a benchmark should warn about an unstable measurement rather than quietly
publish it. The warnings are records with a `kind` so that reports can count, filter and
style them, and a `message` a reader understands without the source.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, Literal

from pgarena.results.series import BatchMeans, Warmup
from pgarena.results.stats import UNSTABLE_CV, Estimate

WarningKind = Literal[
    "failed",
    "errors",
    "unstable",
    "imprecise",
    "not-steady",
    "autocorrelated",
    "single-repeat",
    "busy-machine",
    "connection-churn",
]

# A 95% interval wider than +/-10% of the mean cannot separate stacks that differ by 10%.
IMPRECISE_HALF_WIDTH = 0.10
# Processes other than server, PostgreSQL and generator may use this share of the machine's
# CPU before a cell is flagged: beyond it they compete with what is measured.
BUSY_MACHINE_SHARE = 0.10
# A pool that keeps its connections opens none after warmup. More than this many new
# PostgreSQL connections a second (a connection costs a fork and an authentication, about
# a millisecond of PostgreSQL's CPU) means the pool closes and reopens them under load:
# SQLAlchemy's overflow, a too-short idle lifetime. The figures then measure pool settings.
CHURN_CONNECTIONS_PER_S = 0.5


@dataclass(frozen=True)
class CellWarning:
    """One reason to doubt a cell's figures (named so as not to shadow Python's `Warning`)."""

    kind: WarningKind
    message: str

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape used in the result file."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CellWarning:
        """The inverse of `to_dict`."""
        return cls(kind=data["kind"], message=data["message"])

    def __str__(self) -> str:
        return self.message


def stability_warnings(
    estimate: Estimate | None = None,
    *,
    label: str = "",
    repeat_cv: float | None = None,
    repeats: int | None = None,
    failed: int = 0,
    failure_reason: str | None = None,
    errors: Mapping[str, int] | None = None,
    series: BatchMeans | None = None,
    warmup: Warmup | None = None,
    other_cpu_share: float | None = None,
    reopened_connections_per_s: float | None = None,
) -> list[CellWarning]:
    """The warnings one cell deserves, each from one rule, in order of gravity.

    - "failed": `failed` of its repeats failed (of `repeats` measured plus failed);
    - "errors": requests failed, counted per kind in `errors`;
    - "unstable": the repeats' coefficient of variation exceeds UNSTABLE_CV (pyperf's rule);
    - "imprecise": the 95% interval is wider than +/-IMPRECISE_HALF_WIDTH of the mean;
    - "not-steady": the series never settled (MSER-5 found no end of warmup in its first half);
    - "autocorrelated": batch means never reached independence, so the interval is too narrow;
    - "single-repeat": one repeat only: its interval covers the seconds of one server, not
      the variation between fresh servers;
    - "busy-machine": other processes used more than BUSY_MACHINE_SHARE of the CPU;
    - "connection-churn": the server closed and reopened more than CHURN_CONNECTIONS_PER_S
      PostgreSQL connections a second after warmup (new connections beyond its pool's
      growth: a pool still filling up after a short warmup is not churning).

    `label` (for example "rps") prefixes the figure-specific messages.
    """
    prefix = f"{label} " if label else ""
    warnings: list[CellWarning] = []
    if failed:
        total = failed + (repeats or 0)
        reason = f" ({failure_reason})" if failure_reason else ""
        warnings.append(CellWarning("failed", f"failed: {failed} of {total} repeats{reason}"))
    counted = {kind: count for kind, count in (errors or {}).items() if count}
    if counted:
        kinds = ", ".join(f"{kind}: {count}" for kind, count in sorted(counted.items()))
        message = f"errors: {sum(counted.values())} failed requests ({kinds})"
        warnings.append(CellWarning("errors", message))
    if repeat_cv is not None and repeat_cv > UNSTABLE_CV:
        message = f"unstable: {prefix}CV {repeat_cv:.0%} > {UNSTABLE_CV:.0%}"
        warnings.append(CellWarning("unstable", message))
    half_width = estimate.relative_half_width if estimate is not None else None
    if half_width is not None and half_width > IMPRECISE_HALF_WIDTH:
        message = f"imprecise: {prefix}95% interval +/-{half_width:.0%} of the mean"
        warnings.append(CellWarning("imprecise", message))
    if warmup is not None and warmup.steady is False:
        message = "not steady: still changing through the first half of the cell"
        warnings.append(CellWarning("not-steady", message))
    if series is not None and not series.independent:
        message = (
            f"autocorrelated: {prefix}batches of {series.batch_size} points still correlated"
            " (the interval is too narrow)"
        )
        warnings.append(CellWarning("autocorrelated", message))
    if repeats == 1:
        message = "one repeat: the interval does not cover variation between fresh servers"
        warnings.append(CellWarning("single-repeat", message))
    if other_cpu_share is not None and other_cpu_share > BUSY_MACHINE_SHARE:
        message = f"busy machine: other processes used {other_cpu_share:.0%} of the CPU"
        warnings.append(CellWarning("busy-machine", message))
    churn = reopened_connections_per_s
    if churn is not None and churn > CHURN_CONNECTIONS_PER_S:
        message = (
            f"connection churn: {churn:.1f} PostgreSQL connections/s closed and reopened"
            " after warmup (the pool does not keep its connections)"
        )
        warnings.append(CellWarning("connection-churn", message))
    return warnings
