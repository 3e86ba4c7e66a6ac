"""The typed records of a run: what the harness writes and every report reads.

A `Run` is one result file: its metadata, its plan, every `Cell` (one repeat of one stack x
workload x concurrency, measured or failed: one shape either way), and one `Summary` per
`CellKey` across its repeats. Summaries are computed once, by `results.summary`, when a cell
is written; reports and `pgarena compare` read them and never recompute them. Like pyperf's
`Run` and `Benchmark`, the records are frozen: a view cannot change what was measured.

The JSON shape of each record is its `to_dict()`; `from_dict()` reads it back. The JSON
Schema (`results.schema.json`) is the contract for other tools.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from pgarena.results.series import BatchMeans, Warmup
from pgarena.results.stats import Estimate
from pgarena.results.warnings import CellWarning

CellStatus = Literal["ok", "failed"]
LATENCY_FIELDS = ("p50", "p90", "p99", "p99_9", "max", "mean")
RESOURCE_FIELDS = (
    "server_cpu_s",
    "server_rss_peak_bytes",
    "server_rss_mean_bytes",
    "postgres_cpu_s",
    "generator_cpu_s",
    "other_cpu_s",
    "db_connections_max",
    "db_connections_active_max",
    "machine_busy_cpu_s",
    "statements",
    "statements_source",
    "new_connections",
    "db_connections_growth",
)
# The parts of the machine's CPU a cell accounts for, in the order charts stack them.
CPU_PARTS = ("server", "postgres", "generator", "other")


@dataclass(frozen=True, order=True)
class CellKey:
    """What a summary is about: a stack, a workload and a concurrency level."""

    stack: str
    workload: str
    concurrency: int

    @property
    def label(self) -> str:
        """'async/db@50', for tables, warnings and log lines."""
        return f"{self.stack}/{self.workload}@{self.concurrency}"

    def to_dict(self) -> dict[str, Any]:
        """The key's fields, as every record that has a key begins."""
        return {"stack": self.stack, "workload": self.workload, "concurrency": self.concurrency}


class Keyed:
    """A record about one cell key: its stack, workload and concurrency read as its own."""

    key: CellKey

    @property
    def stack(self) -> str:
        """The stack."""
        return self.key.stack

    @property
    def workload(self) -> str:
        """The workload."""
        return self.key.workload

    @property
    def concurrency(self) -> int:
        """The concurrency level."""
        return self.key.concurrency


def _json(value: Any) -> Any:
    """A record's field as JSON: records by their `to_dict`, sequences and mappings as lists
    and dicts, anything else as it is."""
    if hasattr(value, "to_dict"):
        return value.to_dict()
    if isinstance(value, tuple | list):
        return [_json(item) for item in value]
    if isinstance(value, Mapping):
        return dict(value)
    return value


def _keyed_dict(record: Any) -> dict[str, Any]:
    """The JSON shape of a record with a key: the key's fields first, then the others."""
    fields = (name for name in record.__dataclass_fields__ if name != "key")
    return {**record.key.to_dict(), **{name: _json(getattr(record, name)) for name in fields}}


@dataclass(frozen=True)
class SeriesPoint:
    """One interval of a cell's time series (interval length: the run's `series_interval_s`).

    `t` is seconds since the cell's load started; warmup points are recorded and plotted,
    never counted. CPU figures are the seconds used in this interval.
    """

    t: float
    phase: str  # "warmup" or "measure"
    ok: int
    errors: int
    duration_s: float | None = None  # the interval's length (the last of a phase may differ)
    p50_ms: float | None = None
    p90_ms: float | None = None
    p99_ms: float | None = None
    max_ms: float | None = None
    generator_cpu_s: float | None = None
    server_cpu_s: float | None = None
    postgres_cpu_s: float | None = None
    other_cpu_s: float | None = None
    histogram: str | None = None  # HdrHistogram of this interval's ok latencies (us)

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape of a point."""
        return dict(self.__dict__)

    def rps(self, interval_s: float) -> float:
        """Successful requests per second in this interval."""
        duration = self.duration_s or interval_s
        return self.ok / duration if duration > 0 else 0.0

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SeriesPoint:
        """Read a point back, ignoring fields this version does not know."""
        return cls(**{name: data[name] for name in cls.__dataclass_fields__ if name in data})


@dataclass(frozen=True)
class Steady:
    """Where a cell's steady state starts, as detected from its series (MSER-5), and the
    within-cell throughput interval over it (batch means)."""

    start_s: float  # from the start of the cell's load
    points: int  # series points in the steady part
    warmup: Warmup  # MSER-5's verdict on the whole series
    batches: BatchMeans  # requests/s over the steady part, by batch means

    @property
    def rps(self) -> Estimate:
        """Within-cell throughput: the steady part's mean and its batch-means interval."""
        return self.batches.estimate

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape."""
        return {
            "start_s": self.start_s,
            "points": self.points,
            "warmup": self.warmup.to_dict(),
            "batches": self.batches.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Steady:
        """Read it back."""
        return cls(
            start_s=data["start_s"],
            points=data["points"],
            warmup=Warmup.from_dict(data["warmup"]),
            batches=BatchMeans.from_dict(data["batches"]),
        )


@dataclass(frozen=True)
class Cell(Keyed):
    """One repeat of one cell, measured or failed.

    A failed cell has the same fields as a measured one; what could not be measured is None.
    A cell can be "failed" and still carry figures (the server died at the end of the
    window): they are shown in its failure, never in a summary.
    """

    key: CellKey
    repeat: int
    status: CellStatus
    error: str | None
    started_at: str
    mode: str | None = None
    duration_s: float | None = None
    requests: int | None = None
    ok: int | None = None
    rps: float | None = None  # steady-state requests/s (ok only)
    errors: Mapping[str, int] = field(default_factory=dict)
    latency_ms: Mapping[str, float | None] = field(
        default_factory=lambda: dict.fromkeys(LATENCY_FIELDS)
    )
    histogram: str | None = None
    warmup: Mapping[str, Any] = field(
        default_factory=lambda: {"duration_s": None, "requests": None}
    )
    resources: Mapping[str, Any] = field(default_factory=lambda: dict.fromkeys(RESOURCE_FIELDS))
    requests_per_server_cpu_s: float | None = None
    cpu_share: Mapping[str, float | None] = field(default_factory=lambda: dict.fromkeys(CPU_PARTS))
    statements_per_request: float | None = None
    # Connections opened to PostgreSQL per second of the measured window (warmup excluded):
    # 0 for a pool that keeps its connections. None in files written before it was measured.
    new_connections_per_s: float | None = None
    series: tuple[SeriesPoint, ...] = ()
    steady: Steady | None = None
    server_start_s: float | None = None
    server_log: str | None = None
    profile: str | None = None  # `--profile`: the flame graph (SVG) of this cell, relative path

    @property
    def measured(self) -> bool:
        """True when the cell finished and its figures count."""
        return self.status == "ok"

    @property
    def latency_p99_ms(self) -> float | None:
        """The 99th percentile of this repeat's latencies (the figure its summary averages)."""
        return self.latency_ms.get("p99")

    @property
    def reopened_connections_per_s(self) -> float | None:
        """Connections opened in the window beyond the pool's growth, per second: ones the
        pool closed and opened again (churn). None when not measured."""
        new = self.resources.get("new_connections")
        if new is None or not self.duration_s:
            return None
        growth = max(0, self.resources.get("db_connections_growth") or 0)
        return max(0, new - growth) / self.duration_s

    @property
    def error_count(self) -> int:
        """Failed requests of every kind in the measured window."""
        return sum(self.errors.values())

    @property
    def error_rate(self) -> float | None:
        """Failed requests / all requests in the window (None when nothing was sent)."""
        return self.error_count / self.requests if self.requests else None

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape: the key's fields first, then the figures."""
        return _keyed_dict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Cell:
        """Read a cell back; fields missing from older files take their defaults."""
        known = {
            name: data[name]
            for name in cls.__dataclass_fields__
            if name in data and name not in ("key", "series", "steady")
        }
        resources = {**dict.fromkeys(RESOURCE_FIELDS), **(data.get("resources") or {})}
        shares = {**dict.fromkeys(CPU_PARTS), **(data.get("cpu_share") or {})}
        steady = data.get("steady")
        return cls(
            key=CellKey(data["stack"], data["workload"], int(data["concurrency"])),
            **{**known, "resources": resources, "cpu_share": shares},
            series=tuple(SeriesPoint.from_dict(point) for point in data.get("series") or ()),
            steady=Steady.from_dict(steady) if steady else None,
        )


@dataclass(frozen=True)
class Summary(Keyed):
    """One `CellKey` across its repeats: the figures every report shows.

    Each figure is an `Estimate` (mean, standard error, degrees of freedom, 95% interval);
    `rps` combines the within-cell intervals (batch means over each repeat's steady state)
    with the variation between repeats (see `results.summary`).
    """

    key: CellKey
    repeats: int  # repeats that finished
    failed: int  # repeats that failed
    requests: int  # requests sent in the measured windows of the finished repeats
    rps: Estimate
    requests_per_server_cpu_s: Estimate | None
    latency_p50_ms: Estimate
    latency_p99_ms: Estimate
    error_rate: float | None
    cpu_share: Mapping[str, float | None]
    peak_rss_bytes: int | None
    statements_per_request: float | None
    new_connections_per_s: float | None = None  # mean over repeats; None in older files
    warnings: tuple[CellWarning, ...] = ()

    _ESTIMATES = ("rps", "requests_per_server_cpu_s", "latency_p50_ms", "latency_p99_ms")

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape: the key's fields first, then the figures."""
        return _keyed_dict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Summary:
        """Read a summary back."""
        values: dict[str, Any] = {}
        for name in cls.__dataclass_fields__:
            if name == "key":
                continue
            value = data.get(name)
            if name in cls._ESTIMATES:
                value = Estimate.from_dict(value) if value is not None else None
            elif name == "warnings":
                value = tuple(CellWarning.from_dict(item) for item in value or ())
            values[name] = value
        return cls(key=CellKey(data["stack"], data["workload"], int(data["concurrency"])), **values)


@dataclass(frozen=True)
class Run:
    """One result file: metadata, plan, cells in run order, one summary per cell key."""

    schema_version: int
    status: str  # "running", "complete" or "interrupted"
    started_at: str
    finished_at: str | None
    metadata: Mapping[str, Any]
    plan: Mapping[str, Any]
    cells: tuple[Cell, ...] = ()
    summaries: tuple[Summary, ...] = ()
    slo: tuple[Mapping[str, Any], ...] = ()  # SLO results, when the run was given any

    def summary(self, key: CellKey) -> Summary | None:
        """The summary of one cell key, or None when the run has no such cell."""
        return next((summary for summary in self.summaries if summary.key == key), None)

    def cells_of(self, key: CellKey) -> list[Cell]:
        """The repeats of one cell key, in repeat order."""
        return group_cells(self.cells).get(key, [])

    @property
    def stacks(self) -> list[str]:
        """Stacks in the plan's order, then any the cells hold that the plan does not name."""
        return _ordered(self.plan.get("stacks") or [], (c.key.stack for c in self.cells))

    @property
    def workloads(self) -> list[str]:
        """Workloads in the plan's order, then any others the cells hold."""
        return _ordered(self.plan.get("workloads") or [], (c.key.workload for c in self.cells))

    @property
    def concurrency(self) -> list[int]:
        """Every concurrency level measured, ascending."""
        return sorted({cell.key.concurrency for cell in self.cells})

    @property
    def failed_cells(self) -> list[Cell]:
        """Every repeat that failed, in run order."""
        return [cell for cell in self.cells if not cell.measured]

    def with_cell(self, cell: Cell, summaries: Sequence[Summary]) -> Run:
        """This run with one more cell and its recomputed summaries."""
        return replace(self, cells=(*self.cells, cell), summaries=tuple(summaries))

    def to_dict(self) -> dict[str, Any]:
        """The whole result file."""
        return {
            "schema_version": self.schema_version,
            "status": self.status,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "metadata": dict(self.metadata),
            "plan": dict(self.plan),
            "cells": [cell.to_dict() for cell in self.cells],
            "summary": [summary.to_dict() for summary in self.summaries],
            "slo": [dict(result) for result in self.slo],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Run:
        """Read a result file of the current schema version (see `file.load_run`)."""
        return cls(
            schema_version=data["schema_version"],
            status=data["status"],
            started_at=data["started_at"],
            finished_at=data.get("finished_at"),
            metadata=data.get("metadata") or {},
            plan=data.get("plan") or {},
            cells=tuple(Cell.from_dict(cell) for cell in data.get("cells") or ()),
            summaries=tuple(Summary.from_dict(item) for item in data.get("summary") or ()),
            slo=tuple(data.get("slo") or ()),
        )


def group_cells(cells: Iterable[Cell]) -> dict[CellKey, list[Cell]]:
    """Cells by key, in first-seen order, each group in repeat order. The one place cells
    are grouped."""
    groups: dict[CellKey, list[Cell]] = {}
    for cell in cells:
        groups.setdefault(cell.key, []).append(cell)
    for members in groups.values():
        members.sort(key=lambda cell: cell.repeat)
    return groups


def _ordered(preferred: Sequence[Any], seen: Iterable[Any]) -> list[Any]:
    seen = list(dict.fromkeys(seen))
    return [item for item in preferred if item in seen] + [
        item for item in seen if item not in preferred
    ]
