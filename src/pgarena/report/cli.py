"""The `pgarena report` and `pgarena compare` commands.

Heavy imports (matplotlib, scipy) happen inside the commands, so that `pgarena --help`
and the other commands stay quick.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Annotated

import typer


def report_command(
    results: Annotated[Path, typer.Argument(help="A result file (results.json) or its directory.")],
    format: Annotated[
        str,
        typer.Option(
            "--format",
            help="Comma-separated: md, html, png; csv (cells.csv, summary.csv), "
            "jsonl (series.jsonl, the per-interval time series); or all.",
        ),
    ] = "md,html,png",
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            metavar="DIR",
            help="Where to write the reports.",
            show_default="beside the result file",
        ),
    ] = None,
) -> None:
    """Write report.md, report.html and charts/*.png from a result file (never re-measures)."""
    from pgarena.report.build import parse_formats, write_reports

    for path in write_reports(results, parse_formats(format), out):
        typer.echo(str(path))


def compare_command(
    base: Annotated[Path, typer.Argument(help="The result file to compare against.")],
    new: Annotated[Path, typer.Argument(help="The result file under test.")],
    threshold: Annotated[
        str,
        typer.Option(
            "--threshold",
            metavar="PERCENT",
            help="Only call a regression beyond this band, e.g. 5% (a bare 5 means 5%).",
        ),
    ] = "5%",
    metric: Annotated[
        str,
        typer.Option("--metric", help="Comma-separated figures to judge: rps, p99, errors, all."),
    ] = "rps,p99,errors",
    correction: Annotated[
        str,
        typer.Option(
            "--correction",
            help="Multiple-comparison correction: bh (Benjamini-Hochberg, the default) or holm "
            "(stricter: family-wise error for every single call).",
        ),
    ] = "bh",
    format: Annotated[str, typer.Option("--format", help="text, md or json.")] = "text",
) -> None:
    """Compare two result files cell by cell; exit 1 if NEW is significantly worse.

    Exit codes: 0 nothing worse beyond the threshold, 1 something is, 2 usage error.
    """
    from pgarena.report.compare import (
        compare_results,
        parse_metrics,
        parse_threshold,
        render_comparison,
    )

    fmt = format.strip().lower()
    report = compare_results(
        base,
        new,
        threshold=parse_threshold(threshold),
        metrics=parse_metrics(metric),
        correction=correction.strip().lower(),
    )
    # The terminal's width, or $COLUMNS, or 80 where output goes to a file or a pipe.
    width = shutil.get_terminal_size().columns
    typer.echo(render_comparison(report, fmt, width), nl=False)
    if fmt == "json":
        # Text and Markdown carry the warnings in their notes; JSON keeps stdout parseable.
        for warning in report.warnings:
            typer.secho(f"warning: {warning}", fg=typer.colors.YELLOW, err=True)
    raise typer.Exit(report.exit_code)
