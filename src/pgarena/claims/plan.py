"""What `pgarena claims` will run, and for how long, before it runs anything.

Sixty claims need about thirty experiment points (a workload at one load on one server
configuration). Run one after another, with a fresh server per cell, that took ~20 minutes;
most of it was starting servers. Three observations make `--quick` fit in 8 (measured: 6 min
38 s for all 60 claims on a 2-core machine that four other benchmarks were loading):

- A server's configuration is only its pool and thread settings, so every point that needs
  the same configuration can share one server. Points are grouped by the *resolved* server
  settings (`threads` unset means "the pool's maximum", so `pool 100` and `pool 100, threads
  100` are one server), and each group is one pgarena run whose servers live through a
  repeat while the stacks take turns cell by cell.
- The database latency of `slow-db` is a request parameter, not a server setting, so a sweep
  of it is a few more cells in the same group: each latency gets its own workload, named
  for it (`slow-db-5ms`), with the value written into the request path.
- An async stack runs no endpoint on the thread pool, so a thread sweep runs only the sync
  side at each value (`point_for`).

Cells differ in how long they need, so each gets its own warmup and window (`PointsPlan`):
hundreds of clients need seconds to connect, and a sync server whose clients outnumber its
threads needs a whole turn of its queue to fill, then to be measured.

Each cell's workload is labelled with the non-default server settings it ran under
(`slow-db-50ms@pool100,overflow0,threads1`), so the cells of every group can go into one
result file without two of them sharing a key.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cache

from pgarena.bench.plan import (
    CELL_OVERHEAD_S,
    DATABASE_SETUP_ESTIMATE_S,
    SERVER_START_ESTIMATE_S,
    Plan,
    PlannedCell,
)
from pgarena.bench.servers import ServerOptions
from pgarena.bench.workloads import WORKLOADS, Scenario, Workload
from pgarena.claims.catalogue import Claim, Experiment
from pgarena.results.model import CellKey
from pgarena.service.stacks import STACKS

# --quick: enough to put an interval on each figure, not to make it narrow.
QUICK = {"repeats": 2, "duration_s": 1.0, "warmup_s": 0.5}
FULL = {"repeats": 3, "duration_s": 10.0, "warmup_s": 2.0}
QUICK_BUDGET_S = 8 * 60.0  # issue 12: every catalogued claim in 8 minutes on 2 cores
MAX_QUEUE_WARMUP_S = 6.0
# Opening hundreds of connections takes the loaded 2-core machine seconds: measured, 1000
# clients with a 0.5 s warmup, and 200 on a fresh server whose pool may open 250, met a
# server that had answered nothing yet. So loads of MANY_CLIENTS or more warm up longer,
# for the clients' connections and for the server's pool connections to PostgreSQL.
MANY_CLIENTS = 200
CONNECT_WARMUP_S = 2.5  # per 1000 clients
POOL_FILL_S = 0.01  # per connection the pool may open (a PostgreSQL backend each)
# A thread-limited queue answers in bursts, one per turn: the window spans this many turns.
QUEUE_TURNS = 1.2
# PostgreSQL's max_connections (300, database/embedded.py) less room for the harness: the
# servers of a group run one at a time when their pools together could exceed it.
SERVER_CONNECTIONS = 280
# The seeds' servers bound no wait: no request deadline, a thread queue without a timeout,
# SQLAlchemy's default pool timeout (30 s). Their claims are about exactly that (a request
# queued behind 99 others on one thread waits 5 s), so the claims' servers run without
# pgarena's failure bounds (README, "Failure behaviour"), which would shed it with a 503
# after 2 s and measure the bound instead of the claim.
UNBOUNDED = (
    ("PGARENA_REQUEST_DEADLINE", "0"),
    ("PGARENA_QUEUE_TIMEOUT", "3600"),
    ("PGARENA_POOL_TIMEOUT", "30"),
)


@dataclass(frozen=True)
class ServerConfig:
    """The resolved settings of `pgarena serve` that a point needs (None: serve's default)."""

    pool_size: int
    max_overflow: int
    threads: int

    @classmethod
    def of(cls, point: Experiment) -> ServerConfig:
        """The settings `pgarena serve` ends up with for the point's options."""
        return _resolved(point.pool_size, point.max_overflow, point.threads)

    def options(self) -> ServerOptions:
        return ServerOptions(
            threads=self.threads,
            pool_size=self.pool_size,
            max_overflow=self.max_overflow,
            environment=UNBOUNDED,
        )

    def label(self) -> str:
        """'' for serve's defaults, else the pool spelled out: 'pool100,overflow0,threads1'
        (threads only when not the pool's maximum, serve's default). Pool and overflow are
        always named, so a kept run's workload names survive a change of serve's defaults."""
        if self == ServerConfig.of(Experiment("standard", 1)):
            return ""
        parts = [f"pool{self.pool_size}", f"overflow{self.max_overflow}"]
        if self.threads != self.pool_size + self.max_overflow:  # serve's default
            parts.append(f"threads{self.threads}")
        return ",".join(parts)


@cache
def _resolved(pool_size: int | None, max_overflow: int | None, threads: int | None) -> ServerConfig:
    """Resolved by the Settings class serve uses (it reads the environment too, as serve
    does), once per combination: building Settings costs milliseconds."""
    from pgarena.settings import Settings

    given = {"pool_size": pool_size, "max_overflow": max_overflow, "threads": threads}
    settings = Settings(**{name: value for name, value in given.items() if value is not None})
    return ServerConfig(settings.pool_size, settings.max_overflow, settings.thread_count)


def workload_of(point: Experiment) -> Workload:
    """The point's workload; slow-db gets its latency written in, and a name that says it."""
    workload = WORKLOADS[point.workload]
    if point.workload != "slow-db":
        return workload
    scenarios = tuple(
        Scenario(
            scenario.weight,
            tuple(
                replace(step, path=step.path.replace("{slow_ms}", str(point.slow_ms)))
                for step in scenario.steps
            ),
            scenario.think_time_s,
        )
        for scenario in workload.scenarios
    )
    return replace(
        workload,
        name=f"slow-db-{point.slow_ms}ms",
        description=f"each request holds a connection while PostgreSQL sleeps {point.slow_ms} ms",
        scenarios=scenarios,
    )


def cell_workload(point: Experiment) -> str:
    """The workload name of the point's cells in the claims' result file."""
    label = ServerConfig.of(point).label()
    name = workload_of(point).name
    return f"{name}@{label}" if label else name


def point_for(point: Experiment, stack: str) -> Experiment:
    """The point as `stack` needs it run. An async stack runs no endpoint on the thread
    pool, so the thread count is no condition of its figures: it is measured once, at
    serve's default, and a thread sweep runs only the sync side at each of its values. Its
    ratios pair sync's repeat r with async's repeat r of that one measurement."""
    if STACKS[stack].style == "async" and point.threads is not None:
        return replace(point, threads=None)
    return point


def cell_key(point: Experiment, stack: str) -> CellKey:
    """Where the claims' result file keeps `stack`'s cells of `point`."""
    own = point_for(point, stack)
    return CellKey(stack, cell_workload(own), own.concurrency)


def points_of(claim: Claim, quick: bool) -> tuple[Experiment, ...]:
    """The experiment points of one claim. --quick measures for a fixed time instead of the
    seed's request count (seed 004's 100,000 requests would not fit)."""
    points = claim.experiment.points()
    return tuple(replace(p, requests=None) for p in points) if quick else points


@dataclass(frozen=True)
class Pair:
    """A (workload, concurrency) to run, and how long a sync server's queue takes to fill."""

    workload: Workload
    concurrency: int
    queue_warmup_s: float = 0.0


@dataclass(frozen=True)
class PointsPlan(Plan):
    """A plan that runs chosen (workload, concurrency) pairs, not every combination, each
    warmed up for as long as its own load needs."""

    pairs: tuple[Pair, ...] = ()
    pool_connections: int = 0  # the most connections a server's pool may open

    def cells(self) -> list[PlannedCell]:
        """Repeats outermost, then the pairs, the stacks taking turns (A B A B ...); with
        one server at a time ("stack"), each stack's cells of a repeat together."""
        if self.server_lifetime == "stack":
            return [
                PlannedCell(stack, pair.workload, pair.concurrency, repeat)
                for repeat in range(self.repeats)
                for stack in self.stacks
                for pair in self.pairs
            ]
        return [
            PlannedCell(stack, pair.workload, pair.concurrency, repeat)
            for repeat in range(self.repeats)
            for pair in self.pairs
            for stack in self.stacks
        ]

    def _pair(self, cell: PlannedCell) -> Pair:
        return next(
            p
            for p in self.pairs
            if (p.workload, p.concurrency) == (cell.workload, cell.concurrency)
        )

    def _queued(self, cell: PlannedCell) -> float:
        """How long a turn of the cell's thread-pool queue takes (0 for async stacks)."""
        return self._pair(cell).queue_warmup_s if STACKS[cell.stack].style == "sync" else 0.0

    def warmup_of(self, cell: PlannedCell) -> float:
        """The plan's warmup, plus the time to open the connections of a large load (the
        clients', and the server's pool growing to meet them), plus, for a sync stack, the
        time its thread pool's queue takes to fill."""
        opening = 0.0
        if cell.concurrency >= MANY_CLIENTS:
            pool = self.pool_connections or cell.concurrency
            opening = CONNECT_WARMUP_S * cell.concurrency / 1000
            opening += POOL_FILL_S * min(cell.concurrency, pool)
        return self.warmup_s + opening + self._queued(cell)

    def duration_of(self, cell: PlannedCell) -> float | None:
        """The plan's window, or a whole turn of the cell's queue if that is longer."""
        if self.duration_s is None:
            return None
        return max(self.duration_s, QUEUE_TURNS * self._queued(cell))

    def estimate_s(self) -> float:
        """As `seconds`: the claims' runs share one database, set up once."""
        return self.seconds()

    def seconds(self) -> float:
        """Estimated wall time of this plan's servers and cells (no database setup)."""
        return self.server_starts() * SERVER_START_ESTIMATE_S + sum(
            self.warmup_of(cell) + (self.duration_of(cell) or 5.0) + CELL_OVERHEAD_S
            for cell in self.cells()
        )


@dataclass(frozen=True)
class Group:
    """One server configuration and the points that share it: one pgarena run."""

    config: ServerConfig
    requests: int | None
    points: tuple[Experiment, ...]
    plan: PointsPlan

    @property
    def name(self) -> str:
        name = self.config.label() or "defaults"
        return name + (f",n{self.requests}" if self.requests else "")

    def describe(self) -> str:
        """'pool100,overflow0,threads1: 8 cells (2 stacks, 2 repeats), 1.5 s each'."""
        plan = self.plan
        measured = f"{plan.requests} requests" if plan.requests else f"{plan.duration_s:g} s"
        return (
            f"{self.name}: {len(plan.cells())} cells ({_count(len(plan.stacks), 'stack')}, "
            f"{plan.repeats} repeats), {measured} or more each after a warmup; "
            f"estimated {plan.seconds():.0f} s"
        )


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


def queue_warmup_s(point: Experiment, config: ServerConfig) -> float:
    """How long a sync server needs before its queue is full: with more clients than
    threads, each thread serves its share of the clients one after another, so a request
    waits (clients / threads) database calls before its own. Measuring before that would
    report the latency of a queue still filling up.

    It is also how long the window must be: the dependency's setup and teardown queue for
    the same threads as the endpoint, so answers come in bursts, one per turn of the queue
    (measured: 100 clients on one thread answered all at once every ~5 s, and a 1.25 s
    window between two bursts saw no answer at all)."""
    if point.workload != "slow-db" or point.concurrency <= config.threads:
        return 0.0
    return min(MAX_QUEUE_WARMUP_S, point.concurrency / config.threads * point.slow_ms / 1000)


def _weight(pair: Pair) -> tuple[int, bool]:
    """Lighter loads first: fewer clients, and at equal clients requests that wait (slow-db)
    before requests that compute, whose backlog takes longer to drain."""
    return pair.concurrency, not pair.workload.name.startswith("slow-db")


def plan_groups(points: dict[Experiment, list[str]], quick: bool) -> list[Group]:
    """The runs that measure `points` (each with the stacks it needs), one per server."""
    timing = QUICK if quick else FULL
    grouped: dict[tuple[ServerConfig, int | None], list[Experiment]] = {}
    for point in points:
        grouped.setdefault((ServerConfig.of(point), point.requests), []).append(point)
    groups = []
    for (config, requests), members in grouped.items():
        stacks: list[str] = []
        pairs: dict[tuple[str, int], Pair] = {}
        for point in members:
            stacks += [s for s in points[point] if s not in stacks]
            workload = replace(workload_of(point), name=cell_workload(point))
            pair = Pair(workload, point.concurrency, queue_warmup_s(point, config))
            pairs.setdefault((workload.name, point.concurrency), pair)
        # Servers alive together must not open more connections than PostgreSQL allows.
        # A server left with a thousand requests in flight is busy for seconds after its
        # cell (measured: the next cell on it saw no answer at all), so the loads run
        # lightest first and the heaviest last, before the next repeat's fresh servers.
        together = len(stacks) * (config.pool_size + config.max_overflow)
        lifetime = "repeat" if together <= SERVER_CONNECTIONS else "stack"
        ordered = sorted(pairs.values(), key=_weight)

        plan = PointsPlan(
            stacks=tuple(sorted(stacks, key=list(STACKS).index)),  # sync first: the base
            workloads=tuple(dict.fromkeys(pair.workload for pair in pairs.values())),
            concurrency=tuple(sorted({pair.concurrency for pair in pairs.values()})),
            repeats=int(timing["repeats"]),
            duration_s=None if requests else timing["duration_s"],
            requests=requests,
            warmup_s=timing["warmup_s"],
            rate=None,
            preset=None,
            server_lifetime=lifetime,
            pairs=tuple(ordered),
            pool_connections=config.pool_size + config.max_overflow,
        )
        groups.append(Group(config, requests, tuple(members), plan))
    return groups


def estimate_s(groups: list[Group]) -> float:
    """The planned wall time: one database, then every group's servers and cells."""
    return DATABASE_SETUP_ESTIMATE_S + sum(group.plan.seconds() for group in groups)
