"""`pgarena compare` on result files of real runs with a known difference, and without one.

The known difference: the `slow-db` workload holds each request in PostgreSQL's pg_sleep,
so at a fixed concurrency a 200 ms sleep allows about a quarter of the requests per second
that a 50 ms sleep does, on any stack and any machine. Both waits are long enough to
dominate the request, so the repeats agree even on a busy machine.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import run_pgarena

from pgarena.database import create_database_if_missing
from pgarena.database.urls import with_database

STACK = "async"
LEVEL = 4


def slow_db_run(postgres_url: str, out: Path, slow_ms: int) -> Path:
    """A real run of slow-db on one stack at one concurrency, 2 repeats; its result file."""
    create_database_if_missing(postgres_url, "pgarena_compare_run")
    finished = run_pgarena(
        "run",
        "--stacks",
        STACK,
        "--workloads",
        "slow-db",
        "--slow-ms",
        str(slow_ms),
        "--concurrency",
        str(LEVEL),
        "--duration",
        "1s",
        "--warmup",
        "0.3s",
        "--repeats",
        "3",
        "--out",
        out,
        env={"DATABASE_URL": with_database(postgres_url, "pgarena_compare_run")},
    )
    assert finished.returncode == 0, finished.stderr[-3000:]
    return out / "results.json"


@pytest.fixture(scope="module")
def sleep_50ms(postgres_url: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Result file of slow-db with a 50 ms database wait."""
    return slow_db_run(postgres_url, tmp_path_factory.mktemp("slow-50ms"), 50)


@pytest.fixture(scope="module")
def sleep_200ms(postgres_url: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Result file of slow-db with a 200 ms database wait."""
    return slow_db_run(postgres_url, tmp_path_factory.mktemp("slow-200ms"), 200)


@pytest.fixture(scope="module")
def sleep_50ms_again(postgres_url: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A second, independent run with exactly the settings of `sleep_50ms`."""
    return slow_db_run(postgres_url, tmp_path_factory.mktemp("slow-50ms-again"), 50)


def compare_json(base: Path, new: Path, *options: str) -> tuple[int, dict]:
    """Compare throughput only (unless options say otherwise), as JSON."""
    finished = run_pgarena("compare", base, new, "--format", "json", "--metric", "rps", *options)
    assert finished.returncode in (0, 1), finished.stderr
    return finished.returncode, json.loads(finished.stdout)


def test_a_run_compared_with_itself_is_within_noise_and_exits_0(sleep_50ms: Path) -> None:
    code, report = compare_json(sleep_50ms, sleep_50ms)
    assert code == 0
    [cell] = report["cells"]
    assert (cell["stack"], cell["workload"], cell["concurrency"]) == (STACK, "slow-db", LEVEL)
    assert cell["ratio"] == pytest.approx(1.0)
    assert cell["verdict"] == "within noise"
    assert report["warnings"] == []


def test_four_times_longer_database_wait_is_a_regression_exit_1(
    sleep_50ms: Path, sleep_200ms: Path
) -> None:
    code, report = compare_json(sleep_50ms, sleep_200ms)
    assert code == 1
    [cell] = report["cells"]
    assert cell["verdict"] == "worse" and cell["regression"] is True
    # 200 ms instead of 50 ms: fewer requests per second, the whole interval below 1.
    assert cell["ratio"] < 0.8 and cell["ci95_high"] < 1.0
    assert cell["p_adjusted"] < 0.05
    # The plans differ in the database wait, and compare says so.
    assert any("slow_ms 50 -> 200" in warning for warning in report["warnings"])


def test_the_same_change_the_other_way_is_faster_and_exits_0(
    sleep_50ms: Path, sleep_200ms: Path
) -> None:
    code, report = compare_json(sleep_200ms, sleep_50ms)
    assert code == 0
    [cell] = report["cells"]
    assert cell["verdict"] == "better" and cell["ratio"] > 1.25 and cell["ci95_low"] > 1.0
    # "Better" is claimed on the same terms as "worse": its own corrected p-value.
    assert cell["p_better_adjusted"] < 0.05 and cell["p_adjusted"] > 0.5


def test_two_runs_with_the_same_settings_are_not_a_regression_beyond_5_percent(
    sleep_50ms: Path, sleep_50ms_again: Path
) -> None:
    code, report = compare_json(sleep_50ms, sleep_50ms_again, "--threshold", "5%")
    assert code == 0
    [cell] = report["cells"]
    assert cell["verdict"] == "within noise"
    assert report["threshold"] == pytest.approx(0.05)
    # Measured set-up times (seed_seconds) differ between runs; settings do not.
    assert report["warnings"] == []


def test_a_threshold_wider_than_the_change_hides_it(sleep_50ms: Path, sleep_200ms: Path) -> None:
    # The ratio is about 0.25: a 95% band reaches down to 0.05 and so covers it.
    code, report = compare_json(sleep_50ms, sleep_200ms, "--threshold", "95%")
    assert code == 0
    assert report["cells"][0]["verdict"] == "within noise"


def test_text_and_markdown_formats_name_the_regression(sleep_50ms: Path, sleep_200ms: Path) -> None:
    text = run_pgarena("compare", sleep_50ms, sleep_200ms)
    assert text.returncode == 1
    assert "REGRESSION: worse" in text.stdout
    # By default throughput, p99 and errors are judged: a 4x longer wait costs the first
    # two, and adds no errors.
    assert "3 judgements (rps, p99, errors): 2 worse" in text.stdout
    markdown = run_pgarena("compare", sleep_50ms, sleep_200ms, "--format", "md")
    assert markdown.returncode == 1
    assert "| slow-db | async |" in markdown.stdout.replace("  ", " ")


def test_text_fits_the_terminal(sleep_50ms: Path, sleep_200ms: Path) -> None:
    wide = run_pgarena("compare", sleep_50ms, sleep_200ms, env={"COLUMNS": "200"})
    assert "Workload  Stack" in wide.stdout
    assert "p worse" in wide.stdout
    # A CI log's 80 columns: one table per workload and concurrency, every line within 80
    # but the result files' paths (split, they could not be copied), the verdicts still there.
    narrow = run_pgarena("compare", sleep_50ms, sleep_200ms, env={"COLUMNS": "80"})
    assert narrow.returncode == 1
    lines = narrow.stdout.splitlines()
    assert f"slow-db, c={LEVEL}" in lines
    assert "REGRESSION: worse" in narrow.stdout
    assert "Workload" not in narrow.stdout
    assert "Left out here (p better, p worse" in narrow.stdout
    assert lines[:2] == [f"BASE {sleep_50ms}", f"NEW  {sleep_200ms}"]
    assert all(len(line) <= 80 for line in lines[2:]), narrow.stdout


def _exit_2(*args: str | Path) -> str:
    finished = run_pgarena("compare", *args)
    assert finished.returncode == 2, finished.stdout + finished.stderr
    assert "Traceback" not in finished.stderr
    return finished.stderr


def test_usage_errors_exit_2(sleep_50ms: Path, tmp_path: Path) -> None:
    assert "no result file" in _exit_2(tmp_path / "missing.json", sleep_50ms)

    broken = tmp_path / "broken.json"
    broken.write_text(sleep_50ms.read_text()[:100])
    assert "cannot read" in _exit_2(sleep_50ms, broken)

    future = tmp_path / "future.json"
    future.write_text(json.dumps({**json.loads(sleep_50ms.read_text()), "schema_version": 9}))
    assert "schema_version 9" in _exit_2(sleep_50ms, future)

    assert "--threshold" in _exit_2(sleep_50ms, sleep_50ms, "--threshold", "lots")
    assert "--format" in _exit_2(sleep_50ms, sleep_50ms, "--format", "pdf")


def test_files_that_share_no_cell_exit_2(sleep_50ms: Path, tmp_path: Path) -> None:
    # The same real measurements, filed under another concurrency level: nothing to match.
    document = json.loads(sleep_50ms.read_text())
    for cell in document["cells"]:
        cell["concurrency"] = LEVEL * 2
    for entry in document["summary"]:
        entry["concurrency"] = LEVEL * 2
    elsewhere = tmp_path / "elsewhere.json"
    elsewhere.write_text(json.dumps(document))
    assert "share no" in _exit_2(sleep_50ms, elsewhere)
