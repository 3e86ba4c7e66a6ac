"""What `pgarena run` shows while it works and when it is done: a live progress line, one
line per finished cell, and the summary table read from the run's stored summaries.

Like any Unix tool, progress goes to stderr (`console`) and the result to stdout (`output`):
`pgarena run > out.txt` keeps the summary and `pgarena run | tee` shows it once.
"""

from __future__ import annotations

import itertools
import math
import time
from pathlib import Path
from typing import Any

from rich import box
from rich.console import Console, JustifyMethod
from rich.live import Live
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

from pgarena.bench.calibrate import TARGET_RATIO, Calibration
from pgarena.bench.loadgen import Progress
from pgarena.bench.plan import SERVER_START_ESTIMATE_S, Plan, PlannedCell, format_duration
from pgarena.results.model import Cell, Run, Summary
from pgarena.results.stats import Comparison, Estimate
from pgarena.results.verdicts import VERDICT_RULE, StackComparison, stack_comparisons

console = Console(stderr=True)  # progress and warnings
output = Console()  # the result: summary table, SLO lines, where the files are


class RichReporter:
    """Progress: cell n of N, elapsed, ETA, and a live line with requests/s and p99."""

    def __init__(self, plan: Plan, console: Console = console) -> None:
        self.plan = plan
        self.console = console
        self.total = len(plan.cells())
        self.started = time.monotonic()
        self.cell_started_at = self.started
        self.finished_cells = 0
        self.current = ""
        self.live_line = ""
        self.failed = 0
        self.live = Live(self._render(), console=console, refresh_per_second=4, transient=True)

    def __enter__(self) -> RichReporter:
        self.live.__enter__()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.live.__exit__(None, None, None)

    def _eta(self) -> float:
        remaining = self.total - self.finished_cells
        if self.finished_cells:
            per_cell = (time.monotonic() - self.started) / self.finished_cells
        else:
            starts = self.plan.server_starts() / max(1, self.total)
            per_cell = self.plan.cell_seconds() + starts * SERVER_START_ESTIMATE_S
        return max(0.0, remaining * per_cell - (time.monotonic() - self.cell_started_at))

    def _render(self) -> Text:
        elapsed = time.monotonic() - self.started
        text = Text()
        text.append(f"cell {min(self.finished_cells + 1, self.total)}/{self.total} ", "bold")
        text.append(self.current)
        text.append(f"  elapsed {format_duration(elapsed)}, ETA {format_duration(self._eta())}")
        if self.failed:
            text.append(f"  {self.failed} failed", "red")
        if self.live_line:
            text.append(f"\n  {self.live_line}", "cyan")
        return text

    def _refresh(self) -> None:
        self.live.update(self._render())

    def cell_started(self, index: int, total: int, planned: PlannedCell) -> None:
        """Show which cell runs."""
        self.cell_started_at = time.monotonic()
        self.current = (
            f"{planned.stack} / {planned.workload.name} / c={planned.concurrency} "
            f"/ r{planned.repeat}"
        )
        self.live_line = "starting"
        self._refresh()

    def progress(self, reading: Progress) -> None:
        """Live requests/s and p99."""
        p99 = f"{reading.p99_ms:.1f} ms" if reading.p99_ms is not None else "-"
        errors = f", {reading.errors} errors" if reading.errors else ""
        self.live_line = (
            f"{reading.phase}: {reading.rps:,.0f} req/s, p99 {p99}, "
            f"{reading.ok:,} ok{errors} ({reading.elapsed_s:.1f} s)"
        )
        self._refresh()

    def cell_finished(self, index: int, total: int, cell: Cell) -> None:
        """Log one line per cell above the live display."""
        self.finished_cells = index + 1
        key = cell.key
        label = f"{key.stack:<15} {key.workload:<11} c={key.concurrency:<4} r{cell.repeat}"
        if cell.measured and cell.rps is not None:
            within = cell.steady.rps if cell.steady is not None else None
            spread = f" ± {_half_width(within):,.0f}" if _half_width(within) else ""
            p99 = cell.latency_ms.get("p99")
            errors = f"  [red]{cell.error_count} errors[/]" if cell.error_count else ""
            self.console.print(
                f"  {label} {cell.rps:>9,.0f}{spread} req/s  p99 {p99 or 0:>8.1f} ms{errors}",
                highlight=False,
            )
        else:
            self.failed += 1
            self.console.print(f"  {label} [red]failed[/]: {cell.error}", highlight=False)
        self.live_line = ""
        self._refresh()


def _half_width(estimate: Estimate | None) -> float | None:
    if estimate is None or estimate.ci95_low is None or estimate.ci95_high is None:
        return None
    return (estimate.ci95_high - estimate.ci95_low) / 2


def _format(estimate: Estimate | None, digits: int = 0) -> str:
    if estimate is None or estimate.mean is None:
        return "-"
    text = f"{estimate.mean:,.{digits}f}"
    half = _half_width(estimate)
    return text + (f" ± {half:,.{digits}f}" if half is not None else " ± ?")


def _shares(summary: Summary) -> str:
    parts = [summary.cpu_share.get(part) for part in ("server", "postgres", "generator")]
    return "/".join("-" if part is None else f"{part:.0%}" for part in parts)


SHARES = "CPU srv/pg/gen"  # the summary's column of CPU shares
CPU_S = "req/CPU-s"  # and of requests per server CPU-second
# The columns a narrow terminal does without, last, as the note that says so names them.
LEFT_OUT = {
    SHARES: "CPU shares (server/PostgreSQL/generator)",
    CPU_S: "requests per server CPU-second",
}


def print_summary(run: Run, path: Path, out: Console = output) -> None:
    """The final table (means ± 95% interval, and each stack's verdict against the first),
    its numbered warnings, and where the results are."""
    base = run.stacks[0] if run.stacks else "-"
    notes: dict[str, int] = {}  # warning -> its number in the table
    rows = _summary_rows(run, notes)
    title = f"pgarena run: mean ± 95% interval; verdicts against {base}"
    headers = ("workload", "c", "stack", "req/s", f"vs {base}", "p99 ms", CPU_S, SHARES, "!")
    left = {"workload", "stack", f"vs {base}", SHARES, "!"}  # the figures: right
    justify: list[JustifyMethod] = ["left" if header in left else "right" for header in headers]
    table = Table(title=title)
    for header, side in zip(headers, justify, strict=True):
        table.add_column(header, justify=side)
    for row in rows:
        table.add_row(*row)
    needed = Measurement.get(out, out.options.update_width(10_000), table).maximum
    if needed <= out.width or not rows:
        out.print(table)
    else:
        _print_by_group(out, title, headers, justify, rows, needed)
    for warning, number in notes.items():
        out.print(f"  [yellow]{number}[/] {warning}", highlight=False)
    out.print(
        f"  verdicts against {run.stacks[0] if run.stacks else 'the first stack'}: {VERDICT_RULE}"
        f"; p99 (Nx): the p99's ratio to {base}'s, where its verdict calls a difference"
    )
    failed = len(run.failed_cells)
    if failed:
        out.print(f"[red]{failed} of {len(run.cells)} cells failed[/]")
    print_slo(run, out)
    # soft_wrap: a path split over two lines cannot be copied or parsed.
    out.print(f"results: {path}", soft_wrap=True, highlight=False)
    logs = path.parent / "servers"
    if logs.is_dir():
        out.print(f"server logs: {logs}", soft_wrap=True, highlight=False)


def _summary_rows(run: Run, notes: dict[str, int]) -> list[tuple[str, ...]]:
    """The summary table's rows, in the plan's order; each warning numbered in `notes`."""
    verdicts = {c.key: c for c in stack_comparisons(run)}
    order = {(w, c, s): i for i, (w, c, s) in enumerate(_plan_order(run))}
    summaries = sorted(
        run.summaries,
        key=lambda s: order.get((s.key.workload, s.key.concurrency, s.key.stack), len(order)),
    )
    rows = []
    for summary in summaries:
        marks = [str(notes.setdefault(w.message, len(notes) + 1)) for w in summary.warnings]
        comparison = verdicts.get(summary.key)
        verdict = "-"
        if comparison is not None and comparison.rps is not None:
            result = comparison.rps
            verdict = result.verdict
            if result.verdict != "within noise" and result.ratio is not None:
                verdict = f"{result.ratio:.2f}x {result.verdict}"
        rows.append(
            (
                summary.key.workload,
                str(summary.key.concurrency),
                summary.key.stack,
                _format(summary.rps),
                verdict,
                _format(summary.latency_p99_ms, 1) + _called_ratio(comparison),
                _format(summary.requests_per_server_cpu_s),
                _shares(summary),
                ",".join(marks),
            )
        )
    return rows


def _print_by_group(
    out: Console,
    title: str,
    headers: tuple[str, ...],
    justify: list[JustifyMethod],
    rows: list[tuple[str, ...]],
    needed: int,
) -> None:
    """The summary on a terminal too narrow for its table (`needed` columns; a CI log has
    80): one table per workload and concurrency, lined up, and without the CPU shares if
    they do not fit either, then without requests per CPU-second (a noisy run's wide
    intervals, "5,148 ± 1,063", need it). In one table every figure wrapped onto a second
    line and the stack names were cut."""
    groups = [(key, list(group)) for key, group in itertools.groupby(rows, lambda r: r[:2])]
    layouts = (("workload", "c"), ("workload", "c", SHARES), ("workload", "c", SHARES, CPU_S))
    for dropped in layouts:
        keep = [i for i, header in enumerate(headers) if header not in dropped]
        widths = [max(len(headers[i]), *(len(row[i]) for row in rows)) for i in keep]
        tables = []
        for (workload, concurrency), group in groups:
            table = Table(
                title=f"{workload}, c={concurrency}",
                title_justify="left",
                title_style="bold",
                box=box.SIMPLE_HEAD,
                show_edge=False,
                pad_edge=False,
                collapse_padding=True,
            )
            for i, width in zip(keep, widths, strict=True):
                # Folded where even this is too wide: cut, three names would read "async…".
                table.add_column(headers[i], justify=justify[i], width=width, overflow="fold")
            for row in group:
                table.add_row(*(row[i] for i in keep))
            tables.append(table)
        if Measurement.get(out, out.options.update_width(10_000), tables[0]).maximum <= out.width:
            break
    out.print(title, highlight=False)
    for table in tables:
        out.print()
        out.print(table)
    if left_out := [LEFT_OUT[name] for name in dropped if name in LEFT_OUT]:
        out.print(
            f"  {' and '.join(left_out)}: in the report, and here on a terminal {needed} "
            "columns wide",
            highlight=False,
        )


def print_slo(run: Run, out: Console = output) -> None:
    """One line per SLO and cell that failed, and a count of those that passed."""
    if not run.slo:
        return
    failed = [result for result in run.slo if not result.get("passed")]
    for result in failed:
        observed = result.get("observed")
        seen = "not measured" if observed is None else f"observed {observed:,.4g}"
        out.print(
            f"[red]SLO failed[/] {result['slo']} on {result['stack']}/{result['workload']}"
            f"@{result['concurrency']}: {seen}",
            highlight=False,
        )
    passed = len(run.slo) - len(failed)
    out.print(f"SLOs: {passed} of {len(run.slo)} checks passed")


def _called_ratio(comparison: StackComparison | None) -> str:
    """' (2.6x)': p99 against the base's, only where the p99 verdict calls a difference."""
    tail = comparison.latency_p99_ms if comparison is not None else None
    if tail is None or tail.verdict == "within noise" or tail.ratio is None:
        return ""
    return f" ({tail.ratio:.2g}x)"


def run_document(run: Run, path: Path, reports: list[Path] | None = None) -> dict[str, Any]:
    """What `pgarena run --json` prints: the run's summaries, each stack's verdicts against
    the first, the SLO results and where the files are, all read from the results model
    (the same figures as the table, for scripts rather than eyes)."""
    return {
        "results": str(path),
        "reports": [str(report) for report in reports or []],
        "status": run.status,
        "stacks": run.stacks,
        "cells": len(run.cells),
        "failed_cells": len(run.failed_cells),
        "summary": [summary.to_dict() for summary in run.summaries],
        "verdicts": [
            {
                **comparison.key.to_dict(),
                "base": comparison.base,
                "rps": _comparison(comparison.rps),
                "requests_per_server_cpu_s": _comparison(comparison.requests_per_server_cpu_s),
                "latency_p99_ms": _comparison(comparison.latency_p99_ms),
            }
            for comparison in stack_comparisons(run)
        ],
        "slo": [dict(result) for result in run.slo],
    }


def _comparison(comparison: Comparison | None) -> dict[str, Any] | None:
    if comparison is None:
        return None
    figures = {
        "ratio": comparison.ratio,
        "ci95_low": comparison.ci95_low,
        "ci95_high": comparison.ci95_high,
        "p_value": comparison.p_value,
    }
    # JSON has no NaN or infinity: a figure that is not a number is absent.
    finite = {name: v if v is None or math.isfinite(v) else None for name, v in figures.items()}
    return {**finite, "verdict": comparison.verdict}


def _plan_order(run: Run) -> list[tuple[str, int, str]]:
    # Stacks side by side for each workload and concurrency, as they compete.
    return [
        (workload, level, stack)
        for workload in run.workloads
        for level in run.concurrency
        for stack in run.stacks
    ]


def print_calibration(results: list[Calibration], where: str) -> None:
    """The calibration table: both tools' throughput, their ratio, CPU per request."""
    table = Table(
        title=f"generator calibration: {where}; medians over the rounds, the ratio's range in"
        " one round in brackets"
    )
    columns = (
        "clients",
        "wrk req/s",
        "pgarena req/s",
        "ratio",
        "CPU us/req pgarena / wrk",
        "errors pgarena / wrk",
        "",
    )
    for column in columns:
        table.add_column(column, justify="right", no_wrap=column == "ratio")
    for result in results:
        table.add_row(
            str(result.concurrency),
            f"{result.wrk_rps:,.0f}",
            f"{result.generator_rps:,.0f}",
            _ratio(result),
            f"{_microseconds(result.generator_cpu_us_per_request)}"
            f" / {_microseconds(result.wrk_cpu_us_per_request)}",
            f"{result.generator_errors} / {result.wrk_errors}",
            "[green]ok[/]" if result.passed else f"[red]< {TARGET_RATIO:.0%}[/]",
        )
    Console().print(table)


def _ratio(result: Calibration) -> str:
    """'101% (99-104)': the ratio of the medians, and its lowest and highest in one round."""
    if result.rounds < 2 or result.ratio_low is None or result.ratio_high is None:
        return f"{result.ratio:.0%}"
    return f"{result.ratio:.0%} ({100 * result.ratio_low:.0f}-{100 * result.ratio_high:.0f})"


def _microseconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"
