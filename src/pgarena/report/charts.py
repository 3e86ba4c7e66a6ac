"""The report's charts, drawn with matplotlib (Agg, no display needed).

Each chart is built once and written twice: as `charts/<name>.png` for READMEs and as an
SVG string inlined in `report.html` (so the HTML needs no network and no chart library).
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # before anything imports pyplot: reports run on headless machines

from hdrh.histogram import HdrHistogram
from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

from pgarena.report.figures import CPU_PARTS, CellFigures, RunFigures
from pgarena.results.histograms import new_histogram

STYLE = {
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.titleweight": "bold",
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "legend.frameon": False,
    "svg.fonttype": "path",  # glyphs as paths: the SVG looks the same without the font
}
# Colourblind-friendly (Okabe-Ito), assigned to stacks in the run's order.
STACK_COLORS = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#000000"]
CPU_COLORS = {"server": "#0072B2", "postgres": "#009E73", "generator": "#E69F00", "idle": "#E5E5E5"}
CPU_LABELS = {
    "server": "server",
    "postgres": "PostgreSQL",
    "generator": "load generator",
    "idle": "idle / other",
}
# Figure widths in inches, chosen so that text renders at about the same size on screen:
# half-width charts sit two to a row in the HTML, wide ones span the page.
HALF_WIDTH, WIDE_WIDTH = 5.6, 11.0
# Percentiles of the latency curves: 0, 50, 90, 99, ... as "nines" on a log axis.
PERCENTILE_TICKS = [0.0, 50.0, 90.0, 99.0, 99.9, 99.99, 99.999]


@dataclass
class Chart:
    """One chart: `name` is its file stem, `workload` None for run-wide charts."""

    name: str
    title: str
    workload: str | None
    figure: Figure

    def write_png(self, directory: Path) -> Path:
        """Write `<directory>/<name>.png` and return its path."""
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"{self.name}.png"
        self.figure.savefig(path, format="png", dpi=150, bbox_inches="tight")
        return path

    def svg(self) -> str:
        """The chart as an inline `<svg>` element that scales with its container."""
        buffer = io.StringIO()
        with matplotlib.rc_context(STYLE):
            self.figure.savefig(buffer, format="svg", bbox_inches="tight")
        text = buffer.getvalue()
        text = text[text.index("<svg") :]
        # Drop the fixed size (the viewBox stays), so CSS can size the chart.
        head, rest = text.split(">", 1)
        head = re.sub(r'\s(width|height)="[^"]*"', "", head)
        label = self.title.replace('"', "&quot;")
        return f'{head} role="img" aria-label="{label}">{rest}'


def stack_color(figures: RunFigures, stack: str) -> str:
    """The same colour for a stack in every chart of a report."""
    index = figures.stacks.index(stack) if stack in figures.stacks else len(figures.stacks)
    return STACK_COLORS[index % len(STACK_COLORS)]


def _concurrency_axis(axes, levels: Sequence[int]) -> None:
    """Concurrency on a log axis when it spans a wide range, labelled with the real levels."""
    if len(levels) > 1 and max(levels) / max(min(levels), 1) >= 8:
        axes.set_xscale("log", base=2)
    axes.xaxis.set_major_locator(FixedLocator(list(levels)))
    axes.xaxis.set_minor_locator(NullLocator())
    axes.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    axes.set_xlabel("concurrency (connections)")


def _summary_chart(
    figures: RunFigures, workload: str, attribute: str, name: str, title: str, ylabel: str
) -> Chart | None:
    """Mean per stack vs concurrency, with the 95% interval as error bars."""
    levels = figures.levels_of(workload)
    with matplotlib.rc_context(STYLE):
        figure = Figure(figsize=(HALF_WIDTH, 3.5), layout="constrained")
        axes = figure.add_subplot()
        drawn = False
        count = len(figures.stacks)
        for index, stack in enumerate(figures.stacks):
            xs, ys, below, above = [], [], [], []
            for level in levels:
                cell = figures.cell(stack, workload, level)
                summary = getattr(cell, attribute) if cell else None
                if summary is None or summary.mean is None:
                    continue
                # Nudge the stacks apart so that their interval bars do not hide each other.
                xs.append(level * (1 + 0.04 * (index - (count - 1) / 2)))
                ys.append(summary.mean)
                low = summary.ci95_low if summary.ci95_low is not None else summary.mean
                high = summary.ci95_high if summary.ci95_high is not None else summary.mean
                below.append(max(summary.mean - low, 0.0))
                above.append(max(high - summary.mean, 0.0))
            if not xs:
                continue
            drawn = True
            axes.errorbar(
                xs,
                ys,
                yerr=[below, above],
                label=stack,
                color=stack_color(figures, stack),
                marker="o",
                markersize=4,
                linewidth=1.8,
                capsize=4,
                elinewidth=1.2,
            )
        if not drawn:
            return None
        _concurrency_axis(axes, levels)
        axes.set_ylim(bottom=0)
        axes.set_ylabel(ylabel)
        axes.set_title(title)
        axes.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:,.0f}"))
        axes.legend(loc="best", ncols=min(count, 3))
    return Chart(name=name, title=title, workload=workload, figure=figure)


def throughput_chart(figures: RunFigures, workload: str) -> Chart | None:
    """Requests per second vs concurrency, one line per stack, 95% interval bars."""
    return _summary_chart(
        figures,
        workload,
        "rps",
        f"throughput-{workload}",
        f"{workload}: requests per second (95% interval)",
        "requests / s",
    )


def efficiency_chart(figures: RunFigures, workload: str) -> Chart | None:
    """Requests per server CPU-second vs concurrency: the figure that survives a noisy box."""
    return _summary_chart(
        figures,
        workload,
        "requests_per_server_cpu_s",
        f"cpu-efficiency-{workload}",
        f"{workload}: requests per server CPU-second (95% interval)",
        "requests / server CPU-s",
    )


def merged_histogram(cell: CellFigures) -> HdrHistogram | None:
    """The latency histogram of all repeats of a cell (HDR histograms add up exactly)."""
    if not cell.histograms:
        return None
    merged = new_histogram()  # the harness's range and precision
    for encoded in cell.histograms:
        merged.decode_and_add(encoded.encode("ascii"))
    return merged if merged.get_total_count() else None


def percentile_curve(histogram: HdrHistogram) -> tuple[list[float], list[float]]:
    """(x, latency ms) points; x = 1/(1-p), so that 90, 99, 99.9% are evenly spaced."""
    total = histogram.get_total_count()
    # Beyond 1 - 1/total every percentile is the maximum; stop there.
    deepest = math.log10(max(total, 2))
    xs, ys = [], []
    steps = 60
    for step in range(steps + 1):
        nines = deepest * step / steps
        percentile = 100.0 * (1 - 10.0**-nines)
        xs.append(10.0**nines)
        ys.append(histogram.get_value_at_percentile(percentile) / 1000.0)
    return xs, ys


def _percentile_label(value: float, _position: object) -> str:
    percentile = 100.0 * (1 - 1 / value)
    return f"{percentile:g}%"


def _minor_log_label(value: float, _position: object) -> str:
    leading = f"{value:.0e}"[0]
    return f"{value:g}" if leading in "25" else ""


def latency_chart(figures: RunFigures, workload: str) -> Chart | None:
    """Latency by percentile from the merged HDR histograms, one panel per concurrency."""
    levels = [
        level
        for level in figures.levels_of(workload)
        if any(
            (cell := figures.cell(stack, workload, level)) and cell.histograms
            for stack in figures.stacks
        )
    ]
    if not levels:
        return None
    columns = min(len(levels), 3)
    rows = math.ceil(len(levels) / columns)
    title = f"{workload}: latency by percentile (all repeats, log scales)"
    with matplotlib.rc_context(STYLE):
        width = WIDE_WIDTH if columns > 1 else HALF_WIDTH
        figure = Figure(figsize=(width, 3.0 * rows + 0.6), layout="constrained")
        panels = figure.subplots(rows, columns, squeeze=False, sharey=True)
        for panel in panels.flat[len(levels) :]:
            panel.set_visible(False)
        for panel, level in zip(panels.flat, levels, strict=False):
            deepest = 1.0
            for stack in figures.stacks:
                cell = figures.cell(stack, workload, level)
                histogram = merged_histogram(cell) if cell else None
                if histogram is None:
                    continue
                xs, ys = percentile_curve(histogram)
                deepest = max(deepest, xs[-1])
                panel.plot(xs, ys, label=stack, color=stack_color(figures, stack), linewidth=1.6)
            panel.set_xscale("log")
            panel.set_yscale("log")
            ticks = [1 / (1 - p / 100) for p in PERCENTILE_TICKS if 1 / (1 - p / 100) <= deepest]
            panel.xaxis.set_major_locator(FixedLocator(ticks))
            panel.xaxis.set_minor_locator(NullLocator())
            panel.xaxis.set_major_formatter(FuncFormatter(_percentile_label))
            panel.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
            # Plain numbers at 2x and 5x of each decade, not matplotlib's "6 x 10^1".
            panel.yaxis.set_minor_formatter(FuncFormatter(_minor_log_label))
            panel.set_title(f"concurrency {level}", fontsize=9, fontweight="normal")
            panel.set_xlabel("percentile")
        for row in panels:
            row[0].set_ylabel("latency (ms)")
        handles, labels = panels.flat[0].get_legend_handles_labels()
        figure.legend(handles, labels, loc="outside lower center", ncols=min(len(labels), 6))
        figure.suptitle(title, fontsize=10, fontweight="bold")
    return Chart(name=f"latency-{workload}", title=title, workload=workload, figure=figure)


def cpu_share_chart(figures: RunFigures, workload: str) -> Chart | None:
    """Who used the machine's CPU in each cell: server, PostgreSQL, load generator, idle."""
    cells = [cell for cell in figures.cells_of(workload) if cell.cpu_share]
    if not cells:
        return None
    title = f"{workload}: share of the machine's CPU per cell (mean of repeats)"
    with matplotlib.rc_context(STYLE):
        figure = Figure(figsize=(WIDE_WIDTH, 1.1 + 0.28 * len(cells)), layout="constrained")
        axes = figure.add_subplot()
        labels = [f"{cell.stack} @ {cell.concurrency}" for cell in cells]
        positions = list(range(len(cells)))[::-1]  # first cell on top
        left = [0.0] * len(cells)
        for part in (*CPU_PARTS, "idle"):
            if part == "idle":
                widths = [max(0.0, 1.0 - used) for used in left]
            else:
                widths = [(cell.cpu_share or {}).get(part, 0.0) for cell in cells]
            axes.barh(
                positions,
                widths,
                left=left,
                height=0.7,
                color=CPU_COLORS[part],
                label=CPU_LABELS[part],
            )
            left = [start + width for start, width in zip(left, widths, strict=True)]
        axes.set_axisbelow(True)
        axes.set_yticks(positions, labels)
        axes.set_xlim(0, max(1.0, *left))
        axes.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:.0%}"))
        axes.grid(axis="y", visible=False)
        axes.set_xlabel("share of all cores")
        axes.set_title(title)
        figure.legend(loc="outside lower center", ncols=4)
    return Chart(name=f"cpu-share-{workload}", title=title, workload=workload, figure=figure)


def memory_chart(figures: RunFigures) -> Chart | None:
    """Peak server RSS per stack and concurrency (highest across workloads and repeats)."""
    levels = figures.concurrency
    peaks: dict[str, list[float]] = {}
    for stack in figures.stacks:
        values = []
        for level in levels:
            known = [
                cell.peak_rss_bytes
                for cell in figures.cells.values()
                if cell.stack == stack and cell.concurrency == level and cell.peak_rss_bytes
            ]
            values.append(max(known) / 2**20 if known else 0.0)
        if any(values):
            peaks[stack] = values
    if not peaks:
        return None
    title = "Peak server memory (RSS of all server processes, MiB)"
    with matplotlib.rc_context(STYLE):
        figure = Figure(figsize=(WIDE_WIDTH, 3.2), layout="constrained")
        axes = figure.add_subplot()
        width = 0.8 / len(levels)
        shades = [0.45 + 0.55 * (i + 1) / len(levels) for i in range(len(levels))]
        ticks, labels = [], []
        for index, stack in enumerate(peaks):
            for offset, (level, value) in enumerate(zip(levels, peaks[stack], strict=True)):
                x = index - 0.4 + width * (offset + 0.5)
                ticks.append(x)
                labels.append(str(level))
                if not value:
                    continue
                bar = axes.bar(
                    x,
                    value,
                    width=width * 0.92,
                    color=stack_color(figures, stack),
                    alpha=shades[offset],
                )
                axes.bar_label(bar, labels=[f"{value:.0f}"], fontsize=8, padding=2)
            # The stack's name under its group of bars, below the concurrency labels.
            axes.annotate(
                stack,
                xy=(index, 0),
                xycoords=("data", "axes fraction"),
                xytext=(0, -26),
                textcoords="offset points",
                ha="center",
                va="top",
                fontweight="bold",
            )
        axes.set_xticks(ticks, labels)
        axes.set_xlabel("concurrency, by stack", labelpad=22)
        axes.grid(axis="x", visible=False)
        axes.set_ylabel("MiB")
        axes.set_title(title)
    return Chart(name="memory", title=title, workload=None, figure=figure)


def series_chart(figures: RunFigures, workload: str) -> Chart | None:
    """Throughput and p99 over the time of one cell per stack (the workload's highest
    concurrency, first finished repeat), the fixed warmup shaded: whether a cell settled is
    seen here, not taken on trust."""
    levels = figures.levels_of(workload)
    cells = (
        [figures.cell(stack, workload, levels[-1]) for stack in figures.stacks] if levels else []
    )
    runs = [(cell.stack, cell.repeats[0]) for cell in cells if cell and cell.repeats]
    runs = [(stack, run) for stack, run in runs if run.series]
    if not runs:
        return None
    title = f"{workload} at concurrency {levels[-1]}: throughput and p99 over time (first repeat)"
    with matplotlib.rc_context(STYLE):
        figure = Figure(figsize=(WIDE_WIDTH, 3.8), layout="constrained")
        rate_axes, p99_axes = figure.subplots(1, 2)
        for stack, run in runs:
            times = [point.t for point in run.series]
            rates = [
                point.rps(figures.plan.get("series_interval_s") or 0.1) for point in run.series
            ]
            color = stack_color(figures, stack)
            rate_axes.plot(times, rates, label=stack, color=color, linewidth=1.2)
            p99_axes.plot(times, [p.p99_ms for p in run.series], color=color, linewidth=1.2)
            warmup_end = next((p.t for p in run.series if p.phase == "measure"), None)
            if warmup_end is not None:
                for axes in (rate_axes, p99_axes):
                    axes.axvspan(0, warmup_end, color="#E5E5E5", zorder=0)
        rate_axes.set_ylim(bottom=0)
        rate_axes.set_ylabel("requests / s")
        rate_axes.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:,.0f}"))
        p99_axes.set_yscale("log")
        p99_axes.set_ylabel("p99 latency (ms)")
        for axes in (rate_axes, p99_axes):
            axes.set_xlabel("seconds since the cell's load started (warmup shaded)")
        figure.suptitle(title)
        figure.legend(loc="outside lower center", ncols=len(runs), frameon=False)
    return Chart(name=f"series-{workload}", title=title, workload=workload, figure=figure)


def build_charts(figures: RunFigures) -> list[Chart]:
    """Every chart the run's figures support, per workload first, then run-wide ones."""
    charts: list[Chart | None] = []
    for workload in figures.workloads:
        # Throughput and efficiency share a row in the HTML; the wide charts follow.
        charts += [
            throughput_chart(figures, workload),
            efficiency_chart(figures, workload),
            latency_chart(figures, workload),
            cpu_share_chart(figures, workload),
            series_chart(figures, workload),
        ]
    charts.append(memory_chart(figures))
    return [chart for chart in charts if chart is not None]
