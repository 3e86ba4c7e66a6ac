"""`report.md`: the seed 004 benchmark tables, with intervals and verdicts, plus metadata.

Per workload, one table of requests per second (rows by concurrency, a column per stack,
the difference against the first stack with its 95% interval and a verdict) and one table
of latency and efficiency; then the generated findings and the run's metadata.
"""

from __future__ import annotations

from collections.abc import Sequence

from pgarena.report.figures import RunFigures
from pgarena.report.findings import findings
from pgarena.report.tables import (
    Entry,
    Table,
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

WARNING_MARK = "⚠"


def _escape(text: str) -> str:
    """Keep a cell's text from breaking the table."""
    return text.replace("|", "\\|").replace("\n", " ")


def markdown_table(table: Table) -> str:
    """A GitHub-flavoured Markdown table; numeric columns are right-aligned."""
    align = [
        "---:" if (table.numeric[i] if i < len(table.numeric) else False) else "---"
        for i in range(len(table.header))
    ]
    lines = [
        "| " + " | ".join(_escape(name) for name in table.header) + " |",
        "|" + "|".join(align) + "|",
    ]
    for row in table.rows:
        texts = [entry.text + (f" {WARNING_MARK}" if entry.warnings else "") for entry in row]
        lines.append("| " + " | ".join(_escape(text) for text in texts) + " |")
    return "\n".join(lines)


def render_markdown(figures: RunFigures, *, charts: Sequence[tuple[str | None, str]] = ()) -> str:
    """The whole `report.md`.

    `charts` are (workload or None, relative PNG path) pairs, shown under their workload
    (run-wide charts, workload None, in their own section).
    """
    base = figures.base_stack or "the first stack"
    out = [
        "# pgarena benchmark report",
        "",
        f"Stacks: {', '.join(figures.stacks) or 'none'}. "
        f"Workloads: {', '.join(figures.workloads) or 'none'}. {describe_plan(figures)}.",
        "",
        "Figures are means across repeats with their 95% interval in brackets: the "
        "interval combines the variation within each cell's steady state (batch means) "
        "with the variation between repeats. Differences are against "
        f"**{base}**; {VERDICT_RULE}. "
        f"{WARNING_MARK} marks a figure with a warning (listed under its table).",
        "",
        "## What this run says",
        "",
    ]
    out += [f"- {sentence}" for sentence in findings(figures)] or ["- Nothing was measured."]
    for workload in figures.workloads:
        out += ["", f"## {workload}", ""]
        description = workload_description(figures, workload)
        if description:
            out += [f"*{description}*", ""]
        out += ["Requests per second (higher is better):", ""]
        out.append(markdown_table(throughput_table(figures, workload)))
        out += [
            "",
            "Latency (lower is better), with p99 against the first stack's (and its interval "
            "when the verdict calls a difference), requests per server CPU-second (higher is "
            "better), statements PostgreSQL ran per request, new PostgreSQL connections per "
            "second, peak server memory and share of the machine's CPU:",
            "",
            markdown_table(latency_table(figures, workload)),
        ]
        warned = warnings_of(figures, workload)
        if warned:
            out += ["", *[f"- {WARNING_MARK} {warning}" for warning in warned]]
        shown = [path for chart_workload, path in charts if chart_workload == workload]
        if shown:
            out += ["", *[f"![{path}]({path})" for path in shown]]
    run_wide = [path for chart_workload, path in charts if chart_workload is None]
    if run_wide:
        out += ["", "## Memory", "", *[f"![{path}]({path})" for path in run_wide]]
    slos = slo_table(figures)
    if slos.rows:
        failed = sum(not result["passed"] for result in figures.run.slo)
        out += ["", "## Service-level objectives", ""]
        out += [f"{failed} of {len(slos.rows)} checks failed.", "", markdown_table(slos)]
    failures = failure_table(figures)
    if failures.rows:
        out += ["", "## Failed measurements", "", markdown_table(failures)]
    metadata = Table(header=["", ""], numeric=[False, False])
    metadata.rows.extend([Entry(name), Entry(value)] for name, value in metadata_rows(figures))
    out += ["", "## Metadata", "", markdown_table(metadata)]
    line = command_line(figures)
    if line:
        out += ["", "Command line:", "", "```", line, "```"]
    return "\n".join(out) + "\n"
