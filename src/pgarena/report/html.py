"""`report.html`: one self-contained file (inline SVG charts, inline CSS and JS, no network).

Same tables and findings as the Markdown report, the charts next to the tables they
illustrate, warnings next to the figures they concern, and a print stylesheet.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape

from pgarena.report.charts import Chart
from pgarena.report.figures import RunFigures
from pgarena.report.findings import findings
from pgarena.report.tables import (
    command_line,
    describe_plan,
    failure_table,
    latency_table,
    metadata_rows,
    slo_table,
    throughput_table,
    warnings_of,
    workload_description,
)
from pgarena.results.verdicts import VERDICT_RULE

# Charts that read best across the page's full width.
WIDE_CHARTS = ("latency-", "cpu-share-", "series-")


@dataclass(frozen=True)
class ChartView:
    """A chart as the template shows it."""

    name: str
    svg: str
    caption: str
    wide: bool


def _environment() -> Environment:
    return Environment(
        loader=PackageLoader("pgarena.report", "templates"),
        autoescape=select_autoescape(["html", "j2"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )


def _anchor(name: str) -> str:
    return "workload-" + re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def _caption(chart: Chart) -> str:
    captions = {
        "throughput": "Mean requests per second per stack; bars show the 95% interval.",
        "latency": "Latency at each percentile, all repeats merged (HDR histograms); "
        "the right end of each curve is the slowest request.",
        "cpu-efficiency": "Requests served per CPU-second of the server's processes: the "
        "figure that stays stable on a busy machine.",
        "cpu-share": "Share of all the machine's cores used by each part during the "
        "measurement; what is left was idle or used by other processes.",
        "memory": "Highest peak RSS of the server's processes across workloads and repeats.",
    }
    for prefix, caption in captions.items():
        if chart.name.startswith(prefix):
            return caption
    return chart.title


def _view(chart: Chart) -> ChartView:
    return ChartView(
        name=chart.name,
        svg=chart.svg(),
        caption=_caption(chart),
        wide=chart.name.startswith(WIDE_CHARTS),
    )


def _machine_text(metadata: dict[str, Any]) -> str:
    machine = metadata.get("machine") or {}
    if not machine:
        return ""
    cores = machine.get("cpu_count")
    parts = [machine.get("cpu_model"), f"{cores} cores" if cores else None, machine.get("os")]
    return "Measured on " + ", ".join(str(part) for part in parts if part) + "."


def render_html(
    figures: RunFigures, charts: Sequence[Chart], *, source_name: str = "results.json"
) -> str:
    """The whole `report.html`, with every chart inlined as SVG."""
    workloads = []
    for workload in figures.workloads:
        workloads.append(
            {
                "name": workload,
                "anchor": _anchor(workload),
                "description": workload_description(figures, workload),
                "throughput": throughput_table(figures, workload),
                "latency": latency_table(figures, workload),
                "warnings": warnings_of(figures, workload),
                "charts": [_view(chart) for chart in charts if chart.workload == workload],
            }
        )
    return (
        _environment()
        .get_template("report.html.j2")
        .render(
            version=figures.metadata.get("pgarena_version", "?"),
            title_suffix=figures.run.started_at or source_name,
            status=figures.run.status,
            stacks=figures.stacks,
            base=figures.base_stack or "the first stack",
            verdict_rule=VERDICT_RULE,
            workloads=workloads,
            plan_text=describe_plan(figures),
            machine_text=_machine_text(figures.metadata),
            findings=findings(figures),
            run_charts=[_view(chart) for chart in charts if chart.workload is None],
            failures=failure_table(figures),
            profiles=[
                {
                    "path": cell.profile,
                    "label": f"{cell.stack} on {cell.workload} at concurrency {cell.concurrency}",
                }
                for cell in figures.run.cells
                if cell.profile
            ],
            slos=slo_table(figures),
            metadata=metadata_rows(figures),
            command_line=command_line(figures),
            source_name=source_name,
        )
    )
