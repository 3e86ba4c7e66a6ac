"""`pgarena run` end to end: real PostgreSQL, real servers, a real result file."""

from __future__ import annotations

import json
import signal
import subprocess
import threading
import time
from pathlib import Path

import psutil
import pytest
from bench_known_server import KnownServer
from helpers import start_pgarena

from pgarena.bench.database import PreparedDatabase
from pgarena.bench.plan import Plan, build_plan
from pgarena.bench.runner import RunConfig, Target, run_plan
from pgarena.bench.servers import ServerOptions, health_ok
from pgarena.bench.workloads import WORKLOADS, DataSizes
from pgarena.database.seed import seed_database
from pgarena.errors import UserError
from pgarena.results.file import load_results, validate


def pgarena(*args: str, database_url: str | None = None, **kwargs: object) -> subprocess.Popen:
    """`pgarena ARGS` in the background, text output piped, on `database_url` (None: the
    embedded server, whatever this process's environment says)."""
    return start_pgarena(
        *args,
        env={"DATABASE_URL": database_url},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,
    )


def serve_processes() -> list[psutil.Process]:
    """`pgarena serve` processes this test process started (directly or not); never anyone
    else's, since other suites may run servers on the same machine."""
    found = []
    for process in psutil.Process().children(recursive=True):
        try:
            cmdline = process.cmdline()
        except psutil.Error:
            continue
        if "serve" in cmdline and "--port" in cmdline:
            found.append(process)
    return found


@pytest.mark.slow
def test_a_small_run_writes_a_valid_result_with_interleaved_repeats(
    database_url: str, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    run = pgarena(
        "run", "--stacks", "sync,async", "--workloads", "standard", "--concurrency", "2",
        "--duration", "1s", "--warmup", "0.5s", "--repeats", "2", "--out", str(out),
        database_url=database_url,
    )  # fmt: skip
    stdout, stderr = run.communicate(timeout=180)

    assert run.returncode == 0, stderr
    document = load_results(out / "results.json")  # validates against the JSON Schema
    assert document["status"] == "complete"
    cells = document["cells"]
    # All stacks once, then all stacks again.
    assert [(c["stack"], c["repeat"]) for c in cells] == [
        ("sync", 0), ("async", 0), ("sync", 1), ("async", 1)
    ]  # fmt: skip
    for cell in cells:
        assert cell["status"] == "ok", cell["error"]
        assert cell["ok"] > 0 and cell["rps"] > 0
        assert cell["latency_ms"]["p99"] >= cell["latency_ms"]["p50"] > 0
        assert cell["warmup"]["requests"] > 0
        resources = cell["resources"]
        assert resources["server_cpu_s"] > 0
        assert resources["postgres_cpu_s"] > 0
        assert resources["generator_cpu_s"] > 0
        assert resources["server_rss_peak_bytes"] > 10_000_000
        assert resources["db_connections_max"] >= 1
        assert cell["requests_per_server_cpu_s"] > 0
        assert 0 < cell["cpu_share"]["server"] <= 1
        # Every interval of the cell's load, warmup included, is in its series; the steady
        # part's throughput comes with a within-cell interval.
        measured = [p for p in cell["series"] if p["phase"] == "measure"]
        assert len(measured) >= 5 and cell["series"][0]["phase"] == "warmup"
        assert sum(p["ok"] for p in measured) == cell["ok"]
        assert all(p["server_cpu_s"] is not None for p in measured[1:-1])
        steady = cell["steady"]["batches"]["estimate"]
        assert steady["mean"] == pytest.approx(cell["rps"])
        assert cell["statements_per_request"] > 0
    summary = {(s["stack"], s["workload"], s["concurrency"]): s for s in document["summary"]}
    assert set(summary) == {("sync", "standard", 2), ("async", "standard", 2)}
    for (stack, _, _), figures in summary.items():
        rps = [c["rps"] for c in cells if c["stack"] == stack]
        assert figures["rps"]["mean"] == pytest.approx(sum(rps) / 2)
        assert figures["repeats"] == 2
        assert figures["rps"]["ci95_low"] <= figures["rps"]["mean"] <= figures["rps"]["ci95_high"]
    metadata = document["metadata"]
    assert metadata["postgres"]["version"]
    assert metadata["machine"]["cpu_count"] >= 1
    assert "fastapi" in metadata["packages"]
    assert metadata["data"]["users"] > 0 and metadata["data"]["reset"]
    assert metadata["command_line"][1:3] == ["run", "--stacks"]
    assert document["plan"]["repeats"] == 2 and document["plan"]["mode"] == "closed"
    # The final table, on stdout, names both stacks and the file.
    assert "results:" in stdout and "sync" in stdout and "async" in stdout


@pytest.mark.slow
def test_killing_a_run_keeps_its_finished_cells_in_a_valid_file(
    database_url: str, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    run = pgarena(
        "run", "--stacks", "async", "--workloads", "db", "--concurrency", "2",
        "--duration", "1s", "--warmup", "0.2s", "--repeats", "20",
        "--server-lifetime", "stack", "--out", str(out), database_url=database_url,
    )  # fmt: skip
    results = out / "results.json"
    deadline = time.monotonic() + 120
    seen_running = None
    while time.monotonic() < deadline:
        if results.exists():
            document = json.loads(results.read_text())  # valid JSON at any moment
            if len(document["cells"]) >= 2:
                seen_running = document
                break
        time.sleep(0.05)
    assert seen_running is not None, run.stderr.read() if run.stderr else ""
    assert seen_running["status"] == "running"
    validate(seen_running)

    run.send_signal(signal.SIGTERM)
    run.communicate(timeout=60)

    assert run.returncode == 130
    document = load_results(results)
    assert document["status"] == "interrupted"
    assert document["finished_at"] is not None
    assert 2 <= len(document["cells"]) < 20
    assert document["cells"][:2] == seen_running["cells"][:2]
    assert all(cell["status"] == "ok" for cell in document["cells"])
    assert serve_processes() == []  # the server was stopped, not orphaned


@pytest.mark.slow
def test_a_server_that_dies_or_never_starts_fails_its_cell_and_the_run_goes_on(
    database_url: str, tmp_path: Path
) -> None:
    plan = Plan(
        stacks=("sync", "async"),
        workloads=(WORKLOADS["standard"],),
        concurrency=(2,),
        repeats=1,
        duration_s=2.0,
        requests=None,
        warmup_s=0.5,
        rate=None,
        preset=None,
    )
    data = DataSizes()
    seed_database(database_url, users=data.users, products=data.products, orders=data.orders)
    killed: list[int] = []

    def kill_the_sync_server() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not killed:
            for process in serve_processes():
                cmdline = process.cmdline()
                port = int(cmdline[cmdline.index("--port") + 1])
                if "sync" in cmdline and health_ok("127.0.0.1", port):
                    time.sleep(0.8)  # into the measured window
                    process.kill()
                    killed.append(process.pid)
                    return
            time.sleep(0.05)

    killer = threading.Thread(target=kill_the_sync_server)
    killer.start()
    database = PreparedDatabase(database_url, embedded=False, seed_seconds=0.0, data=data)
    writer = run_plan(RunConfig(plan, tmp_path / "crash", database=database))
    killer.join()

    assert killed
    died, survived = writer.run.cells
    assert died.key.stack == "sync" and died.status == "failed"
    assert died.error is not None and "server exited with code -9" in died.error
    assert survived.key.stack == "async" and survived.status == "ok", survived.error
    assert writer.run.status == "complete"
    warnings = {s.key.stack: [w.message for w in s.warnings] for s in writer.run.summaries}
    assert any(w.startswith("failed: 1 of 1") for w in warnings["sync"])
    load_results(writer.path)

    # A server that cannot start: its cells fail with serve's own reason, one line.
    broken = RunConfig(
        Plan(**{**plan.__dict__, "stacks": ("async",)}),
        tmp_path / "broken",
        database=database,
        server_options=ServerOptions(pool_size=0),
    )
    (cell,) = run_plan(broken).run.cells
    assert cell.status == "failed" and cell.error is not None
    assert "before answering /health" in cell.error
    assert "pool" in cell.error.lower()
    load_results(tmp_path / "broken")


@pytest.mark.parametrize("stack", ["sync", "async-raw"])
def test_a_server_the_run_starts_has_its_pool_filled_before_its_first_cell(
    database_url: str, tmp_path: Path, stack: str
) -> None:
    # A pool opens a connection only when every open one is taken, and a sync stack's
    # threads seldom take them all at once: its pool grew in measured windows, after the
    # warmup. The harness has each server it starts open them first, so even one client,
    # which needs a single connection, meets a full pool: 5 pooled and /health's own.
    seed_database(database_url, users=100, products=10, orders=100)
    database = PreparedDatabase(database_url, embedded=False, seed_seconds=0.0, data=DataSizes())
    plan = build_plan(
        "quick", [stack], workloads=["db"], concurrency=[1], duration_s=0.5, warmup_s=0.2,
        repeats=1,
    )  # fmt: skip
    options = ServerOptions(pool_size=5)
    config = RunConfig(plan, tmp_path, database=database, server_options=options)
    (cell,) = run_plan(config).run.cells
    assert cell.status == "ok", cell.error
    assert cell.resources["db_connections_max"] == 5 + 1
    assert cell.resources["new_connections"] == 0


def test_target_mode_measures_a_running_service_without_server_figures(
    tmp_path: Path,
) -> None:
    with KnownServer() as server:
        run = pgarena(
            "run", "--target", f"http://127.0.0.1:{server.port}", "--workloads", "json,db",
            "--concurrency", "2", "--duration", "0.5s", "--warmup", "0s", "--repeats", "1",
            "--out", str(tmp_path),
        )  # fmt: skip
        _, stderr = run.communicate(timeout=60)

    # Every cell fails (below), so the run exits 1 although its results are written.
    assert run.returncode == 1, stderr
    assert "every cell failed (2), first: " in stderr  # the reason, on the same line
    document = load_results(tmp_path)
    assert document["metadata"]["target"] == f"http://127.0.0.1:{server.port}"
    assert document["metadata"]["postgres"] is None
    assert any("target mode" in note for note in document["metadata"]["notes"])
    json_cell, db_cell = document["cells"]
    # The known server answers {"id": 1, ...}: not TechEmpower's bodies, so every
    # request is an error and the cells fail, saying so, instead of reporting throughput.
    for cell in (json_cell, db_cell):
        assert cell["status"] == "failed"
        assert cell["error"].startswith("no correct answer")
        assert cell["errors"]["body"] > 0
        assert cell["resources"]["server_cpu_s"] is None
        assert cell["requests_per_server_cpu_s"] is None


def test_target_mode_refuses_writing_workloads_unless_allowed() -> None:
    run = pgarena("run", "--target", "http://127.0.0.1:9", "--workloads", "mixed")
    _, stderr = run.communicate(timeout=60)

    assert run.returncode == 2
    assert "--allow-writes" in stderr
    assert "Traceback" not in stderr


def test_bad_targets_are_one_line_errors() -> None:
    with pytest.raises(UserError, match="http://"):
        Target.parse("https://example.invalid")


@pytest.mark.slow
def test_run_on_another_asgi_server_records_it_and_its_resolved_settings(
    database_url: str, tmp_path: Path
) -> None:
    run = pgarena(
        "run", "--stacks", "async", "--workloads", "json", "--concurrency", "2",
        "--duration", "0.5s", "--warmup", "0.2s", "--repeats", "1", "--server", "granian",
        "--pool-size", "3", "--out", str(tmp_path),
        database_url=database_url,
    )  # fmt: skip
    _, stderr = run.communicate(timeout=240)
    assert run.returncode == 0, stderr

    results = load_results(tmp_path / "results.json")
    assert results["metadata"]["server"] == {
        "pool_size": 3, "max_overflow": 0, "threads": 3, "workers": 1, "server": "granian"
    }  # fmt: skip
    [cell] = results["cells"]
    assert cell["status"] == "ok" and cell["ok"] > 0
    [server_log] = (tmp_path / "servers").iterdir()
    assert "granian (ASGI" in server_log.read_text()  # the banner of the server that ran


def test_unknown_server_is_a_one_line_error() -> None:
    run = pgarena("run", "--server", "tornado")
    _, stderr = run.communicate(timeout=60)
    assert run.returncode == 2
    assert stderr.strip().splitlines() == [
        "error: unknown server 'tornado'; choose from: uvicorn, gunicorn, granian"
    ]


# An ORM stack reads with its raw twin's statements and no more: reads run in autocommit
# (`service/stacks/orm.py`, `autocommit`). Anything beyond that is an ORM inefficiency (a
# lazy load, an extra refresh, a BEGIN and COMMIT around a read) that this test exists to
# catch.


@pytest.mark.slow
def test_orm_stacks_read_with_the_statements_of_their_raw_twins(
    database_url: str, tmp_path: Path
) -> None:
    stacks = ("sync", "sync-raw", "async", "async-raw")
    plan = Plan(
        stacks=stacks, workloads=(WORKLOADS["standard"],), concurrency=(2,), repeats=1,
        duration_s=1.0, requests=None, warmup_s=0.3, rate=None, preset=None,
    )  # fmt: skip
    data = DataSizes()
    seed_database(database_url, users=data.users, products=data.products, orders=data.orders)
    database = PreparedDatabase(database_url, embedded=False, seed_seconds=0.0, data=data)
    run = run_plan(RunConfig(plan, tmp_path, database=database)).run

    per_request = {cell.key.stack: cell.statements_per_request for cell in run.cells}
    sources = {cell.resources["statements_source"] for cell in run.cells}
    assert sources == {"pg_stat_statements"}
    for raw in ("sync-raw", "async-raw"):
        assert per_request[raw] == pytest.approx(1.0, abs=0.05)  # one SELECT per request
    for orm, raw in (("sync", "sync-raw"), ("async", "async-raw")):
        assert per_request[orm] == pytest.approx(per_request[raw], abs=0.05), per_request
    summary = {s.key.stack: s.statements_per_request for s in run.summaries}
    assert summary == pytest.approx(per_request)


@pytest.mark.slow
def test_slos_decide_the_exit_code_and_are_recorded(database_url: str, tmp_path: Path) -> None:
    common = (
        "run", "--stacks", "async", "--workloads", "json", "--concurrency", "2",
        "--duration", "0.5s", "--warmup", "0.2s", "--repeats", "1",
    )  # fmt: skip
    failing = pgarena(*common, "--out", str(tmp_path / "a"), "--slo", "p99<0.001ms",
                      database_url=database_url)  # fmt: skip
    stdout, stderr = failing.communicate(timeout=120)
    assert failing.returncode == 1, stderr
    assert "SLO failed p99<0.001ms on async/json@2" in stdout
    [result] = load_results(tmp_path / "a")["slo"]
    assert result["passed"] is False and result["observed"] > 0.001
    assert "Service-level objectives" in (tmp_path / "a" / "report.md").read_text()

    passing = pgarena(*common, "--out", str(tmp_path / "b"), "--slo", "p99<60s",
                      "--slo", "errors<1%", database_url=database_url)  # fmt: skip
    _, stderr = passing.communicate(timeout=120)
    assert passing.returncode == 0, stderr
    assert [r["passed"] for r in load_results(tmp_path / "b")["slo"]] == [True, True]


def test_a_malformed_slo_is_a_usage_error_before_any_work() -> None:
    run = pgarena("run", "--slo", "p99 under 100ms")
    _, stderr = run.communicate(timeout=60)
    assert run.returncode == 2
    assert stderr.startswith("error: invalid SLO 'p99 under 100ms'")
    assert "Traceback" not in stderr and len(stderr.strip().splitlines()) == 1


def test_an_unwritable_output_directory_fails_before_any_work(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    run = pgarena("run", "--out", str(blocker / "results"), "--stacks", "async")
    _, stderr = run.communicate(timeout=60)
    assert run.returncode == 2, stderr
    assert stderr.startswith("error: --out: cannot write results to")
    assert "Traceback" not in stderr
