"""The command line behaves as wrk, k6 and hyperfine users expect: `--version`, `-h`, short
flags, defaults and environment variables in the help, the result on stdout and the progress
on stderr, `--json` for scripts, and exit codes that say whether the run answered anything."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from helpers import run_pgarena

from pgarena import __version__
from pgarena.results.file import load_results


@pytest.mark.parametrize("flag", ["--version", "-V"])
def test_version_prints_the_package_version(flag: str) -> None:
    result = run_pgarena(flag)
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"pgarena {__version__}\n"


@pytest.mark.parametrize("command", [[], ["run"], ["serve"], ["compare"], ["db", "status"]])
def test_dash_h_is_help_everywhere(command: list[str]) -> None:
    result = run_pgarena(*command, "-h", env={"COLUMNS": "120"})
    assert result.returncode == 0, result.stderr
    assert f"Usage: pgarena {' '.join(command)}".rstrip() in result.stdout
    assert "--help" in result.stdout


def test_top_level_help_offers_shell_completion() -> None:
    result = run_pgarena("-h", env={"COLUMNS": "120"})
    assert "--install-completion" in result.stdout and "--show-completion" in result.stdout


def test_every_command_is_summed_up_in_one_line() -> None:
    """A command list shows the first paragraph of each command's help with its line breaks:
    a summary written over two lines broke mid-sentence in `pgarena -h`."""
    import typer.main

    from pgarena.cli import app

    def commands(group: Any, prefix: str) -> list[tuple[str, Any]]:
        found = []
        for name, command in group.commands.items():
            found.append((prefix + name, command))
            if hasattr(command, "commands"):  # a group: `pgarena db`
                found += commands(command, f"{prefix}{name} ")
        return found

    listed = commands(typer.main.get_command(app), "")
    assert {"run", "chaos", "locust", "db seed"} <= {name for name, _ in listed}
    for name, command in listed:
        summary = (command.help or "").strip().split("\n\n")[0]
        assert summary and "\n" not in summary, f"pgarena {name}: {summary!r}"
    top = run_pgarena("-h", env={"COLUMNS": "200"}).stdout
    assert "Break PostgreSQL under each stack and check the service copes within its bounds." in top


def test_serve_help_shows_defaults_and_environment_variables() -> None:
    # Wide enough that no line breaks inside "[default: 127.0.0.1]".
    result = run_pgarena("serve", "--help", env={"COLUMNS": "200"})
    assert result.returncode == 0, result.stderr
    host = next(line for line in result.stdout.splitlines() if "--host" in line)
    assert "[default: 127.0.0.1]" in host  # brackets no longer eaten as rich markup
    assert "PGARENA_HOST" in host
    for name in ("PGARENA_PORT", "PGARENA_WORKERS", "PGARENA_POOL_SIZE", "PGARENA_DATA_DIR"):
        assert name in result.stdout
    assert "DATABASE_URL" in result.stdout


def test_run_help_shows_short_flags_without_range_labels() -> None:
    result = run_pgarena("run", "-h", env={"COLUMNS": "200"})
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    for long, short in [("--stacks", "-s"), ("--workloads", "-w"), ("--concurrency", "-c"),
                        ("--duration", "-d"), ("--out", "-o"), ("--repeats", "-r"),
                        ("--preset", "-p"), ("--quiet", "-q")]:  # fmt: skip
        line = next(line for line in lines if f" {long} " in line)
        assert f" {short} " in line, line
    assert "range" not in result.stdout and "x>=" not in result.stdout
    assert "[default: 50]" in result.stdout  # --slow-ms


@pytest.mark.parametrize("command", ["run", "locust", "claims", "chaos"])
def test_every_long_running_command_can_be_quiet(command: str) -> None:
    result = run_pgarena(command, "--help", env={"COLUMNS": "200"})
    assert result.returncode == 0, result.stderr
    line = next(line for line in result.stdout.splitlines() if " --quiet " in line)
    assert " -q " in line and "No progress" in line


def _assert_one_line_usage_error(result: subprocess.CompletedProcess[str], *expected: str) -> None:
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    for text in expected:
        assert text in lines[0]


def test_an_unknown_stack_is_a_one_line_usage_error() -> None:
    result = run_pgarena("run", "-s", "nope")
    _assert_one_line_usage_error(result, "unknown stack 'nope'")
    assert result.stdout == ""


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        (["--timeout", "0"], "--timeout: must be > 0"),
        (["--timeout", "0ms"], "--timeout: must be > 0"),
        (["-r", "0"], "--repeats: must be >= 1"),
    ],
)
def test_bad_values_are_refused_while_parsing(arguments: list[str], expected: str) -> None:
    # Refused before PostgreSQL or any server starts: DATABASE_URL points nowhere.
    result = run_pgarena(
        "run", "-s", "async", *arguments, env={"DATABASE_URL": "postgresql://nobody@127.0.0.1:9/x"}
    )
    _assert_one_line_usage_error(result, expected)


def test_a_run_in_which_every_cell_failed_exits_1(tmp_path: Path) -> None:
    # Nothing listens on port 9: every request fails, so every cell does. No SLO is given;
    # the exit code alone must tell a script that the run measured nothing.
    result = run_pgarena(
        "run", "--target", "http://127.0.0.1:9", "-w", "json", "-c", "1", "-d", "0.3s",
        "-r", "1", "--warmup", "0s", "--timeout", "0.5s", "-o", tmp_path,
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    assert "every cell failed" in result.stderr
    # The results and reports are still written, and the summary still names the file.
    [cell] = load_results(tmp_path / "results.json")["cells"]
    assert cell["status"] == "failed"
    assert (tmp_path / "report.md").exists()
    assert f"results: {tmp_path / 'results.json'}" in result.stdout


@pytest.mark.slow
def test_json_prints_one_document_and_the_table_goes_to_stdout_without_it(
    database_url: str, tmp_path: Path
) -> None:
    common = ("run", "-s", "async", "-w", "json", "-c", "2", "-d", "0.5s", "-r", "1",
              "--warmup", "0.2s")  # fmt: skip
    env = {"DATABASE_URL": database_url}

    machine = run_pgarena(*common, "-o", tmp_path / "json", "--json", env=env)
    assert machine.returncode == 0, machine.stderr
    document = json.loads(machine.stdout)  # stdout holds the JSON and nothing else
    [summary] = document["summary"]
    assert (summary["stack"], summary["workload"], summary["concurrency"]) == ("async", "json", 2)
    assert summary["rps"]["mean"] > 0
    assert document["results"] == str(tmp_path / "json" / "results.json")
    assert document["failed_cells"] == 0 and document["slo"] == []
    assert str(tmp_path / "json" / "report.md") in document["reports"]
    assert "c=2" in machine.stderr  # the per-cell progress line stays visible on stderr

    human = run_pgarena(*common, "-o", tmp_path / "text", env=env)
    assert human.returncode == 0, human.stderr
    # `pgarena run > out.txt` keeps the summary: the table, the result and report paths.
    assert "req/s" in human.stdout and "async" in human.stdout
    assert f"results: {tmp_path / 'text' / 'results.json'}" in human.stdout
    assert f"report: {tmp_path / 'text' / 'report.md'}" in human.stdout
    # Progress goes to stderr: the per-cell line, not the table.
    assert "pgarena run -" in human.stderr and "results:" not in human.stderr

    quiet = run_pgarena(*common, "-o", tmp_path / "quiet", "-q", env=env)
    assert quiet.returncode == 0, quiet.stderr
    assert quiet.stderr == ""
    assert "results:" in quiet.stdout
