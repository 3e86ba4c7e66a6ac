"""`pgarena compare BASE.json NEW.json`: did NEW get faster or slower than BASE, really?

Cells are matched by (stack, workload, concurrency). For each, the ratio of mean requests
per second NEW/BASE comes with its 95% interval from the per-repeat figures of both files
(`pgarena.results.stats.compare`), and a verdict: faster, slower or within noise. A cell is a
regression when it is slower beyond the threshold; any regression makes the exit code 1,
so the command can gate CI.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pgarena.errors import UserError
from pgarena.report.formatting import diff_interval, diff_percent, number
from pgarena.report.markdown import markdown_table
from pgarena.report.tables import Entry, Table
from pgarena.results.file import load_results
from pgarena.results.stats import Comparison, compare

CellKey = tuple[str, str, int]
COMPARE_FORMATS = ("text", "md", "json")

# Metadata that must match for two runs to be comparable, as (block, field) paths.
MACHINE_FIELDS = ("hostname", "cpu_model", "cpu_count", "memory_bytes", "os", "python")
PLAN_FIELDS = ("duration_s", "requests", "warmup_s", "mode", "rate", "slow_ms", "server_lifetime")


def parse_threshold(text: str) -> float:
    """'5%' or '0.05' -> 0.05; UserError on anything else."""
    raw = text.strip()
    try:
        value = float(raw[:-1]) / 100 if raw.endswith("%") else float(raw)
    except ValueError:
        raise UserError(f"--threshold: {text!r} is not a percentage like 5% or 0.05") from None
    if not math.isfinite(value) or value < 0 or value >= 1:
        raise UserError(f"--threshold: {text!r} must be between 0% and 100%")
    return value


@dataclass(frozen=True)
class CellComparison:
    """NEW against BASE in one (stack, workload, concurrency) cell."""

    stack: str
    workload: str
    concurrency: int
    comparison: Comparison

    @property
    def regression(self) -> bool:
        """Slower beyond the threshold, with the interval to prove it."""
        return self.comparison.verdict == "slower"


@dataclass
class ComparisonReport:
    """Everything `pgarena compare` says about two result files."""

    base_path: Path
    new_path: Path
    threshold: float
    cells: list[CellComparison] = field(default_factory=list)
    only_in_base: list[CellKey] = field(default_factory=list)
    only_in_new: list[CellKey] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def regressions(self) -> list[CellComparison]:
        """The cells where NEW is significantly slower beyond the threshold."""
        return [cell for cell in self.cells if cell.regression]

    @property
    def exit_code(self) -> int:
        """0 when nothing got significantly slower beyond the threshold, 1 otherwise."""
        return 1 if self.regressions else 0


def per_repeat_rps(results: dict[str, Any]) -> dict[CellKey, list[float]]:
    """Requests per second of every finished repeat, by (stack, workload, concurrency)."""
    values: dict[CellKey, list[float]] = {}
    for cell in results.get("cells") or []:
        if cell.get("status") != "ok" or cell.get("rps") is None:
            continue
        key = (cell["stack"], cell["workload"], int(cell["concurrency"]))
        values.setdefault(key, []).append(float(cell["rps"]))
    return values


def _differences(
    label: str, base: Any, new: Any, fields: tuple[str, ...] | None = None
) -> str | None:
    base, new = base or {}, new or {}
    names = fields if fields is not None else tuple(sorted(set(base) | set(new)))
    changed = [
        f"{name} {base.get(name)!s} -> {new.get(name)!s}"
        for name in names
        if base.get(name) != new.get(name)
    ]
    return f"{label} differ: {'; '.join(changed)}" if changed else None


def _settings_only(block: dict[str, Any] | None) -> dict[str, Any]:
    """A metadata block without what was measured rather than chosen (e.g. seed_seconds)."""
    return {key: value for key, value in (block or {}).items() if not key.endswith("_seconds")}


def setting_warnings(base: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """What differs between the two runs besides the code under test (from the metadata)."""
    base_meta, new_meta = base.get("metadata") or {}, new.get("metadata") or {}
    base_pg, new_pg = base_meta.get("postgres") or {}, new_meta.get("postgres") or {}
    checks = [
        _differences("machines", base_meta.get("machine"), new_meta.get("machine"), MACHINE_FIELDS),
        _differences(
            "PostgreSQL versions",
            {"version": base_pg.get("version")},
            {"version": new_pg.get("version")},
        ),
        _differences("PostgreSQL settings", base_pg.get("settings"), new_pg.get("settings")),
        _differences("server settings", base_meta.get("server"), new_meta.get("server")),
        _differences(
            "data sizes",
            _settings_only(base_meta.get("data")),
            _settings_only(new_meta.get("data")),
        ),
        _differences(
            "targets", {"target": base_meta.get("target")}, {"target": new_meta.get("target")}
        ),
        _differences("run plans", base.get("plan"), new.get("plan"), PLAN_FIELDS),
        _differences("package versions", base_meta.get("packages"), new_meta.get("packages")),
    ]
    warnings = [check for check in checks if check]
    for name, results in (("BASE", base), ("NEW", new)):
        status = results.get("status")
        if status and status != "complete":
            warnings.append(f"{name} run is {status}: some cells may be missing")
    return warnings


def compare_results(
    base_path: Path | str, new_path: Path | str, *, threshold: float = 0.0
) -> ComparisonReport:
    """Compare two result files cell by cell; UserError when they share no cell."""
    base_path, new_path = Path(base_path), Path(new_path)
    # The loader refuses a file of another schema version, so both files share this one.
    base, new = load_results(base_path), load_results(new_path)
    base_values, new_values = per_repeat_rps(base), per_repeat_rps(new)
    shared = [key for key in base_values if key in new_values]
    if not shared:
        raise UserError(
            f"{base_path} and {new_path} share no finished cell "
            "(same stack, workload and concurrency): nothing to compare"
        )
    report = ComparisonReport(
        base_path=base_path,
        new_path=new_path,
        threshold=threshold,
        only_in_base=[key for key in base_values if key not in new_values],
        only_in_new=[key for key in new_values if key not in base_values],
        warnings=setting_warnings(base, new),
    )
    for key in shared:
        report.cells.append(
            CellComparison(
                *key,
                comparison=compare(
                    base_values[key], new_values[key], higher_is_better=True, threshold=threshold
                ),
            )
        )
    report.cells.sort(key=lambda cell: (cell.workload, cell.concurrency, cell.stack))
    if any(cell.comparison.ci95_low is None for cell in report.cells):
        report.warnings.append(
            "some cells have fewer than two repeats in a file: they have no interval and "
            "are never called faster or slower (run with --repeats 2 or more)"
        )
    return report


def _table(report: ComparisonReport) -> Table:
    table = Table(
        header=[
            "Workload",
            "Stack",
            "Concurrency",
            "BASE req/s",
            "NEW req/s",
            "Change",
            "95% interval",
            "Verdict",
        ],
        numeric=[False, False, True, True, True, True, True, False],
    )
    for cell in report.cells:
        result = cell.comparison
        table.rows.append(
            [
                Entry(cell.workload),
                Entry(cell.stack),
                Entry(str(cell.concurrency)),
                Entry(number(result.base.mean)),
                Entry(number(result.new.mean)),
                Entry(diff_percent(result)),
                Entry(diff_interval(result)),
                Entry(("REGRESSION: " if cell.regression else "") + result.verdict),
            ]
        )
    return table


def _summary_line(report: ComparisonReport) -> str:
    band = f" beyond the {report.threshold:.0%} threshold" if report.threshold else ""
    faster = sum(cell.comparison.verdict == "faster" for cell in report.cells)
    slower = len(report.regressions)
    noise = len(report.cells) - faster - slower
    return (
        f"{len(report.cells)} shared cells: {slower} slower{band}, {faster} faster{band}, "
        f"{noise} within noise."
    )


def _notes(report: ComparisonReport) -> list[str]:
    notes = [f"warning: {warning}" for warning in report.warnings]
    for label, keys in (("only in BASE", report.only_in_base), ("only in NEW", report.only_in_new)):
        if keys:
            names = ", ".join(f"{s}/{w}@{c}" for s, w, c in keys)
            notes.append(f"not compared, {label}: {names}")
    return notes


def render_text(report: ComparisonReport) -> str:
    """A plain-text table for terminals and CI logs."""
    table = _table(report)
    rows = [table.header] + [[entry.text for entry in row] for row in table.rows]
    widths = [max(len(row[i]) for row in rows) for i in range(len(table.header))]
    lines = [f"BASE {report.base_path}", f"NEW  {report.new_path}", ""]
    for index, row in enumerate(rows):
        cells = [
            text.rjust(width) if table.numeric[i] else text.ljust(width)
            for i, (text, width) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(cells).rstrip())
        if index == 0:
            lines.append("  ".join("-" * width for width in widths))
    lines += ["", _summary_line(report), *_notes(report)]
    return "\n".join(lines) + "\n"


def render_markdown(report: ComparisonReport) -> str:
    """A Markdown table, for pull-request comments."""
    lines = [
        f"**BASE** `{report.base_path}` vs **NEW** `{report.new_path}` "
        "(requests per second, NEW/BASE with its 95% interval)",
        "",
        markdown_table(_table(report)),
        "",
        _summary_line(report),
    ]
    lines += [f"- {note}" for note in _notes(report)]
    return "\n".join(lines) + "\n"


def render_json(report: ComparisonReport) -> str:
    """Machine-readable: every compared cell with its ratio, interval, verdict and repeats."""
    document = {
        "base": str(report.base_path),
        "new": str(report.new_path),
        "threshold": report.threshold,
        "figure": "rps",
        "cells": [
            {
                "stack": cell.stack,
                "workload": cell.workload,
                "concurrency": cell.concurrency,
                "regression": cell.regression,
                **cell.comparison.to_dict(),
            }
            for cell in report.cells
        ],
        "only_in_base": [list(key) for key in report.only_in_base],
        "only_in_new": [list(key) for key in report.only_in_new],
        "warnings": report.warnings,
        "regressions": len(report.regressions),
        "exit_code": report.exit_code,
    }
    return json.dumps(document, indent=2) + "\n"


def render_comparison(report: ComparisonReport, fmt: str) -> str:
    """The report in one of COMPARE_FORMATS."""
    renderers = {"text": render_text, "md": render_markdown, "json": render_json}
    if fmt not in renderers:
        raise UserError(f"--format: {fmt!r} is not one of {', '.join(COMPARE_FORMATS)}")
    return renderers[fmt](report)
