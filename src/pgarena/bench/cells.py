"""From what the load generator and the resource monitor measured to a `Cell` record.

The generator's time series (requests, errors and latency per interval) is stamped from the
start of its load; the monitor's CPU samples are stamped with the same monotonic clock in
another process. Each monitor sample is added to the generator interval it falls in, so
every point of a cell's series says what the server, PostgreSQL and the rest of the machine
did while those requests were answered.
"""

from __future__ import annotations

from typing import Any

from pgarena.bench.loadgen import LoadResult
from pgarena.bench.plan import PlannedCell
from pgarena.bench.resources import WindowUsage, cpu_shares, other_cpu_seconds
from pgarena.results.model import Cell, CellKey, SeriesPoint


def cell_key(planned: PlannedCell) -> CellKey:
    """The results model's key of a planned cell."""
    return CellKey(planned.stack, planned.workload.name, planned.concurrency)


def failed_cell(planned: PlannedCell, started_at: str, error: str) -> Cell:
    """A cell that could not be measured, and why."""
    return Cell(cell_key(planned), planned.repeat, "failed", error, started_at)


def merge_series(result: LoadResult, usage: WindowUsage) -> tuple[SeriesPoint, ...]:
    """The generator's points with the server's, PostgreSQL's and other processes' CPU
    seconds of the same intervals.

    A monitor sample covers the time since the previous one (every 0.25 s) and a point is
    shorter (0.1 s), so each sample's CPU is spread over the points it overlaps, in
    proportion to the overlap. Points outside the monitored window (the warmup) have none.
    """
    spans = [(point.t, point.t + point.duration_s) for point in result.series]
    sums = [{"server": 0.0, "postgres": 0.0, "busy": 0.0} for _ in spans]
    covered = [False for _ in spans]
    begin = usage.started_monotonic - result.started_monotonic
    for sample in usage.series:
        end = sample["t_monotonic"] - result.started_monotonic
        length = end - begin
        for index, (low, high) in enumerate(spans):
            overlap = min(end, high) - max(begin, low)
            if length <= 0 or overlap <= 0:
                continue
            share = overlap / length
            covered[index] = True
            sums[index]["server"] += (sample["server_cpu_s"] or 0.0) * share
            sums[index]["postgres"] += (sample["postgres_cpu_s"] or 0.0) * share
            sums[index]["busy"] += sample["machine_busy_cpu_s"] * share
        begin = end
    points = []
    for index, point in enumerate(result.series):
        data: dict[str, Any] = point.to_dict()
        if covered[index]:
            cpu = sums[index]
            data["server_cpu_s"] = cpu["server"]
            data["postgres_cpu_s"] = cpu["postgres"]
            data["other_cpu_s"] = other_cpu_seconds(
                cpu["busy"], cpu["server"], cpu["postgres"], point.generator_cpu_s
            )
        points.append(SeriesPoint.from_dict(data))
    return tuple(points)


def measured_cell(
    planned: PlannedCell,
    started_at: str,
    result: LoadResult,
    usage: WindowUsage,
    error: str | None,
) -> Cell:
    """A measured cell: the window's totals, and its series for the steady-state figures
    that `results` computes when the cell is written."""
    usage = usage.with_generator_cpu(result.generator_cpu_s)
    server_cpu = usage.server_cpu_s
    statements = usage.statements
    return Cell(
        key=cell_key(planned),
        repeat=planned.repeat,
        status="failed" if error else "ok",
        error=error,
        started_at=started_at,
        mode=result.mode,
        duration_s=result.duration_s,
        requests=result.requests,
        ok=result.ok,
        rps=result.rps,
        errors=result.errors,
        latency_ms=result.latency_ms(),
        histogram=result.encoded_histogram(),
        warmup={"duration_s": result.warmup_duration_s, "requests": result.warmup_requests},
        resources={
            "server_cpu_s": server_cpu,
            "server_rss_peak_bytes": usage.server_rss_peak_bytes,
            "server_rss_mean_bytes": usage.server_rss_mean_bytes,
            "postgres_cpu_s": usage.postgres_cpu_s,
            "generator_cpu_s": result.generator_cpu_s,
            "other_cpu_s": usage.other_cpu_s,
            "db_connections_max": usage.db_connections_max,
            "db_connections_active_max": usage.db_connections_active_max,
            "machine_busy_cpu_s": usage.machine_busy_cpu_s,
            "statements": statements,
            "statements_source": usage.statements_source,
            "new_connections": usage.new_connections,
            "db_connections_growth": usage.db_connections_growth,
        },
        requests_per_server_cpu_s=result.ok / server_cpu if server_cpu else None,
        cpu_share=cpu_shares(usage, result.generator_cpu_s),
        statements_per_request=statements / result.requests
        if statements is not None and result.requests
        else None,
        new_connections_per_s=usage.new_connections / usage.wall_s
        if usage.new_connections is not None and usage.wall_s > 0
        else None,
        series=merge_series(result, usage),
    )
