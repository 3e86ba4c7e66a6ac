"""Write a run's reports beside its result file: report.md, report.html and charts/*.png by
default; on request cells.csv and summary.csv ("csv") and series.jsonl ("jsonl")."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from pgarena.errors import UserError
from pgarena.report.charts import build_charts
from pgarena.report.export import write_cells_csv, write_series_jsonl, write_summary_csv
from pgarena.report.figures import build_figures
from pgarena.report.html import render_html
from pgarena.report.markdown import render_markdown
from pgarena.results.file import RESULT_FILENAME, load_run

# What `pgarena run` and a bare `pgarena report` write; the exports are for those who ask.
DEFAULT_FORMATS = ("md", "html", "png")
FORMATS = (*DEFAULT_FORMATS, "csv", "jsonl")


def parse_formats(text: str) -> tuple[str, ...]:
    """'md,html' -> ('md', 'html'), 'all' -> FORMATS; UserError on an unknown format."""
    formats = tuple(part.strip().lower() for part in text.split(",") if part.strip())
    if "all" in formats:
        return FORMATS
    _check_formats(formats, text)
    return formats


def _check_formats(formats: tuple[str, ...], text: str) -> None:
    unknown = [part for part in formats if part not in FORMATS]
    if unknown or not formats:
        raise UserError(
            f"unknown report format {', '.join(unknown) or repr(text)} "
            f"(choose from {', '.join(FORMATS)} or all)"
        )


def write_reports(
    results_path: Path | str,
    formats: Iterable[str] = DEFAULT_FORMATS,
    out_dir: Path | str | None = None,
) -> list[Path]:
    """Write the reports of one result file and return the paths written.

    `formats` is any of "md" (report.md), "html" (report.html), "png" (charts/*.png), "csv"
    (cells.csv and summary.csv) and "jsonl" (series.jsonl), see `report.export`; `out_dir`
    defaults to the result file's directory. The result file is the only input: nothing is
    measured again.
    """
    results_path = Path(results_path)
    formats = tuple(formats)
    _check_formats(formats, ",".join(formats))
    run = load_run(results_path)  # validated against the JSON Schema, older versions migrated
    source = results_path / RESULT_FILENAME if results_path.is_dir() else results_path
    out = Path(out_dir) if out_dir is not None else source.parent
    out.mkdir(parents=True, exist_ok=True)

    written: list[Path] = []
    if "csv" in formats:
        written += [write_cells_csv(run, out), write_summary_csv(run, out)]
    if "jsonl" in formats:
        written.append(write_series_jsonl(run, out))
    if not set(DEFAULT_FORMATS) & set(formats):
        return written  # the exports need neither figures nor charts

    figures = build_figures(run)
    charts = build_charts(figures) if {"png", "html"} & set(formats) else []
    chart_paths: list[tuple[str | None, str]] = []
    if "png" in formats:
        for chart in charts:
            path = chart.write_png(out / "charts")
            written.append(path)
            chart_paths.append((chart.workload, path.relative_to(out).as_posix()))
    if "md" in formats:
        path = out / "report.md"
        path.write_text(render_markdown(figures, charts=chart_paths), encoding="utf-8")
        written.append(path)
    if "html" in formats:
        path = out / "report.html"
        path.write_text(render_html(figures, charts, source_name=source.name), encoding="utf-8")
        written.append(path)
    return written
