"""Issue 15 in a real run: pools that keep their connections, churn flagged, flame graphs."""

from __future__ import annotations

import subprocess
from dataclasses import replace
from pathlib import Path

import pytest
from helpers import start_pgarena

from pgarena.bench.database import PreparedDatabase
from pgarena.bench.plan import Plan
from pgarena.bench.runner import RunConfig, run_plan
from pgarena.bench.servers import ServerOptions
from pgarena.bench.workloads import WORKLOADS, DataSizes
from pgarena.database.seed import seed_database
from pgarena.report.build import write_reports


def _database(database_url: str) -> PreparedDatabase:
    data = DataSizes()
    seed_database(database_url, users=data.users, products=data.products, orders=data.orders)
    return PreparedDatabase(database_url, embedded=False, seed_seconds=0.0, data=data)


def _plan(stacks: tuple[str, ...], concurrency: int, warmup_s: float = 1.5) -> Plan:
    # A warmup long enough for a pool to open all its connections (it opens them as the load
    # needs them, never ahead): a connection opened after it is one the pool closed.
    return Plan(
        stacks=stacks, workloads=(WORKLOADS["db"],), concurrency=(concurrency,), repeats=1,
        duration_s=1.5, requests=None, warmup_s=warmup_s, rate=None, preset=None,
    )  # fmt: skip


@pytest.mark.slow
def test_default_pools_keep_their_connections_under_load_and_overflow_churn_is_flagged(
    database_url: str, tmp_path: Path
) -> None:
    database = _database(database_url)
    plan = _plan(("async", "sync"), 30)  # more clients than the pool's 20 connections
    steady = run_plan(RunConfig(plan, tmp_path / "default", database=database)).run
    for cell in steady.cells:
        # On a busy machine a pool may still open its last connection or two after the
        # warmup (it grows as the load needs); it never closes one to open another.
        assert cell.resources["new_connections"] is not None
        assert cell.reopened_connections_per_s == 0, cell.key
    for summary in steady.summaries:
        assert "connection-churn" not in {w.kind for w in summary.warnings}
    # SQLAlchemy closes overflow connections on return: 2 + 20 overflow under 30 clients.
    churning = RunConfig(
        plan, tmp_path / "overflow", database=database,
        server_options=ServerOptions(pool_size=2, max_overflow=20),
    )  # fmt: skip
    churned = run_plan(churning).run
    for cell in churned.cells:
        assert cell.reopened_connections_per_s is not None
        assert cell.reopened_connections_per_s > 1, cell.key
    for summary in churned.summaries:
        assert "connection-churn" in {w.kind for w in summary.warnings}


@pytest.mark.slow
def test_profile_records_one_flame_graph_per_stack_linked_from_the_report(
    database_url: str, tmp_path: Path
) -> None:
    plan = replace(_plan(("async-raw", "sync"), 4, warmup_s=0.3), repeats=2, duration_s=1.0)
    run = run_plan(RunConfig(plan, tmp_path, database=_database(database_url), profile=True)).run
    profiled = {cell.key.stack: cell.profile for cell in run.cells if cell.profile}
    assert set(profiled) == {"async-raw", "sync"}  # one cell each: the first repeat's
    assert all(cell.repeat == 0 for cell in run.cells if cell.profile)
    for stack, module in (("async-raw", "raw_asyncpg"), ("sync", "orm_sync")):
        svg = (tmp_path / profiled[stack]).read_text()
        assert svg.startswith("<?xml") and "<svg" in svg
        assert module in svg  # the stack's own code is in its flame graph
    write_reports(tmp_path / "results.json", ("html",), tmp_path)
    html = (tmp_path / "report.html").read_text()
    assert all(f'href="{path}"' in html for path in profiled.values())


def test_profile_with_a_target_is_a_one_line_usage_error() -> None:
    # --profile samples the servers pgarena starts; a --target is someone else's process.
    run = start_pgarena(
        "run", "--target", "http://127.0.0.1:9", "-w", "json", "--profile",
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    _, stderr = run.communicate(timeout=60)
    assert run.returncode == 2
    assert "--profile" in stderr and "--target" in stderr
    assert "Traceback" not in stderr and len(stderr.strip().splitlines()) == 1
