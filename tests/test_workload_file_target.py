"""`pgarena run --target URL --workload-file FILE` against a FastAPI app that is not pgarena's.

The app (tests/tiny_app.py) runs under uvicorn in a subprocess; the workload file logs
nothing in but does what a user's file does: a setup request, a header and a JSON body, a
value captured from one answer (a dotted path) and used in the next request's path.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from helpers import run_pgarena, running_tiny_app

from pgarena.results.file import load_results

WORKLOAD = """\
name = "items"
description = "create an item, read it back"

[[setup]]
method = "POST"
path = "/items"
headers = { X-Api-Key = "secret-key" }
json = { name = "first", price = 1.5 }
expect_status = 201
capture = { first_id = "data.id" }

[[scenario]]
weight = 3

[[scenario.request]]
method = "POST"
path = "/items"
headers = { X-Api-Key = "secret-key" }
json = { name = "item {unique}", price = 9.99 }
expect_status = 201
capture = { item_id = "data.id" }

[[scenario.request]]
path = "/items/{item_id}"
expect_body = "item "

[[scenario]]
weight = 1
think_time = "1ms"

[[scenario.request]]
path = "/items/{first_id}"
expect_body = '"name":"first"'
"""


@pytest.fixture(scope="module")
def tiny_app() -> Iterator[str]:
    """tests/tiny_app.py under uvicorn on a free port; yields its base URL."""
    with running_tiny_app() as base_url:
        yield base_url


def run_file(target: str, text: str, tmp_path: Path, *extra: str) -> subprocess.CompletedProcess:
    workload = tmp_path / "items.toml"
    workload.write_text(text)
    return run_pgarena(
        "run", "--target", target, "--workload-file", workload,
        "--concurrency", "2", "--duration", "1s", "--warmup", "0.2s", "--repeats", "1",
        "--out", tmp_path / "out", *extra,
        timeout=120,
    )  # fmt: skip


def test_a_workload_file_measures_a_users_own_service(tiny_app: str, tmp_path: Path) -> None:
    run = run_file(tiny_app, WORKLOAD, tmp_path, "--allow-writes")

    assert run.returncode == 0, run.stderr
    document = load_results(tmp_path / "out")
    [cell] = document["cells"]
    assert (cell["stack"], cell["workload"]) == ("target", "items")
    assert cell["status"] == "ok"
    assert cell["ok"] > 0
    assert sum(cell["errors"].values()) == 0, cell["errors"]
    assert (tmp_path / "out" / "report.md").is_file()
    # The service saw what the file asked for: items it created and could read back.
    assert httpx.get(f"{tiny_app}/items/1").json()["name"] == "first"


def test_a_writing_file_needs_allow_writes_against_a_target(tiny_app: str, tmp_path: Path) -> None:
    run = run_file(tiny_app, WORKLOAD, tmp_path)

    assert run.returncode == 2
    assert "items write to the target" in run.stderr and "--allow-writes" in run.stderr


def test_a_malformed_file_is_a_one_line_error_naming_the_problem(
    tiny_app: str, tmp_path: Path
) -> None:
    broken = WORKLOAD.replace('json = { name = "item', 'jsn = { name = "item')

    run = run_file(tiny_app, broken, tmp_path, "--allow-writes")

    assert run.returncode == 2
    [line] = run.stderr.strip().splitlines()
    assert 'items.toml: scenario 1, request 1 (line 15): unknown key "jsn"' in line
    assert not (tmp_path / "out").exists()


def test_https_against_a_plain_http_service_fails_its_cell_with_tls_errors(
    tiny_app: str, tmp_path: Path
) -> None:
    reads = 'name = "health"\n[[scenario]]\n[[scenario.request]]\npath = "/health"\n'

    run = run_file(tiny_app.replace("http://", "https://"), reads, tmp_path)

    document = load_results(tmp_path / "out")
    [cell] = document["cells"]
    assert cell["status"] == "failed", run.stderr
    assert cell["ok"] == 0
    assert cell["errors"]["tls"] > 0


def test_two_named_targets_alternate_in_one_run_and_the_second_is_judged_against_the_first(
    tiny_app: str, tmp_path: Path
) -> None:
    # The same service twice, the second through a prefix whose /health does real work
    # first: an A/B run of a change that made it slower.
    heavy = f"{tiny_app}/heavy"
    reads = tmp_path / "health.toml"
    reads.write_text('name = "health"\n[[scenario]]\n[[scenario.request]]\npath = "/health"\n')

    run = run_pgarena(
        "run", "--target", f"before={tiny_app}", "--target", f"after={heavy}",
        "--workload-file", reads, "--concurrency", "2", "--duration", "1s", "--warmup", "0.2s",
        "--repeats", "2", "--out", tmp_path / "out", "--json",
        timeout=120,
    )  # fmt: skip

    assert run.returncode == 0, run.stderr
    document = load_results(tmp_path / "out")
    assert [cell["stack"] for cell in document["cells"]] == ["before", "after"] * 2
    assert all(cell["status"] == "ok" and cell["ok"] > 0 for cell in document["cells"])
    assert document["metadata"]["target"] == {"before": tiny_app, "after": heavy}
    [verdict] = json.loads(run.stdout)["verdicts"]
    assert (verdict["stack"], verdict["base"]) == ("after", "before")
    assert verdict["rps"]["ratio"] < 0.5
    assert verdict["rps"]["verdict"] == "slower"
    # Both listen on this machine: found by their port, their CPU is measured, so the CPU
    # each request costs gets its verdict too.
    assert all(cell["requests_per_server_cpu_s"] > 0 for cell in document["cells"])
    notes = document["metadata"]["notes"]
    assert any(note.startswith("after: server CPU and memory of process") for note in notes)
    assert verdict["requests_per_server_cpu_s"]["verdict"] == "slower"
    assert f"before: {tiny_app}, after: {heavy}" in (tmp_path / "out" / "report.md").read_text()
