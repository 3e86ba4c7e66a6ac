"""`pgarena locust`'s run: the plan of `pgarena run`, measured by Locust, one result file.

The plan, the database, the servers under test, the resource monitor and the result file
are the arena's own (`bench.plan`, `bench.database`, `bench.servers`, `bench.resources`,
`results.file`); only the load comes from Locust. What the master reports for a cell is
turned into a `LoadResult`, the record pgarena's own generator produces, so the cell is
built by the same `measured_cell` and its steady state found the same way: `report` and
`compare` read the file unchanged. The cell's `resources.generator_workers` keeps how many
requests each Locust worker sent; they add up to the cell's `requests`.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, replace
from typing import Any

from rich.console import Console

from pgarena.bench.cells import failed_cell, measured_cell
from pgarena.bench.loadgen import LoadResult, SeriesPoint
from pgarena.bench.loadgen.job import ERROR_KINDS
from pgarena.bench.loadgen.series import series_point
from pgarena.bench.locust.cluster import ClusterFailed, ClusterOptions, LocustCluster
from pgarena.bench.locust.protocol import INTERVAL_S
from pgarena.bench.plan import Plan, PlannedCell
from pgarena.bench.resources import ResourceMonitor, WindowUsage, listening_pid, postmaster_pid
from pgarena.bench.runner import RunConfig, build_metadata
from pgarena.bench.servers import ServerFailed, ServerProcess, fill_pool
from pgarena.results.file import ResultWriter, utc_now
from pgarena.results.histograms import (
    decode_histogram,
    new_histogram,
)
from pgarena.results.model import Cell


@dataclass(frozen=True)
class LocustRun:
    """A `pgarena locust` invocation: the arena's config and the cluster's."""

    config: RunConfig
    cluster: ClusterOptions


def _series(result: dict[str, Any]) -> list[SeriesPoint]:
    """The master's per-interval answers of both phases as the series of a cell, `t` from
    the start of the warmup. The first and last interval of a phase are cut to the phase;
    answers a worker stamped just outside it (clocks read a few milliseconds apart) count
    in the phase's nearest interval, never as an interval of their own."""
    started = result["started"]
    bounds = {
        "warmup": (started, result["measure_started"]),
        "measure": (result["measure_started"], result["measure_ended"]),
    }
    points: list[SeriesPoint] = []
    for phase, (begin, end) in bounds.items():
        spans: dict[tuple[float, float], list[Any]] = {}
        first = int(begin // INTERVAL_S)
        last = max(first, int((end - 1e-9) // INTERVAL_S))
        for key, (ok, errors, encoded) in result[phase]["seconds"].items():
            index = min(max(int(key), first), last)
            low, high = max(index * INTERVAL_S, begin), min((index + 1) * INTERVAL_S, end)
            entry = spans.setdefault((low, high), [0, 0, new_histogram()])
            entry[0] += ok
            entry[1] += errors
            if ok:
                entry[2].add(decode_histogram(encoded))
        for low, high, (ok, errors, histogram) in _merge_short(sorted(spans.items())):
            points.append(
                series_point(
                    len(points), low - started, high - low, phase, (ok, errors, None), histogram
                )
            )
    return points


def _merge_short(
    spans: list[tuple[tuple[float, float], list[Any]]],
) -> list[tuple[float, float, list[Any]]]:
    """A phase's intervals, the cut ones shorter than half an interval (at its start and
    end) merged into their neighbour, as pgarena's generator does: a 20 ms sliver would
    make a rate of its own out of a handful of answers."""
    merged: list[tuple[float, float, list[Any]]] = []
    for index, ((low, high), entry) in enumerate(spans):
        if high - low < INTERVAL_S / 2 and merged:
            previous_low, _, previous = merged[-1]
            previous[0] += entry[0]
            previous[1] += entry[1]
            previous[2].add(entry[2])
            merged[-1] = (previous_low, high, previous)
        elif high - low < INTERVAL_S / 2 and index + 1 < len(spans):
            (_, next_high), following = spans[index + 1]
            following[0] += entry[0]
            following[1] += entry[1]
            following[2].add(entry[2])
            spans[index + 1] = ((low, next_high), following)
        else:
            merged.append((low, high, entry))
    return merged


def load_result(result: dict[str, Any], generator_cpu_s: float | None) -> LoadResult:
    """What the master reported for a cell, as pgarena's generator would have."""
    measure, warmup = result["measure"], result["warmup"]
    histogram = new_histogram()
    for _, (ok, _, encoded) in measure["seconds"].items():
        if ok:
            histogram.add(decode_histogram(encoded))
    errors = dict.fromkeys(ERROR_KINDS, 0) | measure["errors"]
    duration = result["measure_ended"] - result["measure_started"]
    return LoadResult(
        mode="closed",
        duration_s=duration,
        requests=measure["requests"],
        ok=measure["requests"] - measure["failures"],
        errors=errors,
        histogram=histogram,
        warmup_duration_s=result["measure_started"] - result["started"],
        warmup_requests=warmup["requests"],
        generator_cpu_s=generator_cpu_s,  # type: ignore[arg-type]
        processes=len(result["workers"]),
        # Wall clock and monotonic clock of this machine, tied together now.
        started_monotonic=time.monotonic() - (time.time() - result["started"]),
        series=_series(result),
    )


def _cpu_seconds(cluster: LocustCluster) -> float:
    total = 0.0
    for process in cluster.processes():
        try:
            times = process.cpu_times()
        except Exception:  # a worker that has gone: its CPU is no longer readable
            continue
        total += times.user + times.system
    return total


class _LocustArena:
    def __init__(self, run: LocustRun, cluster: LocustCluster, writer: ResultWriter) -> None:
        self.config = run.config
        self.plan: Plan = run.config.plan
        self.cluster = cluster
        self.writer = writer
        self.servers: dict[str, ServerProcess] = {}
        watched = self.config.watched_database_url
        self.postgres_pid = postmaster_pid(watched) if watched is not None else None

    def server(self, index: int, stack: str) -> ServerProcess:
        server = self.servers.get(stack)
        if server is not None and server.exit_code() is None:
            return server
        assert self.config.database_url is not None
        log = self.config.out_dir / "servers" / f"{index + 1:04d}-{stack}.log"
        url = self.config.server_url or self.config.database_url
        server = ServerProcess(stack, url, self.config.server_options, log)
        self.servers[stack] = server
        fill_pool(server, self.config.server_options.pooled_connections())
        return server

    def run_cell(self, index: int, planned: PlannedCell, console: Console) -> Cell:
        started_at = utc_now()
        server = None
        try:
            if self.plan.start_servers:
                server = self.server(index, planned.stack)
                url = f"http://{server.host}:{server.port}"
                server_pid = server.pid
            else:
                target = self.config.targets[planned.stack]
                url, server_pid = target.url, listening_pid(target.host, target.port)
        except ServerFailed as failure:
            return failed_cell(planned, started_at, str(failure))
        monitor = ResourceMonitor(
            server_pid,
            self.postgres_pid,
            self.config.watched_database_url,
            server.application_name if server else None,
            read_only=server is None,
        )
        monitor.prepare()
        usage: list[WindowUsage] = []
        cpu: list[float] = []

        def on_phase(phase: str) -> None:
            cpu.append(_cpu_seconds(self.cluster))
            if phase == "measuring":
                monitor.start()
            else:
                usage.append(monitor.stop())

        console.print(f"  {planned.stack} / {planned.workload.name} @ {planned.concurrency} users")
        try:
            result = self.cluster.run_cell(
                url,
                planned.workload.name,
                planned.concurrency,
                self.plan.warmup_s,
                self.plan.duration_s or 10.0,
                on_phase,
            )
        except ClusterFailed as error:
            if not usage:
                with contextlib.suppress(Exception):  # cleanup must not hide the failure
                    monitor.stop()
            return failed_cell(planned, started_at, f"Locust failed: {error}")
        generator_cpu = cpu[1] - cpu[0] if len(cpu) == 2 else None
        load = load_result(result, generator_cpu)
        error = None
        if load.requests == 0:
            error = "no answer at all: Locust's users sent nothing that was answered"
        elif load.ok == 0:
            kinds = ", ".join(f"{k}: {v}" for k, v in sorted(load.errors.items()) if v)
            error = f"no correct answer in {load.requests} requests ({kinds})"
        cell = measured_cell(planned, started_at, load, usage[0], error)
        resources = {**cell.resources, "generator_workers": result["measure"]["by_worker"]}
        log = str(server.log_path.relative_to(self.config.out_dir)) if server else None
        return replace(cell, resources=resources, server_log=log)

    def stop(self) -> None:
        for server in self.servers.values():
            server.stop()


def metadata(run: LocustRun) -> dict[str, Any]:
    """The arena's metadata, with the generator described as Locust."""
    import locust

    meta = build_metadata(run.config)
    options = run.cluster
    meta["generator"] = {
        "kind": f"locust {locust.__version__} (FastHttpUser, master and workers)",
        "processes": options.expect_workers,
        "local_workers": options.local_workers,
        "master": f"{options.master_host}:{options.master_port}",
        "timeout_s": run.config.timeout_s,
    }
    meta["notes"] = [
        *meta.get("notes", []),
        "load by Locust: generator CPU counts the master and the local workers only; "
        "series points every 0.25 s from the workers' per-interval histograms",
    ]
    return meta


def run_locust(run: LocustRun, console: Console) -> ResultWriter:
    """Run every cell of the plan through one Locust cluster; the result file as cells end."""
    from pgarena.bench.database import arena_database

    plan = replace(run.config.plan, series_interval_s=INTERVAL_S)
    run = replace(run, config=replace(run.config, plan=plan))
    if not plan.start_servers:
        return _run(run, console)
    with arena_database(console, run.config.data, purpose="pgarena locust") as database:
        config = replace(run.config, database=database)
        if config.pooler is None:
            return _run(replace(run, config=config), console)
        from pgarena.database.pgbouncer import pgbouncer

        with pgbouncer(database.url) as through:
            return _run(replace(run, config=replace(config, server_url=through)), console)


def _run(run: LocustRun, console: Console) -> ResultWriter:
    config = run.config
    remote = run.cluster.expect_workers - run.cluster.local_workers
    if remote > 0:
        console.print(
            f"waiting for {remote} more worker(s); on each machine run:\n  "
            f"{run.cluster.remote_command()}",
            soft_wrap=True,
            highlight=False,
        )
    writer = ResultWriter(config.out_dir, metadata(run), config.plan.to_dict())
    try:
        with console.status("starting the Locust master and workers"):
            cluster = LocustCluster(run.cluster, config.out_dir / "locust")
    except ClusterFailed:
        writer.finish("interrupted")
        raise
    arena = _LocustArena(run, cluster, writer)
    try:
        for index, planned in enumerate(config.plan.cells()):
            writer.add_cell(arena.run_cell(index, planned, console))
    except BaseException:
        writer.finish("interrupted")
        raise
    finally:
        arena.stop()
        cluster.close()
    writer.finish("complete")
    return writer
