"""`pgarena locust` end to end: a real Locust master and two real workers (one it starts, one
started apart as on another machine) load a real server on a real PostgreSQL, and the result
file they leave is one `report` and `compare` read."""

from __future__ import annotations

import subprocess
from pathlib import Path

from helpers import free_port, run_pgarena, running_server, start_pgarena, stop

from pgarena.report.build import write_reports
from pgarena.report.compare import compare_results
from pgarena.results.file import load_results


def test_locust_with_two_workers_writes_a_result_that_report_and_compare_read(
    database_url: str, tmp_path: Path
) -> None:
    out, port = tmp_path / "locust", free_port()
    # The worker "on another machine", started first as its user would: it waits for the master.
    remote = ["--worker", "--master-host", "127.0.0.1", "--master-port", str(port)]
    remote += ["--workloads", "crud"]
    worker = start_pgarena(
        "locust", *remote, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    try:
        run = run_pgarena(
            "locust", "--workers", "1", "--expect-workers", "2", "--stacks", "async-raw",
            "--workloads", "crud", "--concurrency", "4", "--duration", "1.5s",
            "--warmup", "0.5s", "--repeats", "1", "--master-port", str(port), "--out", out,
            env={"DATABASE_URL": database_url}, timeout=180,
        )  # fmt: skip
        assert worker.wait(timeout=30) == 0  # the master told it to quit
    finally:
        stop(worker)
    # The line to run on the other machine, printed while the master waits for it.
    assert "pgarena locust " + " ".join(remote) in " ".join(run.stderr.split())
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

    # `pgarena report` and `pgarena compare` read it as they read `pgarena run`'s.
    write_reports(out / "results.json", formats=["md"])
    assert "async-raw" in (out / "report.md").read_text()
    comparison = compare_results(out / "results.json", out / "results.json")
    assert comparison.exit_code == 0 and len(comparison.cells) == 1


def test_locust_runs_two_named_targets_in_turns_and_watches_their_database(
    database_url: str, tmp_path: Path
) -> None:
    # An A/B run through Locust: two running services on one database, pgarena started neither.
    with (
        running_server(database_url, "--stack", "async-raw") as first,
        running_server(database_url, "--stack", "sync-raw") as second,
    ):
        run = run_pgarena(
            "locust", "--target", f"a={first}", "--target", f"b={second}",
            "--target-database", database_url, "--workloads", "db", "--concurrency", "4",
            "--duration", "1s", "--warmup", "0.5s", "--repeats", "2",
            "--master-port", str(free_port()), "--out", tmp_path / "ab",
            timeout=240,
        )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]

    document = load_results(tmp_path / "ab" / "results.json")
    assert [cell["stack"] for cell in document["cells"]] == ["a", "b"] * 2
    assert document["metadata"]["target"] == {"a": first, "b": second}
    for cell in document["cells"]:
        assert cell["status"] == "ok" and cell["ok"] > 0, cell["error"]
        # Read from the targets' database: one prepared SELECT per request, no churn.
        resources = cell["resources"]
        assert 0.75 < resources["statements"] / cell["requests"] < 1.25, resources
        assert resources["new_connections"] is not None
        # Both listen on this machine: their processes are found and measured.
        assert resources["server_cpu_s"] > 0
    assert document["metadata"]["postgres"]["version"]
