"""`pgarena claims` end to end on one claim: real PostgreSQL, real servers, the outputs a
user opens, and the harness's own commands reading its result file."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from helpers import start_pgarena

from pgarena.report.build import write_reports
from pgarena.results.file import load_run


@pytest.mark.slow
def test_one_claim_is_measured_judged_and_reported(database_url: str, tmp_path: Path) -> None:
    out = tmp_path / "claims"
    process = start_pgarena(
        "claims", "--quick", "--only", "seed001-table-1-sync", "--out", str(out),
        env={"DATABASE_URL": database_url},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    stdout, stderr = process.communicate(timeout=240)
    assert process.returncode == 0, stderr
    # the planned duration is said before anything runs
    assert "--quick: estimated" in " ".join(stderr.split("[1/1]")[0].split())
    assert stdout.strip() == str(out / "report.md")

    run = load_run(out)  # the harness's schema, validated on load
    assert {cell.key.workload for cell in run.cells} == {"slow-db-50ms@pool100,overflow0"}
    assert all(cell.measured for cell in run.cells) and len(run.cells) == 4  # 2 stacks x 2

    [row] = json.loads((out / "claims.json").read_text())["claims"]
    assert row["id"] == "seed001-table-1-sync"
    # one client, a 50 ms database call: sync answers in a little over 50 ms
    assert 50 <= row["interval"]["mean"] < 500
    assert row["verdict"] in ("holds", "does not hold", "inconclusive")
    assert "| seed001-table-1-sync | 001 |" in (out / "report.md").read_text()
    assert "seed001-table-1-sync" in (out / "report.html").read_text()

    # `pgarena report` reads the claims' result file like any run's
    [report] = write_reports(out / "results.json", ("md",), tmp_path / "report")
    assert "slow-db-50ms@pool100,overflow0" in report.read_text()
