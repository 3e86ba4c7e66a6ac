"""PgBouncer in the arena: the system's `pgbouncer` in transaction mode between the servers and
a real PostgreSQL. Through it, every stack must answer every request right; the same stacks
without their pooler settings do not, which is why the settings exist."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import httpx
import pytest
from helpers import free_port, start_pgarena, stop, wait_until_healthy

from pgarena.bench.database import PreparedDatabase
from pgarena.bench.plan import build_plan
from pgarena.bench.runner import RunConfig, run_plan
from pgarena.bench.servers import ServerOptions
from pgarena.bench.workloads import DataSizes
from pgarena.database.pgbouncer import check_pooler
from pgarena.database.seed import seed_database
from pgarena.errors import UserError
from pgarena.report.figures import build_figures
from pgarena.report.tables import throughput_table
from pgarena.results.file import load_results
from pgarena.results.model import Run

needs_pgbouncer = pytest.mark.skipif(
    shutil.which("pgbouncer") is None,
    reason="pgbouncer is not installed (apt-get install pgbouncer)",
)


def _run_through_pgbouncer(
    database_url: str, out: Path, stacks: list[str], workloads: list[str], concurrency: int,
    *, pooler_settings: bool = True, duration_s: float = 0.5,
) -> Run:  # fmt: skip
    data = DataSizes()
    seed_database(database_url, users=data.users, products=data.products, orders=data.orders)
    database = PreparedDatabase(database_url, embedded=False, seed_seconds=0.0, data=data)
    plan = build_plan(
        "quick", stacks, workloads=workloads, concurrency=[concurrency],
        duration_s=duration_s, warmup_s=0.5, repeats=1,
    )  # fmt: skip
    options = ServerOptions(transaction_pooler=pooler_settings)
    config = RunConfig(plan, out, database=database, pooler="pgbouncer", server_options=options)
    return run_plan(config).run


def _errors(run: Run) -> dict[str, dict[str, int]]:
    return {
        f"{cell.key.stack}/{cell.key.workload}": {k: v for k, v in cell.errors.items() if v}
        for cell in run.cells
    }


@needs_pgbouncer
def test_a_sync_and_an_async_stack_answer_everything_right_through_pgbouncer(
    database_url: str, tmp_path: Path
) -> None:
    run = _run_through_pgbouncer(database_url, tmp_path, ["sync-psycopg3", "async"], ["crud"], 10)

    for cell in run.cells:
        assert cell.status == "ok", cell.error
        assert cell.ok == cell.requests > 0
    assert all(not errors for errors in _errors(run).values()), _errors(run)
    pooler = run.metadata["server"]["pooler"]
    assert pooler.startswith("pgbouncer ") and pooler.endswith("(transaction)")
    assert any("max_prepared_statements" in note for note in run.metadata["notes"])
    load_results(tmp_path / "results.json")  # the pooler fits the result file's schema
    # The report shows the pooler as a condition of every row.
    table = throughput_table(build_figures(run), "crud")
    column = table.header.index("Pooler")
    assert {row[column].text for row in table.rows} == {pooler}


@pytest.mark.slow
@needs_pgbouncer
def test_without_its_pooler_settings_a_stack_fails_through_pgbouncer(
    database_url: str, tmp_path: Path
) -> None:
    """asyncpg's named, cached statements meet another client's backend in transaction mode."""
    run = _run_through_pgbouncer(
        database_url, tmp_path, ["async-raw"], ["db"], 20, pooler_settings=False
    )
    assert sum(cell.error_count for cell in run.cells) > 0


@pytest.mark.slow
@needs_pgbouncer
def test_every_stack_answers_db_and_crud_right_through_pgbouncer_at_concurrency_50(
    database_url: str, tmp_path: Path
) -> None:
    stacks = ["sync", "async", "sync-psycopg3", "async-psycopg3", "async-raw", "sync-raw"]
    run = _run_through_pgbouncer(database_url, tmp_path, stacks, ["db", "crud"], 50, duration_s=2)
    assert len(run.cells) == 12
    for cell in run.cells:
        assert cell.status == "ok", cell.error
    assert all(not errors for errors in _errors(run).values()), _errors(run)


def test_a_missing_pgbouncer_is_named_with_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")  # the program is looked up on PATH only
    with pytest.raises(UserError) as refused:
        check_pooler("pgbouncer")
    assert str(refused.value) == (
        "--pooler pgbouncer needs the pgbouncer program on PATH "
        "(Debian/Ubuntu: apt-get install pgbouncer)"
    )


def test_an_unknown_pooler_is_refused_with_the_known_ones() -> None:
    with pytest.raises(UserError, match=r"^unknown pooler 'odyssey'; choose from: pgbouncer$"):
        check_pooler("odyssey")


@pytest.mark.slow
@needs_pgbouncer
def test_serve_through_pgbouncer_reads_and_writes(database_url: str) -> None:
    port = free_port()
    server = start_pgarena(
        "serve", "--stack", "async", "--pooler", "pgbouncer", "--port", str(port),
        env={"DATABASE_URL": database_url}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(server, lambda: httpx.get(f"{base}/health").status_code == 200, 60)
        for _ in range(20):  # more requests than the stack's pool has connections
            assert httpx.get(f"{base}/db", timeout=5).status_code == 200
        created = httpx.post(f"{base}/users/", json={"username": "pooled", "email": "p@x.org"})
        assert created.status_code == 200, created.text
        assert httpx.get(f"{base}/users/{created.json()['id']}").json()["username"] == "pooled"
    finally:
        stop(server)


@needs_pgbouncer
def test_the_statement_timeout_holds_through_pgbouncer(database_url: str) -> None:
    # The stacks cannot send it at connect through the pooler; PgBouncer sets it on every
    # server connection, so a statement that runs too long still fails and frees it.
    import psycopg

    from pgarena.database.pgbouncer import pgbouncer

    with (
        pgbouncer(database_url, statement_timeout_ms=300) as through,
        psycopg.connect(through, prepare_threshold=None, autocommit=True) as connection,
    ):
        assert connection.execute("SHOW statement_timeout").fetchone() == ("300ms",)
        with pytest.raises(psycopg.errors.QueryCanceled):
            connection.execute("SELECT pg_sleep(2)")
