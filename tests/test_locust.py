"""`pgarena locust` end to end: a real Locust master and two real workers load a real server
on a real PostgreSQL, and the result file they leave is one `report` and `compare` read."""

from __future__ import annotations

import json
from pathlib import Path

from helpers import free_port, run_pgarena

from pgarena.results.file import load_results


def test_locust_with_two_workers_writes_a_result_that_report_and_compare_read(
    database_url: str, tmp_path: Path
) -> None:
    out = tmp_path / "locust"
    run = run_pgarena(
        "locust", "--workers", "2", "--stacks", "async-raw", "--workloads", "crud",
        "--concurrency", "4", "--duration", "2s", "--warmup", "1s", "--repeats", "1",
        "--master-port", str(free_port()), "--out", out,
        env={"DATABASE_URL": database_url}, timeout=180,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]

    document = load_results(out / "results.json")  # validates against the JSON Schema
    assert document["status"] == "complete"
    assert document["metadata"]["generator"]["kind"].startswith("locust ")
    [cell] = document["cells"]
    assert cell["status"] == "ok", cell["error"]
    # crud creates a user, reads, updates and deletes it by the id captured from the answer,
    # and lists users at a random offset: every answer right means placeholders, captures
    # and checks all work through Locust.
    assert sum(cell["errors"].values()) == 0, cell["errors"]
    assert cell["ok"] == cell["requests"] > 0
    by_worker = cell["resources"]["generator_workers"]
    assert len(by_worker) == 2 and min(by_worker.values()) > 0
    assert sum(by_worker.values()) == cell["requests"]
    measured = [point for point in cell["series"] if point["phase"] == "measure"]
    assert sum(point["ok"] for point in measured) == cell["ok"]
    assert cell["warmup"]["requests"] > 0
    assert cell["latency_ms"]["p99"] >= cell["latency_ms"]["p50"] > 0
    assert cell["rps"] > 0 and cell["resources"]["server_cpu_s"] > 0

    report = run_pgarena("report", out / "results.json", "--format", "md")
    assert report.returncode == 0, report.stderr
    assert "async-raw" in (out / "report.md").read_text()
    compare = run_pgarena("compare", out / "results.json", out / "results.json", "--format", "json")
    assert compare.returncode == 0, compare.stderr
    assert json.loads(compare.stdout)["regressions"] == 0
