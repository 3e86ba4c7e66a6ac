"""`pgarena run --target ... --target-database URL`: the targets' PostgreSQL, watched.

Two services on one database in one A/B run: `tests/tiny_app.py`, whose `/db` opens a
connection per request as an app without a pool does, and pgarena's async-raw server, whose
pool keeps its connections. pgarena started neither, and learns from the database what each
costs it: new connections per second (the churn warning), statements per request, and
PostgreSQL's CPU when it runs on this machine.
"""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
from helpers import run_pgarena, running_server, running_tiny_app

from pgarena.bench.resources import postmaster_pid
from pgarena.bench.statements import statements_source
from pgarena.database.urls import redact
from pgarena.results.file import load_run

READS = 'name = "reads"\n[[scenario]]\n[[scenario.request]]\npath = "/db"\n'


def test_the_targets_database_shows_which_one_opens_a_connection_per_request(
    database_url: str, tmp_path: Path
) -> None:
    workload = tmp_path / "reads.toml"
    workload.write_text(READS)
    with (
        running_tiny_app({"TINY_APP_DATABASE_URL": database_url}) as naive,
        running_server(database_url, "--stack", "async-raw") as pooled,
    ):
        run = run_pgarena(
            "run", "--target", f"naive={naive}", "--target", f"pooled={pooled}",
            "--target-database", database_url, "--workload-file", workload,
            "--concurrency", "4", "--duration", "1s", "--warmup", "0.5s", "--repeats", "1",
            "--out", tmp_path / "out", "--json",
            timeout=180,
        )  # fmt: skip

    assert run.returncode == 0, run.stderr
    result = load_run(tmp_path / "out")
    cells = {cell.key.stack: cell for cell in result.cells}
    assert set(cells) == {"naive", "pooled"}
    assert all(cell.status == "ok" and cell.ok > 0 for cell in cells.values())
    # A connection per request: as many new connections as answers, flagged as churn.
    naive_rps = cells["naive"].ok / cells["naive"].duration_s
    assert cells["naive"].reopened_connections_per_s > 0.5 * naive_rps
    # A pool: it may still open its last connection after a short warmup, never closes one.
    assert cells["pooled"].resources["new_connections"] is not None
    assert cells["pooled"].reopened_connections_per_s == 0
    warnings = {s.key.stack: {w.kind for w in s.warnings} for s in result.summaries}
    assert "connection-churn" in warnings["naive"]
    assert "connection-churn" not in warnings["pooled"]
    # Statements per request, from pg_stat_statements: the naive app's psycopg connection
    # wraps its SELECT in BEGIN and COMMIT; async-raw reads in autocommit.
    per_request = {
        name: cell.resources["statements"] / cell.requests for name, cell in cells.items()
    }
    assert {cell.resources["statements_source"] for cell in cells.values()} == {
        "pg_stat_statements"
    }
    assert 2.5 < per_request["naive"] < 3.5 and 0.75 < per_request["pooled"] < 1.25, per_request
    # PostgreSQL's CPU is measured when it runs here (the embedded server, or a local one).
    if postmaster_pid(database_url) is not None:
        assert all(cell.resources["postgres_cpu_s"] > 0 for cell in cells.values())
    postgres = result.metadata["postgres"]
    assert postgres["database"] == redact(database_url) and postgres["version"]
    assert any("watched read-only" in note for note in result.metadata["notes"])
    assert json.loads(run.stdout)["verdicts"][0]["stack"] == "pooled"


def test_the_targets_database_is_only_read_never_given_an_extension(database_url: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as connection:
        connection.execute("DROP EXTENSION pg_stat_statements")
        source, _ = statements_source(connection, create_extension=False)
        installed = connection.execute(
            "SELECT count(*) FROM pg_extension WHERE extname = 'pg_stat_statements'"
        ).fetchone()
    assert source == "pg_stat_database.transactions"
    assert installed == (0,)


def test_a_target_database_without_a_target_or_out_of_reach_is_a_one_line_error(
    tmp_path: Path,
) -> None:
    alone = run_pgarena("run", "--target-database", "postgresql://127.0.0.1/x", "-o", tmp_path)
    assert alone.returncode == 2
    assert "--target-database is the database of --target services" in alone.stderr
    unreachable = run_pgarena(
        "run", "--target", "http://127.0.0.1:9", "--target-database",
        "postgresql://someone:hunter2@127.0.0.1:9/app", "-o", tmp_path,
    )  # fmt: skip
    assert unreachable.returncode == 2
    assert "--target-database: cannot reach" in unreachable.stderr
    assert "hunter2" not in unreachable.stderr and "Traceback" not in unreachable.stderr
