"""`pgarena compare BASE.json NEW.json`: did NEW get slower than BASE, really?

Cells are matched by (stack, workload, concurrency) and judged on one or more figures
(`--metric`): throughput (requests/s, higher is better), p99 latency (lower is better) and
the error rate. Each judgement reads the summaries both runs stored (means with standard
errors that already combine within-cell and between-repeat variation) and asks a one-sided
question: is NEW worse than BASE by more than the threshold band? The p-values of every
cell and figure form one family, corrected for multiple comparisons, so a run with sixty
cells does not raise a false alarm in three of them by chance. "Better" is the mirror
question, corrected as its own family, so an improvement is claimed on the same terms as a
regression. The default is
Benjamini-Hochberg: when nothing changed (the case a CI gate must pass) it keeps the chance
of any false alarm at 5%, like Holm, and when a change slows many cells at once (the usual
regression) it calls them with far more power. `--correction holm` is stricter.
"""

from __future__ import annotations

import itertools
import json
import math
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from scipy import stats as scipy_stats

from pgarena.errors import UserError
from pgarena.report.formatting import diff_interval, diff_percent, number, targets
from pgarena.report.markdown import markdown_table
from pgarena.report.tables import Entry, Table
from pgarena.results.file import load_run
from pgarena.results.model import CellKey, Run, Summary
from pgarena.results.stats import Comparison, Estimate, benjamini_hochberg, compare_estimates, holm

COMPARE_FORMATS = ("text", "md", "json")
METRICS = ("rps", "p99", "errors")
CORRECTIONS: dict[str, Callable[[Sequence[float]], list[float]]] = {
    "holm": holm,
    "bh": benjamini_hochberg,
}
ALPHA = 0.05
# An error rate is a regression only when it rose by more than this many points (absolute).
ERROR_RATE_MARGIN = 0.001

# Metadata that must match for two runs to be comparable, as (block, field) paths.
MACHINE_FIELDS = ("hostname", "cpu_model", "cpu_count", "memory_bytes", "os", "python")
PLAN_FIELDS = ("duration_s", "requests", "warmup_s", "mode", "rate", "slow_ms", "server_lifetime")


def parse_threshold(text: str) -> float:
    """'5%', '5' (percent) or '0.05' -> 0.05; UserError on anything else.

    A bare number of 1 or more is read as percent, as people write `--threshold 5`."""
    raw = text.strip()
    try:
        value = float(raw[:-1]) / 100 if raw.endswith("%") else float(raw)
    except ValueError:
        raise UserError(f"--threshold: {text!r} is not a percentage like 5% or 0.05") from None
    if not raw.endswith("%") and value >= 1:
        value /= 100
    if not math.isfinite(value) or value < 0 or value >= 1:
        raise UserError(f"--threshold: {text!r} must be between 0% and 100%")
    return value


def parse_metrics(text: str) -> tuple[str, ...]:
    """'rps,p99' -> ('rps', 'p99'); 'all' -> every metric; UserError on an unknown one."""
    names = tuple(part.strip().lower() for part in text.split(",") if part.strip())
    if names == ("all",):
        return METRICS
    unknown = [name for name in names if name not in METRICS]
    if unknown or not names:
        raise UserError(
            f"--metric: unknown {', '.join(unknown) or repr(text)} (choose from "
            f"{', '.join(METRICS)} or all)"
        )
    return names


@dataclass(frozen=True)
class CellComparison:
    """NEW against BASE in one (stack, workload, concurrency) cell, on one figure."""

    key: CellKey
    metric: str
    base: float | None
    new: float | None
    comparison: Comparison | None  # rps and p99: the ratio NEW/BASE with its interval
    p_worse: float | None  # one-sided: NEW worse than BASE beyond the threshold
    p_better: float | None = None  # one-sided: NEW better than BASE beyond the threshold
    p_adjusted: float | None = None  # p_worse after the multiple-comparison correction
    p_better_adjusted: float | None = None  # p_better after its own family's correction
    verdict: str = "within noise"  # "better", "worse" or "within noise"

    @property
    def regression(self) -> bool:
        """Worse beyond the threshold, and still significant after the correction."""
        return self.verdict == "worse"


@dataclass
class ComparisonReport:
    """Everything `pgarena compare` says about two result files."""

    base_path: Path
    new_path: Path
    threshold: float
    metrics: tuple[str, ...]
    correction: str
    cells: list[CellComparison] = field(default_factory=list)
    only_in_base: list[CellKey] = field(default_factory=list)
    only_in_new: list[CellKey] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def regressions(self) -> list[CellComparison]:
        """The judgements where NEW is significantly worse beyond the threshold."""
        return [cell for cell in self.cells if cell.regression]

    @property
    def exit_code(self) -> int:
        """0 when nothing got significantly worse beyond the threshold, 1 otherwise."""
        return 1 if self.regressions else 0


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


def setting_warnings(base: Run, new: Run) -> list[str]:
    """What differs between the two runs besides the code under test (from the metadata)."""
    base_meta, new_meta = base.metadata, new.metadata
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
            "targets",
            {"target": targets(base_meta.get("target"))},
            {"target": targets(new_meta.get("target"))},
        ),
        _differences(  # pgarena's own generator or Locust (`pgarena locust`)
            "load generators",
            {"kind": (base_meta.get("generator") or {}).get("kind")},
            {"kind": (new_meta.get("generator") or {}).get("kind")},
        ),
        _differences("run plans", base.plan, new.plan, PLAN_FIELDS),
        _differences("package versions", base_meta.get("packages"), new_meta.get("packages")),
    ]
    warnings = [check for check in checks if check]
    for name, run in (("BASE", base), ("NEW", new)):
        if run.status != "complete":
            warnings.append(f"{name} run is {run.status}: some cells may be missing")
    return warnings


def _ratio_judgement(
    key: CellKey, metric: str, base: Estimate | None, new: Estimate | None, threshold: float
) -> CellComparison | None:
    if base is None or new is None or base.mean is None or new.mean is None:
        return None
    higher_is_better = metric == "rps"
    result = compare_estimates(base, new, higher_is_better=higher_is_better, threshold=threshold)
    return CellComparison(
        key, metric, base.mean, new.mean, result, result.p_worse, p_better=result.p_better
    )


def _error_judgement(key: CellKey, base: Summary, new: Summary) -> CellComparison | None:
    """A one-sided two-proportion z-test: did the share of failed requests rise?"""
    base_n, new_n = _requests(base), _requests(new)
    if base.error_rate is None or new.error_rate is None or not base_n or not new_n:
        return None
    pooled = (base.error_rate * base_n + new.error_rate * new_n) / (base_n + new_n)
    spread = math.sqrt(pooled * (1 - pooled) * (1 / base_n + 1 / new_n))
    rise = new.error_rate - base.error_rate - ERROR_RATE_MARGIN
    if spread == 0:
        p_worse = 0.0 if rise > 0 else 1.0
    else:
        p_worse = float(scipy_stats.norm.sf(rise / spread))
    return CellComparison(key, "errors", base.error_rate, new.error_rate, None, p_worse)


def _requests(summary: Summary) -> float:
    return float(summary.requests)


def compare_results(
    base_path: Path | str,
    new_path: Path | str,
    *,
    threshold: float = 0.05,
    metrics: Sequence[str] = ("rps",),
    correction: str = "bh",
) -> ComparisonReport:
    """Compare two result files cell by cell; UserError when they share no cell."""
    if correction not in CORRECTIONS:
        raise UserError(f"--correction: choose from {', '.join(CORRECTIONS)}")
    base_path, new_path = Path(base_path), Path(new_path)
    base, new = load_run(base_path), load_run(new_path)
    base_keys = [s.key for s in base.summaries if s.repeats]
    new_keys = [s.key for s in new.summaries if s.repeats]
    shared = [key for key in base_keys if key in new_keys]
    if not shared:
        raise UserError(
            f"{base_path} and {new_path} share no finished cell "
            "(same stack, workload and concurrency): nothing to compare"
        )
    report = ComparisonReport(
        base_path=base_path,
        new_path=new_path,
        threshold=threshold,
        metrics=tuple(metrics),
        correction=correction,
        only_in_base=[key for key in base_keys if key not in new_keys],
        only_in_new=[key for key in new_keys if key not in base_keys],
        warnings=setting_warnings(base, new),
    )
    for key in sorted(shared, key=lambda k: (k.workload, k.concurrency, k.stack)):
        old, now = base.summary(key), new.summary(key)
        assert old is not None and now is not None
        for metric in metrics:
            if metric == "errors":
                judged = _error_judgement(key, old, now)
            elif metric == "p99":
                judged = _ratio_judgement(
                    key, metric, old.latency_p99_ms, now.latency_p99_ms, threshold
                )
            else:
                judged = _ratio_judgement(key, metric, old.rps, now.rps, threshold)
            if judged is not None:
                report.cells.append(judged)
    report.cells = _corrected(report.cells, CORRECTIONS[correction])
    if any(c.comparison is not None and c.comparison.ci95_low is None for c in report.cells):
        report.warnings.append(
            "some cells have no interval in a file: they are never called better or worse "
            "(measure longer, or run with --repeats 2 or more)"
        )
    return report


def _adjusted(
    values: Sequence[float | None], adjust: Callable[[Sequence[float]], list[float]]
) -> list[float | None]:
    """`adjust` applied to the known p-values as one family; None stays None."""
    known = iter(adjust([value for value in values if value is not None]))
    return [None if value is None else next(known) for value in values]


def _corrected(
    cells: list[CellComparison], adjust: Callable[[Sequence[float]], list[float]]
) -> list[CellComparison]:
    """Adjust the p-values of "worse" as one family and those of "better" as another, then
    give each judgement its verdict: "worse" or "better" only when its own adjusted p-value
    is below ALPHA (and, for a ratio, the interval clears the threshold band)."""
    worse = _adjusted([cell.p_worse for cell in cells], adjust)
    better = _adjusted([cell.p_better for cell in cells], adjust)
    judged = []
    for cell, p_worse, p_better in zip(cells, worse, better, strict=True):
        verdict = "within noise"
        if p_worse is not None and p_worse < ALPHA:
            verdict = "worse"
        elif (
            p_better is not None
            and p_better < ALPHA
            and cell.comparison is not None
            and cell.comparison.verdict == "faster"
        ):
            verdict = "better"
        judged.append(
            replace(cell, p_adjusted=p_worse, p_better_adjusted=p_better, verdict=verdict)
        )
    return judged


METRIC_LABELS = {"rps": "req/s", "p99": "p99 ms", "errors": "error rate"}


def _value(metric: str, value: float | None) -> str:
    if metric == "errors":
        return "-" if value is None else f"{value:.2%}"
    return number(value)


def _table(report: ComparisonReport) -> Table:
    table = Table(
        header=[
            "Workload",
            "Stack",
            "Concurrency",
            "Figure",
            "BASE",
            "NEW",
            "Change",
            "95% interval",
            "p worse",
            "p better",
            "Verdict",
        ],
        numeric=[False, False, True, False, True, True, True, True, True, True, False],
    )
    for cell in report.cells:
        table.rows.append(
            [
                Entry(cell.key.workload),
                Entry(cell.key.stack),
                Entry(str(cell.key.concurrency)),
                Entry(METRIC_LABELS[cell.metric]),
                Entry(_value(cell.metric, cell.base)),
                Entry(_value(cell.metric, cell.new)),
                Entry(diff_percent(cell.comparison) if cell.comparison else _points(cell)),
                Entry(diff_interval(cell.comparison) if cell.comparison else ""),
                Entry(_p(cell.p_adjusted)),
                Entry(_p(cell.p_better_adjusted)),
                Entry(("REGRESSION: " if cell.regression else "") + cell.verdict),
            ]
        )
    return table


def _p(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _points(cell: CellComparison) -> str:
    if cell.base is None or cell.new is None:
        return ""
    return f"{(cell.new - cell.base) * 100:+.2f} pts"


def _summary_line(report: ComparisonReport, p_columns: bool = True) -> str:
    band = f" beyond the {report.threshold:.0%} threshold" if report.threshold else ""
    better = sum(cell.verdict == "better" for cell in report.cells)
    worse = len(report.regressions)
    noise = len(report.cells) - better - worse
    name = {"holm": "Holm", "bh": "Benjamini-Hochberg"}[report.correction]
    return (
        f"{len(report.cells)} judgements ({', '.join(report.metrics)}): {worse} worse{band}, "
        f"{better} better, {noise} within noise ({name}-corrected, alpha {ALPHA:g}"
        + ("; the p columns are adjusted)." if p_columns else ").")
    )


def _notes(report: ComparisonReport) -> list[str]:
    notes = [f"warning: {warning}" for warning in report.warnings]
    for label, keys in (("only in BASE", report.only_in_base), ("only in NEW", report.only_in_new)):
        if keys:
            notes.append(f"not compared, {label}: {', '.join(key.label for key in keys)}")
    return notes


# The columns a narrow terminal does without, in the order they go: first the two that the
# headings of one table per workload and concurrency then name, then the p values (the
# verdict says what they decided), then the two figures (the change and its interval stay).
_GROUPED = ("Workload", "Concurrency")
_LAYOUTS = (
    (),
    _GROUPED,
    (*_GROUPED, "p better"),
    (*_GROUPED, "p better", "p worse"),
    (*_GROUPED, "p better", "p worse", "BASE", "NEW"),
)


def render_text(report: ComparisonReport, width: int | None = None) -> str:
    """A plain-text table for terminals and CI logs, fitted to `width` columns if given.

    The full table is about 120 columns wide. Where it does not fit (a CI log has 80), it
    becomes one table per workload and concurrency, lined up, and then loses the p-value
    columns, then the two figures; wrapped instead, every row would break in two and the
    columns stop lining up. A note says where the columns left out are.
    """
    table = _table(report)
    rows = [table.header] + [[entry.text for entry in row] for row in table.rows]
    widths = [max(len(row[i]) for row in rows) for i in range(len(table.header))]

    def needed(keep: list[int]) -> int:
        return sum(widths[i] for i in keep) + 2 * (len(keep) - 1)

    for dropped in _LAYOUTS:
        keep = [i for i, name in enumerate(table.header) if name not in dropped]
        if width is None or needed(keep) <= width:
            break

    def line(row: list[str]) -> str:
        cells = [
            row[i].rjust(widths[i]) if table.numeric[i] else row[i].ljust(widths[i]) for i in keep
        ]
        return "  ".join(cells).rstrip()

    lines = [f"BASE {report.base_path}", f"NEW  {report.new_path}"]
    head = [line(table.header), "  ".join("-" * widths[i] for i in keep)]
    if not dropped:
        lines += ["", *head, *map(line, rows[1:])]
    else:
        workload, concurrency = table.header.index("Workload"), table.header.index("Concurrency")
        groups = itertools.groupby(rows[1:], lambda row: (row[workload], row[concurrency]))
        for (name, level), group in groups:
            lines += ["", f"{name}, c={level}", *head, *map(line, group)]
    p_columns = "p worse" not in dropped
    notes = [_summary_line(report, p_columns), *_notes(report)]
    if left_out := [name for name in dropped if name not in _GROUPED]:
        full = needed(list(range(len(widths))))
        where = f"in --format md or json, or on a terminal {full} columns wide"
        notes.append(f"Left out here ({', '.join(left_out)}): {where}.")
    if width:  # at spaces only: a path or a stack name split in two cannot be copied
        notes = [
            textwrap.fill(note, width, break_long_words=False, break_on_hyphens=False)
            for note in notes
        ]
    lines += ["", *notes]
    return "\n".join(lines) + "\n"


def render_markdown(report: ComparisonReport) -> str:
    """A Markdown table, for pull-request comments."""
    lines = [
        f"**BASE** `{report.base_path}` vs **NEW** `{report.new_path}` "
        "(NEW/BASE with its 95% interval)",
        "",
        markdown_table(_table(report)),
        "",
        _summary_line(report),
    ]
    lines += [f"- {note}" for note in _notes(report)]
    return "\n".join(lines) + "\n"


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def render_json(report: ComparisonReport) -> str:
    """Machine-readable: every judgement with its figures, interval, p-values and verdict."""
    document: dict[str, Any] = {
        "base": str(report.base_path),
        "new": str(report.new_path),
        "threshold": report.threshold,
        "metrics": list(report.metrics),
        "correction": report.correction,
        "cells": [
            {
                "stack": cell.key.stack,
                "workload": cell.key.workload,
                "concurrency": cell.key.concurrency,
                "metric": cell.metric,
                "base": cell.base,
                "new": cell.new,
                "ratio": cell.comparison.ratio if cell.comparison else None,
                "ci95_low": _finite(cell.comparison.ci95_low) if cell.comparison else None,
                "ci95_high": _finite(cell.comparison.ci95_high) if cell.comparison else None,
                "p_worse": cell.p_worse,
                "p_adjusted": cell.p_adjusted,
                "p_better": cell.p_better,
                "p_better_adjusted": cell.p_better_adjusted,
                "verdict": cell.verdict,
                "regression": cell.regression,
            }
            for cell in report.cells
        ],
        "only_in_base": [key.label for key in report.only_in_base],
        "only_in_new": [key.label for key in report.only_in_new],
        "warnings": report.warnings,
        "regressions": len(report.regressions),
        "exit_code": report.exit_code,
    }
    return json.dumps(document, indent=2) + "\n"


def render_comparison(report: ComparisonReport, fmt: str, width: int | None = None) -> str:
    """The report in one of COMPARE_FORMATS; text fitted to `width` columns if given."""
    if fmt == "text":
        return render_text(report, width)
    renderers = {"md": render_markdown, "json": render_json}
    if fmt not in renderers:
        raise UserError(f"--format: {fmt!r} is not one of {', '.join(COMPARE_FORMATS)}")
    return renderers[fmt](report)
