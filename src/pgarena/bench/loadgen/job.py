"""What a load job asks for, what it measured, and the messages the worker processes exchange.

Everything here crosses a process boundary (pickled over a pipe), so it is plain, frozen
data: a typed message says what it carries, where a tuple of strings and dicts did not.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hdrh.histogram import HdrHistogram

from pgarena.bench.workloads import DataSizes, Workload
from pgarena.results.histograms import latency_summary_ms

# Error kinds always present in a result, so a zero is visible; `status_NNN` is added for
# each unexpected status seen, `protocol` when an answer is not well-formed HTTP.
ERROR_KINDS = ("connect", "timeout", "disconnect", "body")


@dataclass(frozen=True)
class LoadJob:
    """Everything a generator needs to load one server for one cell."""

    host: str
    port: int
    workload: Workload
    connections: int
    duration_s: float | None = 10.0  # measured window; None when `requests` is set
    requests: int | None = None  # or: stop after this many measured requests
    warmup_s: float = 0.0  # load applied first, recorded but not counted
    rate: float | None = None  # open loop: requests due per second (all connections)
    data: DataSizes = field(default_factory=DataSizes)
    slow_ms: int = 50
    timeout_s: float = 10.0
    path_prefix: str = ""
    tls: bool = False  # https: TLS with the standard library's default verification
    seed: int = 0
    progress_interval_s: float = 0.5
    series_interval_s: float = 0.25  # length of one point of `LoadResult.series`

    @property
    def mode(self) -> str:
        """ "open" with a fixed arrival rate, else "closed"."""
        return "open" if self.rate else "closed"


@dataclass(frozen=True)
class SeriesPoint:
    """One interval of a job's time series (merged across generator processes).

    `t` counts from the job's start (`LoadResult.started_monotonic`); the last interval of a
    phase ends with the phase, so it may be up to half an interval longer or shorter than
    the others: rates are `ok / duration_s`, never `ok / series_interval_s`.
    """

    index: int  # position in the series
    t: float  # interval start, seconds since the job's start
    duration_s: float
    phase: str  # "warmup" or "measure"
    ok: int
    errors: int
    p50_ms: float | None  # latency of this interval's `ok` requests (None without any)
    p90_ms: float | None
    p99_ms: float | None
    max_ms: float | None
    generator_cpu_s: float | None  # CPU the generator used in this interval (Locust: None)
    histogram: str  # encoded (results.histograms), so steady-state intervals can be merged

    @property
    def rps(self) -> float:
        """Successful requests per second in this interval."""
        return self.ok / self.duration_s if self.duration_s > 0 else 0.0

    def to_dict(self) -> dict[str, object]:
        """The JSON shape of one point of a cell's series."""
        return {
            "t": self.t,
            "duration_s": self.duration_s,
            "phase": self.phase,
            "ok": self.ok,
            "errors": self.errors,
            "p50_ms": self.p50_ms,
            "p90_ms": self.p90_ms,
            "p99_ms": self.p99_ms,
            "max_ms": self.max_ms,
            "generator_cpu_s": self.generator_cpu_s,
            "histogram": self.histogram,
        }


@dataclass
class LoadResult:
    """What one job measured (merged across generator processes)."""

    mode: str
    duration_s: float
    requests: int  # answered or failed attempts within the window
    ok: int  # answered with the expected status and body
    errors: dict[str, int]
    histogram: HdrHistogram  # latency of the `ok` requests, microseconds
    warmup_duration_s: float
    warmup_requests: int
    generator_cpu_s: float
    processes: int = 1
    aborted: bool = False
    # The job's start as a time.monotonic() stamp: CLOCK_MONOTONIC is one clock for every
    # process of a Linux machine, so samples taken elsewhere (server and PostgreSQL CPU)
    # line up with `series` by `started_monotonic + point.t`.
    started_monotonic: float = 0.0
    series: list[SeriesPoint] = field(default_factory=list)

    @property
    def rps(self) -> float:
        """Successful requests per second of measured time."""
        return self.ok / self.duration_s if self.duration_s > 0 else 0.0

    @property
    def error_count(self) -> int:
        """Failed requests of every kind."""
        return sum(self.errors.values())

    def latency_ms(self) -> dict[str, float | None]:
        """p50/p90/p99/p99.9/max/mean in milliseconds (None without a successful request)."""
        return latency_summary_ms(self.histogram)

    def encoded_histogram(self) -> str:
        """The histogram in HdrHistogram's compressed base64 form (mergeable elsewhere)."""
        return self.histogram.encode().decode("ascii")


@dataclass(frozen=True)
class Progress:
    """A live reading during a job, for the progress line (also what each process sends)."""

    phase: str  # "warmup" or "measure"
    elapsed_s: float  # in this phase
    rps: float  # successful requests/s over the last interval
    p99_ms: float | None  # over the last interval
    ok: int  # in this phase so far
    errors: int


@dataclass(frozen=True)
class ProcessResult:
    """What one generator process measured of its share of a job."""

    mode: str
    duration_s: float
    requests: int
    ok: int
    errors: dict[str, int]
    histogram: str  # encoded
    warmup_duration_s: float
    warmup_requests: int
    generator_cpu_s: float
    aborted: bool
    started_monotonic: float
    series: tuple[SeriesPoint, ...]


# --- messages over a worker's pipe --------------------------------------------------------


@dataclass(frozen=True)
class RunJob:
    """Parent to worker: run this share of a job."""

    job: LoadJob


@dataclass(frozen=True)
class StopJob:
    """Parent to worker: end the measurement now (the result is marked aborted)."""


@dataclass(frozen=True)
class ExitWorker:
    """Parent to worker: leave the process."""


@dataclass(frozen=True)
class PhaseChanged:
    """Worker to parent: this process entered ("measuring") or left ("measured") the window."""

    phase: str


@dataclass(frozen=True)
class JobDone:
    """Worker to parent: the job ended; what this process measured."""

    result: ProcessResult


@dataclass(frozen=True)
class JobFailed:
    """Worker to parent: the job could not run (the parent records the cell as failed)."""

    message: str


ToWorker = RunJob | StopJob | ExitWorker
FromWorker = PhaseChanged | Progress | JobDone | JobFailed
