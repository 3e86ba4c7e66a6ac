"""The report's tables as data, so that Markdown and HTML show exactly the same figures.

A `Table` is a header and rows of `Entry`s: the text a reader sees, a sort key for the
HTML's sortable columns, and the warnings of the measurement the entry comes from.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from typing import Any

from pgarena.report.figures import CPU_PARTS, CellFigures, RunFigures
from pgarena.report.formatting import (
    MISSING,
    diff_interval,
    diff_percent,
    mean_with_interval,
    mebibytes,
    number,
    percent,
    seconds,
    targets,
    verdict,
)


@dataclass(frozen=True)
class Entry:
    """One table cell: its text, how it sorts, and the warnings that concern it."""

    text: str
    sort: float | str | None = None
    warnings: tuple[str, ...] = ()
    kind: str = ""  # "faster" / "slower" / "noise" for verdicts, so HTML can colour them


@dataclass(frozen=True)
class Table:
    """A header and rows; `numeric` says which columns hold numbers (right-aligned)."""

    header: list[str]
    rows: list[list[Entry]] = field(default_factory=list)
    numeric: list[bool] = field(default_factory=list)


def _figure(summary: Any, cell: CellFigures | None = None) -> Entry:
    return Entry(
        text=mean_with_interval(summary),
        sort=summary.mean if summary is not None else None,
        warnings=tuple(cell.warnings) if cell is not None else (),
    )


def _verdict_entry(comparison: Any, stack: str, base: str) -> Entry:
    text = verdict(comparison, stack, base)
    kind = {"faster": "faster", "slower": "slower"}.get(
        comparison.verdict if comparison is not None else "", "noise"
    )
    return Entry(text=text, sort=text, kind=kind)


def throughput_table(figures: RunFigures, workload: str) -> Table:
    """Requests per second by concurrency, a column per stack, each stack vs the first."""
    base = figures.base_stack or ""
    others = figures.stacks[1:]
    # A condition every cell of the run shares gets a column, so that tables of runs with
    # and without it cannot be mistaken for each other (one today: the pooler).
    pooler = (figures.metadata.get("server") or {}).get("pooler")
    conditions = [("Pooler", str(pooler))] if pooler else []
    header = ["Concurrency", *[name for name, _ in conditions]]
    header += [f"{stack} (req/s)" for stack in figures.stacks]
    numeric = [True] + [False] * len(conditions) + [True] * len(figures.stacks)
    for stack in others:
        header += [f"{stack} vs {base}", "95% interval", "Verdict"]
        numeric += [True, True, False]
    table = Table(header=header, numeric=numeric)
    for level in figures.levels_of(workload):
        row = [Entry(str(level), level), *[Entry(value, value) for _, value in conditions]]
        for stack in figures.stacks:
            cell = figures.cell(stack, workload, level)
            row.append(_figure(cell.rps if cell else None, cell))
        for stack in others:
            comparison = figures.comparison(stack, workload, level)
            rps = comparison.rps if comparison else None
            row += [
                Entry(diff_percent(rps), rps.ratio if rps else None),
                Entry(diff_interval(rps), rps.ci95_low if rps else None),
                _verdict_entry(rps, stack, base),
            ]
        table.rows.append(row)
    return table


def cpu_share_text(cell: CellFigures) -> str:
    """'45.0% / 30.0% / 20.0%': server / PostgreSQL / generator share of the machine's CPU."""
    share = cell.cpu_share
    if not share:
        return MISSING
    return " / ".join(percent(share.get(part)) for part in CPU_PARTS)


def _tail_entry(comparison: Any) -> Entry:
    """'-38% (-45% to -30%)' when the p99 verdict calls a difference, else what it says."""
    if comparison is None:
        return Entry(MISSING)
    if comparison.verdict == "within noise" or comparison.ci95_low is None:
        return Entry(verdict(comparison, "", ""), comparison.ratio, kind="noise")
    text = f"{diff_percent(comparison)} ({diff_interval(comparison)})"
    return Entry(text, comparison.ratio, kind=comparison.verdict)


def latency_table(figures: RunFigures, workload: str) -> Table:
    """p50/p99 latency (p99 against the first stack's, with its verdict), requests per
    server CPU-second, statements per request (ORM and raw stacks side by side), new
    PostgreSQL connections per second after warmup (0 for a pool that keeps its
    connections), memory and CPU share per cell."""
    base = figures.base_stack or ""
    table = Table(
        header=[
            "Concurrency",
            "Stack",
            "p50 (ms)",
            "p99 (ms)",
            f"p99 vs {base}",
            "req / server CPU-s",
            "Statements / req",
            "New conns / s",
            "Peak RSS (MiB)",
            "CPU server / PG / generator",
        ],
        numeric=[True, False, True, True, True, True, True, True, True, True],
    )
    for cell in figures.cells_of(workload):
        comparison = figures.comparison(cell.stack, workload, cell.concurrency)
        share = cell.cpu_share or {}
        statements = cell.summary.statements_per_request
        churn = cell.summary.new_connections_per_s
        table.rows.append(
            [
                Entry(str(cell.concurrency), cell.concurrency),
                Entry(cell.stack, cell.stack, tuple(cell.warnings)),
                _figure(cell.latency_p50_ms),
                _figure(cell.latency_p99_ms),
                _tail_entry(comparison.latency_p99_ms if comparison else None),
                _figure(cell.requests_per_server_cpu_s),
                Entry(number(statements), statements),
                Entry(number(churn), churn),
                Entry(mebibytes(cell.peak_rss_bytes), cell.peak_rss_bytes),
                Entry(cpu_share_text(cell), share.get("server")),
            ]
        )
    return table


def warnings_of(figures: RunFigures, workload: str) -> list[str]:
    """'async at concurrency 4: unstable: CV 14% > 10%' for every warned cell of a workload."""
    cells = figures.cells_of(workload)
    return [f"{cell.label}: {warning}" for cell in cells for warning in cell.warnings]


def failure_table(figures: RunFigures) -> Table:
    """One row per failed repeat: stack, workload, concurrency, repeat, reason."""
    table = Table(
        header=["Stack", "Workload", "Concurrency", "Repeat", "Reason"],
        numeric=[False, False, True, True, False],
    )
    for cell in figures.failed_cells:
        table.rows.append(
            [
                Entry(cell.key.stack),
                Entry(cell.key.workload),
                Entry(str(cell.key.concurrency), cell.key.concurrency),
                Entry(str(cell.repeat), cell.repeat),
                Entry(cell.error or "unknown"),
            ]
        )
    return table


def slo_table(figures: RunFigures) -> Table:
    """One row per SLO and cell it was checked on: what was observed, and the verdict."""
    table = Table(
        header=["SLO", "Stack", "Workload", "Concurrency", "Observed", "Result"],
        numeric=[False, False, False, True, True, False],
    )
    for result in figures.run.slo:
        observed = result.get("observed")
        table.rows.append(
            [
                Entry(str(result["slo"])),
                Entry(str(result.get("stack"))),
                Entry(str(result.get("workload"))),
                Entry(str(result.get("concurrency")), result.get("concurrency")),
                Entry(MISSING if observed is None else f"{observed:,.4g}", observed),
                Entry("pass" if result["passed"] else f"FAIL {result.get('reason') or ''}".strip()),
            ]
        )
    return table


def _size(value: Any) -> str:
    if isinstance(value, int | float) and value >= 2**30:
        return f"{value / 2**30:.1f} GiB"
    return str(value)


def _value(value: Any, missing: str) -> str:
    if value is None:
        return missing
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _pairs(block: dict[str, Any], *, missing: str = MISSING) -> str:
    """'a=1, b=2' for the plain values of a block (nested objects are shown elsewhere)."""
    return ", ".join(
        f"{key}={_value(value, missing)}"
        for key, value in block.items()
        if not isinstance(value, dict | list)
    )


def metadata_rows(figures: RunFigures) -> list[tuple[str, str]]:
    """(name, value) pairs: where, how and with what the run was measured."""
    meta, plan, run = figures.metadata, figures.plan, figures.run
    machine = meta.get("machine") or {}
    postgres = meta.get("postgres") or {}
    rows: list[tuple[str, str]] = [
        ("Status", run.status),
        ("Started", run.started_at),
        ("Finished", run.finished_at or MISSING),
    ]
    if machine:
        rows += [
            ("Machine", f"{machine.get('hostname', '?')}: {machine.get('cpu_model', '?')}"),
            (
                "CPUs / memory",
                f"{machine.get('cpu_count', '?')} / {_size(machine.get('memory_bytes', '?'))}",
            ),
            ("OS / Python", f"{machine.get('os', '?')} / {machine.get('python', '?')}"),
        ]
    revision = meta.get("git_revision") or "unknown"
    rows.append(("pgarena", f"{meta.get('pgarena_version', '?')} (git {revision})"))
    if meta.get("target"):
        rows.append(("Target", targets(meta["target"])))
    if postgres:
        rows.append(("PostgreSQL", str(postgres.get("version", "?"))))
        settings = postgres.get("settings") or {}
        if settings:
            rows.append(("PostgreSQL settings", _pairs(dict(sorted(settings.items())))))
    if meta.get("server"):
        # None means "the stack's default", which is what the server then used.
        rows.append(("Server", _pairs(meta["server"], missing="default")))
    for name, key in (("Load generator", "generator"), ("Data", "data")):
        if meta.get(key):
            rows.append((name, _pairs(meta[key])))
    if plan:
        shown = {
            k: v for k, v in plan.items() if v is not None and k not in ("stacks", "workloads")
        }
        rows.append(("Plan", _pairs(shown)))
    packages = meta.get("packages") or {}
    if packages:
        rows.append(("Packages", ", ".join(f"{k} {v}" for k, v in sorted(packages.items()))))
    rows += [("Note", str(note)) for note in meta.get("notes") or []]
    return rows


def workload_description(figures: RunFigures, workload: str) -> str:
    """What the workload's requests do, as the run's plan describes it ('' if it does not)."""
    descriptions = figures.plan.get("workload_descriptions") or {}
    return str(descriptions.get(workload) or "")


def command_line(figures: RunFigures) -> str:
    """The command line that produced the run, as one shell line."""
    return shlex.join(str(word) for word in figures.metadata.get("command_line") or [])


def describe_plan(figures: RunFigures) -> str:
    """'3 interleaved repeats of 10 s per cell after a 3 s warmup, closed loop'."""
    plan = figures.plan
    if plan.get("duration_s"):
        length = seconds(plan["duration_s"])
    elif plan.get("requests"):
        length = f"{plan['requests']} requests"
    else:
        length = "unknown length"
    mode = f"open loop at {plan.get('rate')} req/s" if plan.get("mode") == "open" else "closed loop"
    warmup = f" after a {seconds(plan['warmup_s'])} warmup" if plan.get("warmup_s") else ""
    return f"{plan.get('repeats', '?')} interleaved repeats of {length} per cell{warmup}, {mode}"
