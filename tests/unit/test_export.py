"""CSV and JSON Lines exports, read back as a user's own tools would read them, from the
committed real runs: the example run (schema 2, with series) and the version-1 golden file
(no series). No PostgreSQL, no server."""

from __future__ import annotations

import csv
import json
from dataclasses import replace
from pathlib import Path

import pytest
from helpers import run_pgarena

from pgarena.errors import UserError
from pgarena.report.build import DEFAULT_FORMATS, FORMATS, parse_formats, write_reports
from pgarena.report.export import SERIES_FIELDS
from pgarena.results.file import load_run
from pgarena.results.model import Cell, Run

ROOT = Path(__file__).parents[2]
EXAMPLE = ROOT / "docs" / "example-run" / "results.json"
GOLDEN = Path(__file__).parent / "data" / "results-v1.json"

CELL_COLUMNS = [
    "stack", "workload", "concurrency", "repeat", "status", "error", "duration_s", "rps",
    "requests", "ok", "errors",
    "latency_p50_ms", "latency_p90_ms", "latency_p99_ms", "latency_p99_9_ms", "latency_max_ms",
    "latency_mean_ms", "requests_per_server_cpu_s", "statements_per_request",
    "server_cpu_s", "postgres_cpu_s", "generator_cpu_s", "other_cpu_s",
    "cpu_share_server", "cpu_share_postgres", "cpu_share_generator", "cpu_share_other",
    "server_rss_peak_bytes", "steady_start_s", "rps_ci95_low", "rps_ci95_high",
    "new_connections_per_s",
]  # fmt: skip
SUMMARY_COLUMNS = [
    "stack", "workload", "concurrency", "repeats", "failed", "requests",
    "rps_mean", "rps_ci95_low", "rps_ci95_high",
    "requests_per_server_cpu_s_mean", "requests_per_server_cpu_s_ci95_low",
    "requests_per_server_cpu_s_ci95_high",
    "latency_p50_ms_mean", "latency_p50_ms_ci95_low", "latency_p50_ms_ci95_high",
    "latency_p99_ms_mean", "latency_p99_ms_ci95_low", "latency_p99_ms_ci95_high",
    "error_rate", "cpu_share_server", "cpu_share_postgres", "cpu_share_generator",
    "cpu_share_other", "peak_rss_bytes", "statements_per_request", "warnings",
    "new_connections_per_s",
]  # fmt: skip
TEXT_COLUMNS = {"stack", "workload", "status", "error", "warnings"}


def read_csv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with path.open(newline="", encoding="utf-8") as stream:
        reader = csv.DictReader(stream)
        return list(reader.fieldnames or []), list(reader)


def number(text: str) -> float | None:
    """A CSV field as a reader parses it: a float, or None when empty."""
    return float(text) if text != "" else None


def assert_numeric(rows: list[dict[str, str]]) -> None:
    for row in rows:
        for column, value in row.items():
            if column not in TEXT_COLUMNS:
                number(value)  # raises on anything but a number or an empty field


@pytest.fixture(scope="module")
def example() -> Run:
    return load_run(EXAMPLE)


def test_cells_csv_has_one_row_per_cell_at_full_precision(example: Run, tmp_path: Path) -> None:
    written = write_reports(EXAMPLE, ("csv",), tmp_path)
    assert written == [tmp_path / "cells.csv", tmp_path / "summary.csv"]
    assert not (tmp_path / "report.md").exists()  # only what was asked for

    header, rows = read_csv(tmp_path / "cells.csv")
    assert header == CELL_COLUMNS
    assert len(rows) == len(example.cells) == 48
    assert_numeric(rows)
    for row, cell in zip(rows, example.cells, strict=True):
        assert (row["stack"], row["workload"]) == (cell.stack, cell.workload)
        assert (int(row["concurrency"]), int(row["repeat"])) == (cell.concurrency, cell.repeat)
        # Unformatted: the figure reads back exactly as results.json holds it.
        assert number(row["rps"]) == cell.rps
        assert number(row["latency_p99_ms"]) == cell.latency_ms["p99"]
        assert number(row["server_cpu_s"]) == cell.resources["server_cpu_s"]
        assert cell.steady is not None
        assert number(row["rps_ci95_low"]) == cell.steady.rps.ci95_low
        assert row["error"] == "" and int(row["errors"]) == cell.error_count


def test_summary_csv_has_one_row_per_summary_with_intervals(example: Run, tmp_path: Path) -> None:
    write_reports(EXAMPLE, ("csv",), tmp_path)
    header, rows = read_csv(tmp_path / "summary.csv")
    assert header == SUMMARY_COLUMNS
    assert len(rows) == len(example.summaries) == 24
    assert_numeric(rows)
    for row, summary in zip(rows, example.summaries, strict=True):
        assert number(row["rps_mean"]) == summary.rps.mean
        assert number(row["rps_ci95_low"]) == summary.rps.ci95_low
        assert number(row["latency_p99_ms_ci95_high"]) == summary.latency_p99_ms.ci95_high
        assert row["warnings"] == "; ".join(w.message for w in summary.warnings)


def test_several_warnings_share_one_summary_field(tmp_path: Path) -> None:
    # The golden file was measured on a busy machine: some of its rows carry three warnings.
    write_reports(GOLDEN, ("csv",), tmp_path)
    _, rows = read_csv(tmp_path / "summary.csv")
    expected = ["; ".join(w.message for w in s.warnings) for s in load_run(GOLDEN).summaries]
    assert [row["warnings"] for row in rows] == expected
    assert any(row["warnings"].count("; ") == 2 for row in rows)


def test_pandas_reads_the_csv_as_numbers(tmp_path: Path) -> None:
    pandas = pytest.importorskip("pandas")  # not a dependency: checked where it is installed
    write_reports(EXAMPLE, ("csv",), tmp_path)
    for name in ("cells.csv", "summary.csv"):
        frame = pandas.read_csv(tmp_path / name)
        numeric = [column for column in frame.columns if column not in TEXT_COLUMNS]
        assert all(pandas.api.types.is_numeric_dtype(frame[c]) for c in numeric)


def test_a_failed_cell_is_a_row_with_its_error_and_empty_figures(
    example: Run, tmp_path: Path
) -> None:
    # A failure message with a comma, a quote and a newline stays one field.
    error = 'server exited with code 1, see "servers/0001-sync.log"\nTraceback ...'
    first = example.cells[0]
    failed = Cell(key=first.key, repeat=0, status="failed", error=error, started_at="")
    run = replace(example, cells=(failed, *example.cells[1:]))
    path = tmp_path / "results.json"
    path.write_text(json.dumps(run.to_dict()))

    write_reports(path, ("csv",), tmp_path)
    _, rows = read_csv(tmp_path / "cells.csv")
    assert len(rows) == 48
    assert rows[0]["status"] == "failed" and rows[0]["error"] == error
    figures = [c for c in CELL_COLUMNS if c not in TEXT_COLUMNS | {"concurrency", "repeat"}]
    assert all(rows[0][column] == "" for column in figures)


def test_series_jsonl_has_one_line_per_point_without_histograms(
    example: Run, tmp_path: Path
) -> None:
    assert write_reports(EXAMPLE, ("jsonl",), tmp_path) == [tmp_path / "series.jsonl"]
    lines = (tmp_path / "series.jsonl").read_text(encoding="utf-8").splitlines()
    points = [(cell, point) for cell in example.cells for point in cell.series]
    assert len(lines) == len(points) == 1584
    for line, (cell, point) in zip(lines, points, strict=True):
        record = json.loads(line)
        assert list(record) == SERIES_FIELDS and "histogram" not in record
        assert (record["stack"], record["concurrency"], record["repeat"]) == (
            cell.stack,
            cell.concurrency,
            cell.repeat,
        )
        assert record["t"] == point.t and record["p99_ms"] == point.p99_ms
        assert point.duration_s is not None
        assert record["rps"] == pytest.approx(point.ok / point.duration_s)
    phases = {json.loads(line)["phase"] for line in lines}
    assert phases == {"warmup", "measure"}


def test_a_version_1_file_exports_valid_csv_and_an_empty_series(tmp_path: Path) -> None:
    write_reports(GOLDEN, ("csv", "jsonl"), tmp_path)
    assert (tmp_path / "series.jsonl").read_text() == ""  # version 1 recorded no series
    header, cells = read_csv(tmp_path / "cells.csv")
    assert header == CELL_COLUMNS and len(cells) == 72
    assert_numeric(cells)
    assert all(number(row["rps"]) for row in cells)
    header, summaries = read_csv(tmp_path / "summary.csv")
    assert header == SUMMARY_COLUMNS and len(summaries) == 24
    assert_numeric(summaries)


def test_formats_are_opt_in_and_all_selects_every_one() -> None:
    assert DEFAULT_FORMATS == ("md", "html", "png")  # what `pgarena run` writes
    assert parse_formats("csv, JSONL") == ("csv", "jsonl")
    assert parse_formats("all") == FORMATS
    assert {"csv", "jsonl"} <= set(FORMATS)
    with pytest.raises(UserError, match="unknown report format pdf") as raised:
        parse_formats("csv,pdf")
    assert "\n" not in str(raised.value)


def test_report_command_writes_the_exports(tmp_path: Path) -> None:
    finished = run_pgarena("report", EXAMPLE, "--format", "csv,jsonl", "--out", tmp_path)
    assert finished.returncode == 0, finished.stderr
    names = {Path(line).name for line in finished.stdout.splitlines()}
    assert names == {"cells.csv", "summary.csv", "series.jsonl"}
    refused = run_pgarena("report", EXAMPLE, "--format", "xlsx", "--out", tmp_path)
    assert refused.returncode == 2
    assert refused.stderr.strip().count("\n") == 0 and "xlsx" in refused.stderr
