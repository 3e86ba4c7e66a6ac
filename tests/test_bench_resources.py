"""What the resource monitor measures in a window: CPU series of process trees, statements."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql

from pgarena.bench.resources import SAMPLE_INTERVAL_S, ResourceMonitor, postmaster_pid
from pgarena.database.urls import parse_database_url, url_for

# A "server" that, when told to, has a child burn 0.4 s of CPU and exit (reaped by the
# server, as the postmaster reaps its backends), then burns 0.2 s itself.
_SERVER = textwrap.dedent(
    """
    import subprocess, sys, time

    def burn(seconds):
        start = time.process_time()
        while time.process_time() - start < seconds:
            pass

    sys.stdin.readline()
    subprocess.run([sys.executable, "-c", %r], check=True)
    burn(0.2)
    print("done", flush=True)
    sys.stdin.readline()
    """
) % (
    "import time\nstart = time.process_time()\nwhile time.process_time() - start < 0.4:\n    pass\n"
)


@pytest.fixture
def busy_server() -> Iterator[subprocess.Popen[str]]:
    process = subprocess.Popen(
        [sys.executable, "-c", _SERVER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    yield process
    process.kill()
    process.wait()


def test_cpu_series_counts_the_whole_tree_even_children_that_exited(
    busy_server: subprocess.Popen[str], database_url: str
) -> None:
    monitor = ResourceMonitor(busy_server.pid, postmaster_pid(database_url), None)
    opened = time.monotonic()
    monitor.start()
    assert busy_server.stdin is not None and busy_server.stdout is not None
    busy_server.stdin.write("go\n")
    busy_server.stdin.flush()
    assert busy_server.stdout.readline() == "done\n"
    closing = time.monotonic()
    usage = monitor.stop()

    # 0.4 s in a child that is gone by the end of the window, 0.2 s in the server itself.
    assert usage.server_cpu_s is not None and usage.server_cpu_s >= 0.55
    assert usage.machine_busy_cpu_s >= usage.server_cpu_s - 0.05
    assert usage.postgres_cpu_s is not None and usage.postgres_cpu_s >= 0

    # The series is in increments on the monotonic clock, one point per sampling interval
    # and a last one at the window's end; each column adds up to the window's total.
    series = usage.series
    assert len(series) >= 3
    assert opened <= usage.started_monotonic < series[0]["t_monotonic"]
    stamps = [point["t_monotonic"] for point in series]
    assert stamps == sorted(stamps) and closing <= stamps[-1] <= time.monotonic()
    assert stamps[-1] - usage.started_monotonic == pytest.approx(usage.wall_s)
    # On a fixed grid: never early, and a late point does not delay the next ones.
    interior = stamps[:-1]
    offsets = [stamp - usage.started_monotonic for stamp in interior]
    assert all(offset > (n + 1) * SAMPLE_INTERVAL_S - 1e-3 for n, offset in enumerate(offsets))
    mean_gap = (interior[-1] - usage.started_monotonic) / len(interior)
    assert mean_gap == pytest.approx(SAMPLE_INTERVAL_S, abs=0.1)
    for column, total in (
        ("server_cpu_s", usage.server_cpu_s),
        ("postgres_cpu_s", usage.postgres_cpu_s),
        ("machine_busy_cpu_s", usage.machine_busy_cpu_s),
    ):
        assert all(point[column] >= 0 for point in series), column  # type: ignore[literal-required, operator]
        assert sum(point[column] for point in series) == pytest.approx(total)  # type: ignore[literal-required, misc]


def test_trees_that_are_not_watched_have_no_series_values() -> None:
    monitor = ResourceMonitor(None, None, None)
    monitor.start()
    usage = monitor.stop()
    assert usage.server_cpu_s is None and usage.postgres_cpu_s is None
    assert usage.series and all(point["server_cpu_s"] is None for point in usage.series)
    assert usage.statements is None and usage.statements_source is None


def _run_statements(url: str, count: int) -> None:
    """`count` statements that take a moment each, so the monitor polls in between."""
    with psycopg.connect(url, autocommit=True) as connection:
        _run_statements_on(connection, count)


def _run_statements_on(connection: psycopg.Connection, count: int) -> None:
    for number in range(count):
        connection.execute("SELECT pg_sleep(0.05), %s::int", (number,))


def test_statements_in_the_window_are_counted_without_the_monitors_own(
    database_url: str,
) -> None:
    monitor = ResourceMonitor(None, None, database_url)
    monitor.prepare()  # connected ahead, as during a warmup
    with psycopg.connect(database_url, autocommit=True) as connection:
        connection.execute("SELECT 1")  # before the window: not counted
    monitor.start()
    _run_statements(database_url, 12)
    usage = monitor.stop()
    assert usage.statements_source == "pg_stat_statements"
    assert usage.statements == 12
    # The monitor did poll pg_stat_activity meanwhile, and saw the connection doing so.
    assert usage.db_connections_max == 1
    # One connection opened inside the window (pg_stat_database.sessions), none before it.
    assert usage.new_connections == 1


def test_connections_opened_at_the_windows_edges_are_growth_and_a_closed_one_is_churn(
    database_url: str,
) -> None:
    monitor = ResourceMonitor(None, None, database_url)
    monitor.start()
    held = psycopg.connect(database_url, autocommit=True)  # opened as the window opens
    with psycopg.connect(database_url, autocommit=True) as closed:  # opened and closed in it
        closed.execute("SELECT 1")
    late = psycopg.connect(database_url, autocommit=True)  # opened just before it closes
    try:
        usage = monitor.stop()  # within one sampling interval: no sample saw `late`
    finally:
        held.close()
        late.close()
    assert usage.new_connections == 3
    assert usage.db_connections_growth == 2  # the pool grew by two; one was closed


def test_a_named_servers_connections_are_counted_apart_from_its_idle_neighbours(
    database_url: str,
) -> None:
    # Another stack's server, idle beside the one measured, closes a pooled connection.
    neighbour = psycopg.connect(database_url, autocommit=True, application_name="pgarena-b")
    monitor = ResourceMonitor(None, None, database_url, application_name="pgarena-a")
    monitor.start()
    neighbour.close()
    with psycopg.connect(database_url, autocommit=True, application_name="pgarena-a") as own:
        _run_statements_on(own, 6)  # the sampler sees it at work
        usage = monitor.stop()
    assert usage.db_connections_max == 1  # its own, not the neighbour's
    assert usage.db_connections_growth == 1  # grew by one; the neighbour's close is not its
    assert usage.new_connections == 1


def test_statements_in_other_databases_are_not_counted(database_url: str, fresh_database) -> None:
    neighbour = fresh_database()
    monitor = ResourceMonitor(None, None, database_url)
    monitor.start()
    _run_statements(neighbour, 5)
    _run_statements(database_url, 3)
    usage = monitor.stop()
    assert (usage.statements_source, usage.statements) == ("pg_stat_statements", 3)
    assert usage.new_connections == 1  # the neighbour's connection is not this database's


def test_missing_extension_is_created_when_the_role_may(database_url: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as connection:
        connection.execute("DROP EXTENSION pg_stat_statements")
    monitor = ResourceMonitor(None, None, database_url)
    monitor.start()
    _run_statements(database_url, 4)
    usage = monitor.stop()
    assert (usage.statements_source, usage.statements) == ("pg_stat_statements", 4)


@pytest.fixture
def plain_role_url(database_url: str) -> Iterator[str]:
    """The test database, as a role that may not create extensions, where none is created."""
    role = f"plain_{os.getpid()}"
    with psycopg.connect(database_url, autocommit=True) as connection:
        connection.execute("DROP EXTENSION pg_stat_statements")
        connection.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
    yield url_for(parse_database_url(database_url).set(username=role), "libpq")
    with psycopg.connect(database_url, autocommit=True) as connection:
        connection.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


def test_without_pg_stat_statements_transactions_are_counted_and_labelled(
    plain_role_url: str,
) -> None:
    # Connected before the window: a backend's start is a transaction too.
    with psycopg.connect(plain_role_url) as connection:
        monitor = ResourceMonitor(None, None, plain_role_url)
        monitor.start()
        for number in range(6):
            with connection.transaction():
                connection.execute("SELECT pg_sleep(0.05), %s::int", (number,))
                connection.execute("SELECT %s::int", (number,))
        # A backend publishes its counts at most once a second; a real benchmark's error
        # is that delay, this test asks for them now (one transaction more).
        connection.execute("SELECT pg_stat_force_next_flush()")
        connection.commit()
        usage = monitor.stop()
    assert usage.statements_source == "pg_stat_database.transactions"
    assert usage.statements == 6 + 1
    assert usage.db_connections_max == 1  # the monitor polled, and its polls were left out
