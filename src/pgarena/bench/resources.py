"""What each part of the machine used during a measured window.

CPU seconds come from psutil (user + system) for whole process trees: the server and all of
its workers, PostgreSQL's postmaster and all of its backends. A sampler thread in the
orchestrating process records memory (RSS of the server tree) and the connections the
server holds open in PostgreSQL (`pg_stat_activity`) a few times a second.
"""

from __future__ import annotations

import contextlib
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

SAMPLE_INTERVAL_S = 0.25

# Backends of the server under test, not the sampler's own connection.
_CONNECTIONS_SQL = """
SELECT count(*), count(*) FILTER (WHERE state IS DISTINCT FROM 'idle')
FROM pg_stat_activity
WHERE datname = current_database() AND backend_type = 'client backend'
  AND pid <> pg_backend_pid()
"""


def tree_cpu_seconds(root_pid: int | None) -> dict[int, float]:
    """CPU seconds (user + system) of a process and all its descendants, by pid."""
    if root_pid is None:
        return {}
    try:
        root = psutil.Process(root_pid)
        processes = [root, *root.children(recursive=True)]
    except psutil.Error:
        return {}
    seconds: dict[int, float] = {}
    for process in processes:
        with contextlib.suppress(psutil.Error):
            times = process.cpu_times()
            seconds[process.pid] = times.user + times.system
    return seconds


def tree_rss_bytes(root_pid: int | None) -> int | None:
    """Resident memory of a process and all its descendants, in bytes."""
    if root_pid is None:
        return None
    try:
        root = psutil.Process(root_pid)
        processes = [root, *root.children(recursive=True)]
    except psutil.Error:
        return None
    total = 0
    for process in processes:
        with contextlib.suppress(psutil.Error):
            total += process.memory_info().rss
    return total


def cpu_used(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU seconds spent between two `tree_cpu_seconds` snapshots.

    A process born in between counts whole; one that died in between is lost (its final
    figure is unknowable), which under-counts slightly for short-lived backends.
    """
    return sum(seconds - before.get(pid, 0.0) for pid, seconds in after.items())


def postmaster_pid(database_url: str) -> int | None:
    """PostgreSQL's postmaster pid when the server runs on this machine and we may know it.

    Needs the right to read `data_directory` (superuser or pg_read_all_settings, as with the
    embedded server); for a remote server, or without that right, None.
    """
    import psycopg

    try:
        with psycopg.connect(database_url, connect_timeout=5) as connection:
            row = connection.execute("SHOW data_directory").fetchone()
    except psycopg.Error:
        return None
    if row is None:
        return None
    try:
        pid = int((Path(row[0]) / "postmaster.pid").read_text().splitlines()[0])
    except (OSError, ValueError, IndexError):
        return None
    return pid if psutil.pid_exists(pid) else None


@dataclass
class WindowUsage:
    """Resources used in one measured window."""

    wall_s: float
    server_cpu_s: float | None
    server_rss_peak_bytes: int | None
    server_rss_mean_bytes: int | None
    postgres_cpu_s: float | None
    machine_busy_cpu_s: float
    db_connections_max: int | None
    db_connections_active_max: int | None


class ResourceMonitor:
    """Snapshots CPU at the edges of a window and samples memory and connections inside it."""

    def __init__(
        self, server_pid: int | None, postgres_pid: int | None, database_url: str | None
    ) -> None:
        self.server_pid = server_pid
        self.postgres_pid = postgres_pid
        self.database_url = database_url
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._rss: list[int] = []
        self._connections: list[int] = []
        self._active: list[int] = []
        self._start_wall = 0.0
        self._server_before: dict[int, float] = {}
        self._postgres_before: dict[int, float] = {}
        self._machine_before = psutil.cpu_times()

    def start(self) -> None:
        """Open the window: CPU snapshots now, sampling from now on."""
        self._rss, self._connections, self._active = [], [], []
        self._stop.clear()
        self._server_before = tree_cpu_seconds(self.server_pid)
        self._postgres_before = tree_cpu_seconds(self.postgres_pid)
        self._machine_before = psutil.cpu_times()
        self._start_wall = time.perf_counter()
        self._thread = threading.Thread(target=self._sample, name="pgarena-sampler", daemon=True)
        self._thread.start()

    def stop(self) -> WindowUsage:
        """Close the window and return what was used in it (an empty window if never opened)."""
        if self._thread is None:
            self.start()
        wall = time.perf_counter() - self._start_wall
        server_after = tree_cpu_seconds(self.server_pid)
        postgres_after = tree_cpu_seconds(self.postgres_pid)
        machine_after = psutil.cpu_times()
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        rss = self._rss
        return WindowUsage(
            wall_s=wall,
            server_cpu_s=cpu_used(self._server_before, server_after)
            if self.server_pid is not None
            else None,
            server_rss_peak_bytes=max(rss) if rss else None,
            server_rss_mean_bytes=int(sum(rss) / len(rss)) if rss else None,
            postgres_cpu_s=cpu_used(self._postgres_before, postgres_after)
            if self.postgres_pid is not None
            else None,
            machine_busy_cpu_s=_busy(machine_after) - _busy(self._machine_before),
            db_connections_max=max(self._connections) if self._connections else None,
            db_connections_active_max=max(self._active) if self._active else None,
        )

    def _sample(self) -> None:
        connection = self._connect()
        try:
            while True:
                rss = tree_rss_bytes(self.server_pid)
                if rss is not None:
                    self._rss.append(rss)
                if connection is not None:
                    try:
                        row = connection.execute(_CONNECTIONS_SQL).fetchone()
                    except Exception:  # the database went away: stop asking, keep sampling RSS
                        connection = None
                    else:
                        if row is not None:
                            self._connections.append(int(row[0]))
                            self._active.append(int(row[1]))
                if self._stop.wait(SAMPLE_INTERVAL_S):
                    return
        finally:
            if connection is not None:
                with contextlib.suppress(Exception):
                    connection.close()

    def _connect(self):  # type: ignore[no-untyped-def]
        if self.database_url is None:
            return None
        import psycopg

        try:
            return psycopg.connect(self.database_url, autocommit=True, connect_timeout=5)
        except psycopg.Error:
            return None


def _busy(times: object) -> float:
    """CPU seconds the whole machine spent not idle (summed over CPUs)."""
    total = sum(getattr(times, name) for name in times._fields)  # type: ignore[attr-defined]
    idle = getattr(times, "idle", 0.0) + getattr(times, "iowait", 0.0)
    return total - idle


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

    known = (usage.server_cpu_s or 0.0) + (usage.postgres_cpu_s or 0.0) + generator_cpu_s
    return {
        "server": share(usage.server_cpu_s),
        "postgres": share(usage.postgres_cpu_s),
        "generator": share(generator_cpu_s),
        "other": max(0.0, usage.machine_busy_cpu_s - known) / capacity,
    }
