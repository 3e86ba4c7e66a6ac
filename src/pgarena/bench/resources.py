"""What each part of the machine used during a measured window.

CPU seconds come from psutil (user + system) for whole process trees: the server and all of
its workers, PostgreSQL's postmaster and all of its backends. A process that exits inside
the window keeps its CPU in the total: once its parent (the postmaster, for a backend) has
reaped it, the kernel adds its CPU to the parent's `children_user`/`children_system`, which
the totals include. A sampler thread in the orchestrating process records, every
`SAMPLE_INTERVAL_S`, the CPU series, memory (RSS of the server tree) and the connections the
server holds open in PostgreSQL (`pg_stat_activity`). At both edges of the window it reads
how many statements the benchmark's database executed (`pg_stat_statements`) and how many
connections were opened to it (`pg_stat_database.sessions`, PostgreSQL 14+): a pool that
keeps its connections opens none once warm, one that churns opens some every second.

Every statement the monitor sends carries `MONITOR_MARKER`, so that the statement count can
leave out the monitor's own.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import threading
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, TypedDict

import psutil

from pgarena.bench.statements import MONITOR_MARKER, StatementCounter, StatementsSource

if TYPE_CHECKING:
    import psycopg

SAMPLE_INTERVAL_S = 0.25

# Above this many CPU cores' worth of "other" CPU on average over a window (a quarter of
# one core), something besides pgarena competed for the machine while it measured: another
# run, a build, a browser. On a 2-core machine that is an eighth of the capacity, enough to
# move throughput by more than the differences pgarena reports as real.
OTHER_CPU_WARNING_SHARE = 0.25

# The server under test's backends: by its `application_name` (`pgarena-<stack>`, set by
# `bench.servers`), so that the other stacks' servers, idle beside it with their pools open
# (`--server-lifetime repeat`), count neither in its connections nor in its pool's growth.
# Without a name (a `--target`), every client backend of the database but the monitor's.
_SERVER_BACKENDS = """datname = current_database() AND backend_type = 'client backend'
  AND pid <> pg_backend_pid()
  AND (%(application_name)s::text IS NULL OR application_name = %(application_name)s)"""

# At each edge of the window, in one statement so that the two figures describe one moment:
# the sessions ever established to the benchmark's database, and the server's backends now.
# Connections opened = the sessions' difference; the backends' difference is how much the
# pool grew; what was opened beyond that growth replaced connections the pool closed.
# Read apart (a sample up to SAMPLE_INTERVAL_S away), a pool still opening its last
# connection at an edge looked like churn. A new backend publishes its session with its
# first idle moment's statistics, a few milliseconds after it appears; the monitor's own
# connection was opened before the window. Sessions are counted for the whole database
# (PostgreSQL keeps no count per application); the other servers are idle and open none.
_EDGE_SQL = f"""
SELECT {MONITOR_MARKER}
  (SELECT sessions FROM pg_stat_database WHERE datname = current_database()),
  (SELECT count(*) FROM pg_stat_activity WHERE {_SERVER_BACKENDS})
"""

_CONNECTIONS_SQL = f"""
SELECT {MONITOR_MARKER} count(*), count(*) FILTER (WHERE state IS DISTINCT FROM 'idle')
FROM pg_stat_activity WHERE {_SERVER_BACKENDS}
"""


class ResourcePoint(TypedDict):
    """One step of a window's CPU series: what was used since the previous point.

    `t_monotonic` is `time.monotonic()` (CLOCK_MONOTONIC, the same clock in every process
    on the machine) when the point was taken; the first point's increments count from the
    window's start (`WindowUsage.started_monotonic`). CPU values are CPU seconds used in
    that step (increments, not cumulative), so each column sums to the window's total; None
    when that process tree is not known (a remote PostgreSQL, a `--target` server).
    """

    t_monotonic: float
    server_cpu_s: float | None
    postgres_cpu_s: float | None
    machine_busy_cpu_s: float


@dataclass
class WindowUsage:
    """Resources used in one measured window (CPU in CPU seconds, memory in bytes).

    `statements` counts the statements the benchmark's database executed in the window,
    the monitor's own left out; `statements_source` says what was counted: statements
    (`pg_stat_statements`) or, without that extension, transactions
    (`pg_stat_database.transactions`: commits + rollbacks, which PostgreSQL publishes up
    to a second late, so the count is approximate at the window's edges).
    `new_connections` counts the connections opened to that database in the window
    (`pg_stat_database.sessions`; None before PostgreSQL 14 or without a database), and
    `db_connections_growth` how many more the server held at the window's end than at its
    start (read in the same statement as the sessions): a pool still growing to its size
    opens connections without churning.
    `generator_cpu_s` and `other_cpu_s` are None until `with_generator_cpu` fills them in.
    """

    wall_s: float
    server_cpu_s: float | None
    server_rss_peak_bytes: int | None
    server_rss_mean_bytes: int | None
    postgres_cpu_s: float | None
    machine_busy_cpu_s: float
    db_connections_max: int | None
    db_connections_active_max: int | None
    started_monotonic: float = 0.0
    series: list[ResourcePoint] = field(default_factory=list)
    statements: int | None = None
    statements_source: StatementsSource | None = None
    new_connections: int | None = None
    db_connections_growth: int | None = None
    generator_cpu_s: float | None = None
    other_cpu_s: float | None = None

    def with_generator_cpu(self, generator_cpu_s: float) -> WindowUsage:
        """A copy that knows the generator's CPU in this window, and so the others' CPU."""
        other = other_cpu_seconds(
            self.machine_busy_cpu_s, self.server_cpu_s, self.postgres_cpu_s, generator_cpu_s
        )
        return dataclasses.replace(self, generator_cpu_s=generator_cpu_s, other_cpu_s=other)


@dataclass(frozen=True)
class _Reading:
    """Cumulative CPU seconds at one moment (trees None when not watched)."""

    t_monotonic: float
    server_cpu_s: float | None
    postgres_cpu_s: float | None
    machine_busy_cpu_s: float
    server_pids: tuple[int, ...]


LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})
# Listeners that forward a container's published port: their CPU is not the service's.
PORT_FORWARDERS = frozenset({"docker-proxy", "rootlessport", "slirp4netns"})


def listening_pid(host: str, port: int) -> int | None:
    """The process serving `host:port` when it runs on this machine (a loopback host), so a
    `--target` started by hand is measured as pgarena's own servers are: the root of the
    processes holding the listening socket (a server's workers share their parent's), whose
    tree is then counted. None when the host is another machine, when nothing this user may
    see listens there, when the listener only forwards to a container (its CPU is not the
    service's), or when the server is pgarena's own ancestor (its tree would count the load
    generator too)."""
    if host not in LOOPBACK:
        return None
    ours = {os.getpid(), *(parent.pid for parent in psutil.Process().parents())}
    try:
        pids = {
            connection.pid
            for connection in psutil.net_connections("tcp")
            if connection.status == psutil.CONN_LISTEN
            and connection.laddr
            and connection.laddr.port == port
            and connection.pid
        }
    except psutil.Error:
        return None
    for pid in pids - ours:
        with contextlib.suppress(psutil.Error):
            process = psutil.Process(pid)
            if process.ppid() not in pids and process.name() not in PORT_FORWARDERS:
                return pid
    return None


def process_description(pid: int) -> str:
    """'1234 (uvicorn app:app --port 8001)': which process a figure was measured on."""
    try:
        command = " ".join(psutil.Process(pid).cmdline()) or psutil.Process(pid).name()
    except psutil.Error:
        return str(pid)
    return f"{pid} ({command[:120]})"


def tree_cpu_seconds(root_pids: Sequence[int | None]) -> list[tuple[float, list[int]] | None]:
    """Cumulative CPU seconds of each root's process tree, and the tree's pids.

    One pass over all processes serves every tree. A tree's CPU is, over its live members,
    user + system + the CPU of their exited children they have reaped; None when the root
    is not running (or not given). A reap during the pass would make it count a child
    twice or not at all; the roots' children times show it, and the pass is taken again.
    """
    watched = [pid for pid in root_pids if pid is not None]
    for _attempt in range(3):
        before = [_reaped_cpu(pid) for pid in watched]
        parents: dict[int, int] = {}
        seconds: dict[int, float] = {}
        for process in psutil.process_iter(["ppid", "cpu_times"]):
            times, ppid = process.info["cpu_times"], process.info["ppid"]
            if times is not None and ppid is not None:
                parents[process.pid] = ppid
                seconds[process.pid] = (
                    times.user + times.system + times.children_user + times.children_system
                )
        if [_reaped_cpu(pid) for pid in watched] == before:
            break
    children: dict[int, list[int]] = defaultdict(list)
    for pid, ppid in parents.items():
        if pid != ppid:
            children[ppid].append(pid)
    trees: list[tuple[float, list[int]] | None] = []
    for root in root_pids:
        if root is None or root not in seconds:
            trees.append(None)
            continue
        members, pending = [], [root]
        while pending:
            pid = pending.pop()
            members.append(pid)
            pending.extend(children.get(pid, ()))
        trees.append((sum(seconds.get(pid, 0.0) for pid in members), members))
    return trees


def _reaped_cpu(pid: int) -> float | None:
    with contextlib.suppress(psutil.Error):
        times = psutil.Process(pid).cpu_times()
        return times.children_user + times.children_system
    return None


def rss_bytes(pids: Sequence[int]) -> int | None:
    """Resident memory of these processes together, in bytes (None for no process)."""
    total, seen = 0, False
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            total += psutil.Process(pid).memory_info().rss
            seen = True
    return total if seen else None


def postmaster_pid(database_url: str) -> int | None:
    """PostgreSQL's postmaster pid when the server runs on this machine and we may know it.

    Needs the right to read `data_directory` (superuser or pg_read_all_settings, as with the
    embedded server); for a remote server, or without that right, None.
    """
    import psycopg

    try:
        with psycopg.connect(database_url, connect_timeout=5) as connection:
            row = connection.execute(f"SHOW {MONITOR_MARKER} data_directory").fetchone()
    except psycopg.Error:
        return None
    if row is None:
        return None
    try:
        pid = int((Path(row[0]) / "postmaster.pid").read_text().splitlines()[0])
    except (OSError, ValueError, IndexError):
        return None
    return pid if psutil.pid_exists(pid) else None


class ResourceMonitor:
    """Reads CPU and statements at the edges of a window; samples the series inside it."""

    def __init__(
        self,
        server_pid: int | None,
        postgres_pid: int | None,
        database_url: str | None,
        application_name: str | None = None,
        *,
        read_only: bool = False,
    ) -> None:
        """`read_only`: a database that is not pgarena's (a target's), where the monitor
        must not create the pg_stat_statements extension it counts statements with."""
        self.server_pid = server_pid
        self.postgres_pid = postgres_pid
        self.database_url = database_url
        # The server's connections are the backends with this name (None: all of them).
        self._server = {"application_name": application_name}
        self._stop = threading.Event()
        self._lock = threading.Lock()  # orders the series points of the thread and stop()
        self._thread: threading.Thread | None = None
        self._connection: psycopg.Connection | None = None
        self._rss: list[int] = []
        self._connections: list[int] = []
        self._active: list[int] = []
        self._series: list[ResourcePoint] = []
        self._first: _Reading | None = None
        self._last: _Reading | None = None
        self._closed = False
        self._read_only = read_only
        self._statements = StatementCounter(create_extension=not read_only)
        self._edge_before: tuple[int, int] | None = None

    def prepare(self) -> None:
        """Connect to the database and choose how to count statements, ahead of the window.

        Optional (`start` does it otherwise), but connecting takes tens of milliseconds that
        would otherwise delay the window's opening behind the load generator's.
        """
        if self._connection is None:
            self._connection = self._connect()
            self._statements = StatementCounter(create_extension=not self._read_only)
            if self._connection is not None:
                self._statements.choose(self._connection)

    def start(self) -> None:
        """Open the window: statements and CPU read now, sampling from now on."""
        self._rss, self._connections, self._active, self._series = [], [], [], []
        self._stop.clear()
        self._closed = False
        self.prepare()
        if self._connection is not None:
            self._statements.start(self._connection)
            self._edge_before = self._read_edge()
        self._first = self._last = self._read(None)
        self._thread = threading.Thread(target=self._sample, name="pgarena-sampler", daemon=True)
        self._thread.start()

    def stop(self) -> WindowUsage:
        """Close the window and return what was used in it (an empty window if never opened)."""
        if self._thread is None:
            self.start()
        with self._lock:
            last = self._record()
            self._closed = True
        # The sampler stops before the last statement reading, so that none of its own
        # statements falls between that reading and its request to publish their counts.
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        statements = new_connections = growth = None
        if self._connection is not None:
            edge = self._read_edge()
            if edge is not None and self._edge_before is not None:
                new_connections = edge[0] - self._edge_before[0]
                growth = edge[1] - self._edge_before[1]
            statements = self._statements.stop(self._connection)
            with contextlib.suppress(Exception):
                self._connection.close()
            self._connection = None
        first, rss = self._first, self._rss
        assert first is not None

        def used(end: float | None, start: float | None) -> float | None:
            return None if end is None or start is None else end - start

        return WindowUsage(
            wall_s=last.t_monotonic - first.t_monotonic,
            server_cpu_s=used(last.server_cpu_s, first.server_cpu_s),
            server_rss_peak_bytes=max(rss) if rss else None,
            server_rss_mean_bytes=int(sum(rss) / len(rss)) if rss else None,
            postgres_cpu_s=used(last.postgres_cpu_s, first.postgres_cpu_s),
            machine_busy_cpu_s=last.machine_busy_cpu_s - first.machine_busy_cpu_s,
            db_connections_max=max(self._connections) if self._connections else None,
            db_connections_active_max=max(self._active) if self._active else None,
            started_monotonic=first.t_monotonic,
            series=list(self._series),
            statements=statements,
            statements_source=self._statements.source if statements is not None else None,
            new_connections=new_connections,
            db_connections_growth=growth,
        )

    def _read(self, previous: _Reading | None) -> _Reading:
        """Cumulative CPU now; a tree whose root has gone keeps its last figure."""
        machine = busy_cpu_seconds(psutil.cpu_times())
        now = time.monotonic()
        server, postgres = tree_cpu_seconds([self.server_pid, self.postgres_pid])

        def cumulative(tree: tuple[float, list[int]] | None, pid: int | None, old: float | None):
            if pid is None:
                return None
            if tree is not None:
                return tree[0]
            return old if old is not None else 0.0

        return _Reading(
            t_monotonic=now,
            server_cpu_s=cumulative(server, self.server_pid, previous and previous.server_cpu_s),
            postgres_cpu_s=cumulative(
                postgres, self.postgres_pid, previous and previous.postgres_cpu_s
            ),
            machine_busy_cpu_s=machine,
            server_pids=tuple(server[1]) if server is not None else (),
        )

    def _record(self) -> _Reading:
        """Take a reading and append the step since the previous one (hold `_lock`)."""
        previous = self._last
        assert previous is not None
        reading = self._read(previous)

        def step(now: float | None, before: float | None) -> float | None:
            return None if now is None or before is None else now - before

        self._series.append(
            {
                "t_monotonic": reading.t_monotonic,
                "server_cpu_s": step(reading.server_cpu_s, previous.server_cpu_s),
                "postgres_cpu_s": step(reading.postgres_cpu_s, previous.postgres_cpu_s),
                "machine_busy_cpu_s": reading.machine_busy_cpu_s - previous.machine_busy_cpu_s,
            }
        )
        self._last = reading
        return reading

    def _sample(self) -> None:
        assert self._first is not None
        due = self._first.t_monotonic
        server_pids = self._first.server_pids
        while True:
            rss = rss_bytes(server_pids)
            if rss is not None:
                self._rss.append(rss)
            self._poll_connections()
            # On a fixed grid, so the points stay SAMPLE_INTERVAL_S apart however long a
            # sample takes.
            due += SAMPLE_INTERVAL_S
            if self._stop.wait(max(0.0, due - time.monotonic())):
                return
            with self._lock:
                if self._closed:
                    return
                server_pids = self._record().server_pids

    def _poll_connections(self) -> None:
        if self._connection is None:
            return
        try:
            self._statements.own_statement()
            row = self._connection.execute(_CONNECTIONS_SQL, self._server).fetchone()
        except Exception:  # the database went away: stop asking, keep sampling the rest
            self._connection = None
            return
        if row is not None:
            self._connections.append(int(row[0]))
            self._active.append(int(row[1]))

    def _read_edge(self) -> tuple[int, int] | None:
        """Sessions ever established and backends now (None before PostgreSQL 14, or on any
        failure: no count rather than a wrong one)."""
        if self._connection is None or self._connection.info.server_version < 140000:
            return None
        try:
            self._statements.own_statement()
            row = self._connection.execute(_EDGE_SQL, self._server).fetchone()
        except Exception:  # the database went away
            return None
        if row is None or row[0] is None:
            return None
        return int(row[0]), int(row[1])

    def _connect(self) -> psycopg.Connection | None:
        if self.database_url is None:
            return None
        import psycopg

        try:
            return psycopg.connect(self.database_url, autocommit=True, connect_timeout=5)
        except psycopg.Error:
            return None


def busy_cpu_seconds(times: object) -> float:
    """CPU seconds the whole machine spent running something (summed over CPUs).

    Not idle or waiting for I/O, and not `steal` (a hypervisor ran another machine: nobody
    here used that time). Linux already counts `guest` time inside `user`.
    """
    names = set(times._fields) - {"idle", "iowait", "steal", "guest", "guest_nice"}  # type: ignore[attr-defined]
    return sum(getattr(times, name) for name in names)


def other_cpu_seconds(
    machine_busy: float, server: float | None, postgres: float | None, generator: float | None
) -> float:
    """CPU seconds the machine was busy with something other than the three known parts.

    Unknown parts (None) count as 0, so a PostgreSQL on this machine whose pid is unknown
    lands here. Clamped at 0: the parts' figures and the machine's are read a few
    milliseconds apart, in clock ticks, and can overshoot it by a little.
    """
    known = (server or 0.0) + (postgres or 0.0) + (generator or 0.0)
    return max(0.0, machine_busy - known)


def other_cpu_warning(other_cpu_s: float | None, wall_s: float) -> str | None:
    """A one-line warning when other programs used more than `OTHER_CPU_WARNING_SHARE`."""
    if other_cpu_s is None or wall_s <= 0:
        return None
    cores = other_cpu_s / wall_s
    if cores <= OTHER_CPU_WARNING_SHARE:
        return None
    return (
        f"other programs kept {cores:.2f} CPU cores busy during the measurement "
        f"(more than {OTHER_CPU_WARNING_SHARE:g}): they competed with what was measured"
    )


def cpu_shares(
    usage: WindowUsage, generator_cpu_s: float, cpus: int | None = None
) -> dict[str, float | None]:
    """Each part's share of the machine's total CPU capacity over the window (0..1).

    `other` is whatever else kept the machine busy (the orchestrator, other programs).
    """
    # psutil's machine-wide CPU times cover every CPU, so capacity counts them all too.
    capacity = usage.wall_s * (cpus or psutil.cpu_count() or 1)
    if capacity <= 0:
        return {"server": None, "postgres": None, "generator": None, "other": None}

    def share(seconds: float | None) -> float | None:
        return None if seconds is None else seconds / capacity

    other = other_cpu_seconds(
        usage.machine_busy_cpu_s, usage.server_cpu_s, usage.postgres_cpu_s, generator_cpu_s
    )
    return {
        "server": share(usage.server_cpu_s),
        "postgres": share(usage.postgres_cpu_s),
        "generator": share(generator_cpu_s),
        "other": other / capacity,
    }
