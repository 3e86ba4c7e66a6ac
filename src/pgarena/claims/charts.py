"""One chart per swept condition: for each claim that sweeps it, the measured figure at every
swept value with its 95% band, against the claimed value drawn as a line (a range as a band).

Where the band meets the line (or lies beyond it in the claimed direction) the claim holds at
that value; the chart shows at a glance where that starts or stops. Drawn with matplotlib in
the report's style (`report.charts`), written as PNG and inlined as SVG in report.html.
"""

from __future__ import annotations

import math

from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, NullFormatter

from pgarena.claims.table import Row, describe_claim
from pgarena.report.charts import STACK_COLORS, STYLE, Chart

SETTING_LABELS = {
    "threads": "threads in the sync server's pool",
    "slow_ms": "database latency (ms)",
    "pool_size": "connection pool size",
    "concurrency": "concurrent clients",
    "max_overflow": "pool overflow",
}
COLUMNS = 3


def sweep_charts(rows: list[Row]) -> list[Chart]:
    """A chart per swept setting, a panel per claim that sweeps it (measured rows only)."""
    import matplotlib

    by_setting: dict[str, list[Row]] = {}
    for row in rows:
        sweep = row.claim.experiment.sweep
        if sweep and row.sweep and any(v is not None for v in row.sweep.values()):
            by_setting.setdefault(sweep[0], []).append(row)
    charts = []
    with matplotlib.rc_context(STYLE):
        for setting, members in by_setting.items():
            charts.append(_chart(setting, members))
    return charts


def _chart(setting: str, rows: list[Row]) -> Chart:
    columns = min(COLUMNS, len(rows))
    lines = math.ceil(len(rows) / columns)
    figure = Figure(figsize=(3.7 * columns, 2.9 * lines), layout="constrained")
    for index, row in enumerate(rows):
        axes = figure.add_subplot(lines, columns, index + 1)
        claim = row.claim
        values = [v for v, found in row.sweep.items() if found is not None]
        found = [row.sweep[v] for v in values]
        xs = list(range(len(row.sweep)))  # evenly spaced: 1, 4, 40, 100 all readable
        position = dict(zip(row.sweep, xs, strict=True))
        at = [position[v] for v in values]
        means = [i.mean for i in found if i is not None]
        axes.fill_between(
            at,
            [i.low for i in found if i is not None],
            [i.high for i in found if i is not None],
            color=STACK_COLORS[0],
            alpha=0.25,
            linewidth=0,
            label="measured, 95% interval",
        )
        axes.plot(at, means, "o-", color=STACK_COLORS[0], markersize=4)
        if claim.is_range:
            axes.axhspan(claim.low, claim.high, color=STACK_COLORS[5], alpha=0.2, label="claimed")
        else:
            axes.axhline(claim.low, color=STACK_COLORS[5], linestyle="--", label="claimed")
        lows = [i.low for i in found if i is not None] + [claim.low]
        highs = [i.high for i in found if i is not None] + [claim.high]
        if min(lows) > 0 and max(highs) / min(lows) > 20:  # orders of magnitude apart
            axes.set_yscale("log")
            axes.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
            axes.yaxis.set_minor_formatter(NullFormatter())
        for value in row.sweep:
            if row.sweep[value] is None:  # a failed or missing point is shown, not skipped
                axes.annotate(
                    "not measured",
                    (position[value], 0.04),
                    xycoords=("data", "axes fraction"),
                    ha="center",
                    fontsize=7,
                    color="#b30000",
                )
        axes.set_xticks(xs, [str(v) for v in row.sweep])
        axes.set_xlabel(SETTING_LABELS.get(setting, setting))
        axes.set_title(claim.id, fontsize=8)
        axes.set_ylabel(describe_claim(claim).rsplit(" ", 2)[0], fontsize=7)
        verdicts = ", ".join(f"{v}: {row.sweep_verdicts.get(v, '?')}" for v in row.sweep)
        axes.text(0.01, -0.42, verdicts, transform=axes.transAxes, fontsize=6, wrap=True)
        if index == 0:
            axes.legend(fontsize=7, loc="best")
    title = f"Claims over {SETTING_LABELS.get(setting, setting)}"
    figure.suptitle(title, fontsize=10, fontweight="bold")
    return Chart(f"sweep-{setting.replace('_', '-')}", title, None, figure)
