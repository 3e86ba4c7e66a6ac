"""The claims' outputs from a small result: one row per claim, each with what was measured
(or, for a failed cell, that it failed), the condition a sweep found, a chart per swept
setting, and the same verdicts in claims.json, report.md and report.html."""

from __future__ import annotations

import json
from pathlib import Path

from pgarena.claims.catalogue import load_catalogue
from pgarena.claims.experiments import select
from pgarena.claims.plan import cell_workload
from pgarena.claims.report import write_claims_reports
from pgarena.claims.table import judge_all
from pgarena.results.file import load_run
from pgarena.results.model import Cell, CellKey, Run
from pgarena.results.summary import summarize_run

CLAIMS = load_catalogue()
WHEN = "2026-01-01T00:00:00Z"
CHOSEN = "seed001-table-100-sync,seed001-table-1000-sync,seed003-10x-better-concurrency"


def _cell(stack: str, point: object, repeat: int, **figures: object) -> Cell:
    workload, concurrency = cell_workload(point), point.concurrency  # type: ignore[attr-defined]
    return Cell(CellKey(stack, workload, concurrency), repeat, "ok", None, WHEN, **figures)  # type: ignore[arg-type]


def _run() -> Run:
    """Sync's latency 100 x 50 ms on one thread, 50 ms-ish on more; async 1.2x sync's
    throughput at every database latency; sync at 1000 clients: one repeat timed out."""
    chosen = {claim.id: claim for claim in select(CLAIMS, CHOSEN)}
    table, overload, concurrency = (chosen[name] for name in CHOSEN.split(","))
    cells: list[Cell] = []
    for point in table.experiment.points():
        mean = {1: 5000.0, 4: 1250.0, 40: 130.0, 100: 60.0}[point.threads or 0]
        for repeat, wobble in enumerate((0.97, 1.03)):
            cells.append(_cell("sync", point, repeat, latency_ms={"mean": mean * wobble}))
    for point in concurrency.experiment.points():
        for repeat, wobble in enumerate((0.95, 1.05)):
            cells.append(_cell("sync", point, repeat, rps=500.0 * wobble))
            cells.append(_cell("async", point, repeat, rps=600.0 * wobble))
    [point] = overload.experiment.points()
    cells.append(_cell("sync", point, 0, requests=2000, ok=2000, errors={"timeout": 0}))
    timed_out = _cell("sync", point, 1, requests=1000, ok=0, errors={"timeout": 1000})
    cells.append(Cell(**{**timed_out.__dict__, "status": "failed", "error": "no correct answer"}))
    plan = {"stacks": ["sync", "async"], "duration_s": 1.5, "warmup_s": 0.5, "repeats": 2}
    return Run(2, "complete", WHEN, WHEN, {}, plan, tuple(cells), tuple(summarize_run(cells)))


def test_every_claim_gets_a_measured_row_and_the_sweep_names_its_condition(tmp_path: Path) -> None:
    claims = select(CLAIMS, CHOSEN)
    report = write_claims_reports(claims, _run(), tmp_path, quick=True)
    rows = {row["id"]: row for row in json.loads((tmp_path / "claims.json").read_text())["claims"]}
    assert list(rows) == [c.id for c in claims]

    table = rows["seed001-table-100-sync"]
    assert (table["verdict"], table["holds_only_when"]) == ("holds only when", "threads 1")
    assert [p["verdict"] for p in table["sweep"]["points"]] == ["holds"] + ["does not hold"] * 3
    assert table["measured"].startswith("threads 1: 5000 (")

    # async's 1.2x is nowhere near "10x", at any database latency
    assert rows["seed003-10x-better-concurrency"]["verdict"] == "does not hold"

    # the timed-out repeat counts (it is what "Timeout/Error" predicts) and is named
    overload = rows["seed001-table-1000-sync"]
    assert overload["interval"]["mean"] == 1000 / 3000
    assert overload["verdict"] == "holds"
    assert (
        "1 of 2 sync cells at c1000 failed (no correct answer; errors: timeout 100%)"
        in (overload["failures"])
    )

    markdown = report.read_text()
    assert "| seed001-table-100-sync | 001 |" in markdown
    assert "| holds only when | threads 1 |" in markdown
    assert "⚠ 1 of 2 sync cells at c1000 failed" in markdown
    html = (tmp_path / "report.html").read_text()
    assert html.count("<svg") == 2 and "threads 1" in html
    charts = sorted(p.name for p in (tmp_path / "charts").iterdir())
    assert charts == ["sweep-slow-ms.png", "sweep-threads.png"]
    assert "charts/sweep-threads.png" in markdown


def test_a_claim_whose_cells_all_failed_shows_the_failure_as_its_measurement(
    tmp_path: Path,
) -> None:
    claims = select(CLAIMS, "seed000-rps-10x")
    [point] = claims[0].experiment.points()
    cells = tuple(
        Cell(CellKey(s, cell_workload(point), 100), r, "failed", "server never healthy", WHEN)
        for r in range(2)
        for s in ("sync", "async")
    )
    run = Run(2, "complete", WHEN, WHEN, {}, {"repeats": 2, "warmup_s": 0.5}, cells, ())
    write_claims_reports(claims, run, tmp_path, quick=True)
    [row] = json.loads((tmp_path / "claims.json").read_text())["claims"]
    assert row["verdict"] == "not measured"
    assert row["interval"] is None
    assert row["measured"].startswith("failed: 2 of 2 sync cells at c100 failed (server never")


def test_the_kept_run_in_docs_has_a_measured_row_for_every_claim() -> None:
    # docs/claims is what the README quotes: its result file must still load (schema
    # validated) and give every catalogued claim a row with a measured value
    kept = Path(__file__).resolve().parents[2] / "docs" / "claims" / "results.json"
    rows = judge_all(CLAIMS, load_run(kept), quick=True)
    assert len(rows) == len(CLAIMS) >= 25
    assert all(row.verdict != "not measured" and row.measured for row in rows)
    assert any(row.verdict == "holds only when" for row in rows)
