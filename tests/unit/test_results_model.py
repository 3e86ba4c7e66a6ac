"""The results model against a committed real run of schema version 1: read, migrate,
summarise, render and compare, with no PostgreSQL and no server."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import pytest

from pgarena.errors import UserError
from pgarena.report.build import write_reports
from pgarena.report.compare import (
    compare_results,
    parse_metrics,
    parse_threshold,
    render_comparison,
)
from pgarena.results.file import SCHEMA_VERSION, ResultWriter, load_results, load_run, validate
from pgarena.results.model import (
    RESOURCE_FIELDS,
    Cell,
    CellKey,
    Run,
    SeriesPoint,
    group_cells,
)
from pgarena.results.summary import finish_cell, summarize_run

GOLDEN = Path(__file__).parent / "data" / "results-v1.json"


@pytest.fixture(scope="module")
def golden() -> Run:
    return load_run(GOLDEN)


def test_a_version_1_file_is_migrated_and_valid_for_the_current_schema(golden: Run) -> None:
    assert json.loads(GOLDEN.read_text())["schema_version"] == 1
    assert golden.schema_version == SCHEMA_VERSION
    validate(golden.to_dict())
    assert len(golden.cells) == 72 and len(golden.summaries) == 24


def test_every_summary_row_has_a_throughput_interval_around_its_mean(golden: Run) -> None:
    for summary in golden.summaries:
        rps = summary.rps
        assert summary.repeats == 3
        assert rps.ci95_low is not None and rps.ci95_high is not None
        assert rps.ci95_low < rps.mean < rps.ci95_high


def test_a_summary_mean_is_the_mean_of_its_repeats(golden: Run) -> None:
    for key, members in group_cells(golden.cells).items():
        summary = golden.summary(key)
        assert summary is not None
        values = [cell.rps for cell in members if cell.measured]
        assert summary.rps.mean == pytest.approx(sum(values) / len(values))


def test_records_survive_a_json_round_trip(golden: Run) -> None:
    again = Run.from_dict(json.loads(json.dumps(golden.to_dict())))
    assert again == golden


def test_cells_are_grouped_by_key_in_repeat_order(golden: Run) -> None:
    groups = group_cells(reversed(golden.cells))
    for members in groups.values():
        assert [cell.repeat for cell in members] == [0, 1, 2]
    assert len(groups) == 24


def test_a_failed_cell_has_the_shape_of_a_measured_one() -> None:
    failed = Cell(CellKey("sync", "db", 10), 0, "failed", "server died", "2026-01-01T00:00:00Z")
    data = failed.to_dict()
    measured = load_run(GOLDEN).cells[0].to_dict()
    assert set(data) == set(measured)
    assert Cell.from_dict(data) == failed


def _series(rates: list[float], interval: float = 0.1, warmup: int = 5) -> tuple:
    return tuple(
        SeriesPoint(
            t=i * interval,
            phase="warmup" if i < warmup else "measure",
            ok=round(rate * interval),
            errors=0,
            duration_s=interval,
        )
        for i, rate in enumerate(rates)
    )


def test_a_cells_throughput_comes_from_its_steady_part_with_a_within_cell_interval() -> None:
    # A cold start (slow first second), then a steady 1,000 requests/s with some noise.
    rates = [200.0, 400.0, 600.0, 800.0, 900.0] + [1000.0 + (i % 3 - 1) * 30 for i in range(40)]
    cell = Cell(
        CellKey("async", "db", 10), 0, "ok", None, "2026-01-01T00:00:00Z", series=_series(rates)
    )
    finished = finish_cell(cell, 0.1)
    assert finished.steady is not None
    assert finished.steady.start_s >= 0.5  # the warmup is never counted
    assert finished.rps == pytest.approx(1000.0, rel=0.02)
    estimate = finished.steady.rps
    assert estimate.method == "batch means"
    assert estimate.ci95_low < 1000.0 < estimate.ci95_high


def test_the_writer_stores_summaries_that_readers_never_recompute(tmp_path: Path) -> None:
    golden = load_run(GOLDEN)
    writer = ResultWriter(tmp_path, dict(golden.metadata), dict(golden.plan))
    for cell in golden.cells[:8]:
        writer.add_cell(cell)
    stored = json.loads((tmp_path / "results.json").read_text())
    assert stored["status"] == "running"
    assert [s for s in stored["summary"]] == [s.to_dict() for s in summarize_run(golden.cells[:8])]
    load_results(tmp_path)  # valid at every moment


def _scaled(run: Run, factor: float) -> Run:
    cells = tuple(replace(cell, rps=cell.rps * factor) if cell.rps else cell for cell in run.cells)
    return replace(run, cells=cells, summaries=tuple(summarize_run(cells)))


def _files(golden: Run, tmp_path: Path, factor: float) -> tuple[Path, Path]:
    """The golden run and a copy whose throughput is `factor` times it, as result files."""
    base, scaled = tmp_path / "base.json", tmp_path / "scaled.json"
    base.write_text(json.dumps(golden.to_dict()))
    scaled.write_text(json.dumps(_scaled(golden, factor).to_dict()))
    return base, scaled


def test_compare_gates_a_25_percent_drop_and_passes_the_same_run(
    golden: Run, tmp_path: Path
) -> None:
    base, slower = _files(golden, tmp_path, 0.75)

    same = compare_results(base, base, metrics=("rps",))
    assert same.exit_code == 0 and not same.regressions
    dropped = compare_results(base, slower, metrics=("rps",))
    assert dropped.exit_code == 1
    assert len(dropped.regressions) >= len(dropped.cells) // 2
    assert all(cell.comparison.ratio == pytest.approx(0.75) for cell in dropped.cells)
    # Holm is stricter: never more calls than Benjamini-Hochberg.
    holm = compare_results(base, slower, metrics=("rps",), correction="holm")
    assert len(holm.regressions) <= len(dropped.regressions)


def test_better_is_corrected_as_its_own_family_and_reported_with_its_own_p(
    golden: Run, tmp_path: Path
) -> None:
    base, faster = _files(golden, tmp_path, 1.3)
    report = compare_results(base, faster, metrics=("rps",))
    better = [cell for cell in report.cells if cell.verdict == "better"]
    assert better and report.exit_code == 0
    assert all(cell.p_better_adjusted is not None for cell in report.cells)
    # Every "better" stands on its corrected p-value; the rest are within noise.
    for cell in report.cells:
        called = cell.p_better_adjusted < 0.05 and cell.comparison.verdict == "faster"
        assert (cell.verdict == "better") == called
        assert cell.p_better_adjusted >= cell.p_better
    assert "p better" in render_comparison(report, "text")


def test_reports_render_from_the_golden_file(tmp_path: Path) -> None:
    written = write_reports(GOLDEN, ("md",), tmp_path)
    markdown = (tmp_path / "report.md").read_text()
    assert written == [tmp_path / "report.md"]
    assert "## db" in markdown and "## slow-db" in markdown
    assert "Holm" in markdown
    assert "async-raw faster" in markdown  # 2.9-4.1x sync's throughput in this run
    assert markdown.count("one repeat") == 0  # three repeats per cell


@pytest.mark.parametrize(
    ("text", "value"), [("5%", 0.05), ("5", 0.05), ("0.05", 0.05), ("0%", 0.0), ("12.5%", 0.125)]
)
def test_thresholds_read_as_people_write_them(text: str, value: float) -> None:
    assert parse_threshold(text) == pytest.approx(value)


@pytest.mark.parametrize("text", ["lots", "100%", "-1%", "nan"])
def test_bad_thresholds_are_user_errors(text: str) -> None:
    with pytest.raises(UserError, match="--threshold"):
        parse_threshold(text)


def test_metrics_parse_and_reject_unknown_names() -> None:
    assert parse_metrics("rps, p99") == ("rps", "p99")
    assert parse_metrics("all") == ("rps", "p99", "errors")
    with pytest.raises(UserError, match="p95"):
        parse_metrics("rps,p95")


def _autocorrelated_cell(repeat: int) -> Cell:
    # A slow wave: neighbouring points are alike, so every batch size allowed stays correlated.
    rates = [1000.0 + 200.0 * math.sin(2 * math.pi * i / 30) for i in range(45)]
    cell = Cell(
        CellKey("async", "db", 10),
        repeat,
        "ok",
        None,
        "2026-01-01T00:00:00Z",
        series=_series(rates),
    )
    return finish_cell(cell, 0.1)


def test_correlated_batches_are_flagged_only_where_they_set_the_interval() -> None:
    one = _autocorrelated_cell(0)
    assert one.steady is not None and not one.steady.batches.independent
    [alone] = summarize_run([one])
    assert "autocorrelated" in {w.kind for w in alone.warnings}
    [repeated] = summarize_run([one, _autocorrelated_cell(1)])
    assert "autocorrelated" not in {w.kind for w in repeated.warnings}
    assert repeated.rps.method in ("repeats", "pooled repeats")


def test_files_without_new_connections_load_and_churn_is_flagged(golden: Run) -> None:
    # Files written before connections were counted (the golden one) load with None.
    assert all(cell.new_connections_per_s is None for cell in golden.cells)
    assert all(cell.reopened_connections_per_s is None for cell in golden.cells)
    assert all(summary.new_connections_per_s is None for summary in golden.summaries)
    assert not any(w.kind == "connection-churn" for s in golden.summaries for w in s.warnings)
    rates = [1000.0 + (i % 3 - 1) * 30 for i in range(40)]

    def cell(repeat: int, new: int, growth: int) -> Cell:
        measured = Cell(
            CellKey("async", "db", 50), repeat, "ok", None, "2026-01-01T00:00:00Z",
            duration_s=4.0, series=_series(rates), new_connections_per_s=new / 4.0,
            resources={
                **dict.fromkeys(RESOURCE_FIELDS), "new_connections": new,
                "db_connections_growth": growth,
            },
        )  # fmt: skip
        return finish_cell(measured, 0.1)

    # 56 and 80 connections opened in 4 s by a pool that stayed the same size: churn.
    [churning] = summarize_run([cell(0, 56, 0), cell(1, 80, 0)])
    assert churning.new_connections_per_s == pytest.approx(17.0)
    [warning] = [w for w in churning.warnings if w.kind == "connection-churn"]
    assert "17.0 PostgreSQL connections/s closed and reopened" in warning.message
    # A pool that opened its last 6 connections after the warmup grew; it did not churn.
    [growing] = summarize_run([cell(0, 6, 6), cell(1, 0, 0)])
    assert growing.new_connections_per_s == pytest.approx(0.75)
    assert not any(w.kind == "connection-churn" for w in growing.warnings)
    churning_cell = cell(0, 56, 0).to_dict()
    assert Cell.from_dict(churning_cell).new_connections_per_s == 14.0
    validate({**golden.to_dict(), "cells": [churning_cell], "summary": [churning.to_dict()]})
