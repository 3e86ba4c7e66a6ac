"""`pgarena db ...` as a user runs it: a subprocess, its stdout, stderr and exit code."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import psycopg
import pytest
from helpers import run_pgarena

from pgarena.database.embedded import BIN_DIR
from pgarena.database.urls import parse_database_url, url_for


def pgarena_db(*args: str, database_url: str | None = None) -> subprocess.CompletedProcess[str]:
    """`pgarena db ARGS`, with DATABASE_URL set to `database_url` or unset."""
    # COLUMNS: rich wraps tables at the terminal width.
    env = {"DATABASE_URL": database_url, "COLUMNS": "200"}
    return run_pgarena("db", *args, env=env, timeout=180)


def test_commands_work_on_database_url_in_asyncpg_spelling(database_url: str) -> None:
    asyncpg_url = url_for(database_url, "asyncpg")

    url = pgarena_db("url", database_url=asyncpg_url)
    assert url.returncode == 0, url.stderr
    assert url.stdout == database_url + "\n"  # libpq spelling, nothing else on stdout

    status = pgarena_db("status", database_url=asyncpg_url)
    assert status.returncode == 0, status.stderr
    assert "reachable, PostgreSQL 1" in status.stdout and "not managed by pgarena" in status.stdout

    upgrade = pgarena_db("upgrade", database_url=asyncpg_url)
    assert upgrade.returncode == 0, upgrade.stderr
    assert "at revision 0001 (head)" in upgrade.stderr

    seed = pgarena_db("seed", "--users", "25", "--products", "4", "--orders", "9",
                      "--seed", "3", database_url=asyncpg_url)  # fmt: skip
    assert seed.returncode == 0, seed.stderr
    assert "seed 3" in seed.stderr
    with psycopg.connect(database_url) as connection:
        counts = connection.execute(
            "SELECT (SELECT count(*) FROM users), (SELECT count(*) FROM products),"
            " (SELECT count(*) FROM orders), (SELECT count(*) FROM world)"
        ).fetchone()
    assert counts == (25, 4, 9, 10_000)


@pytest.mark.parametrize("command", ["start", "stop"])
def test_start_and_stop_refuse_an_external_server(database_url: str, command: str) -> None:
    result = pgarena_db(command, database_url=database_url)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "DATABASE_URL is set" in result.stderr


def test_embedded_server_start_status_url_stop(embedded_data_dir: Path) -> None:
    data_dir = str(embedded_data_dir)
    before = pgarena_db("status", "--data-dir", data_dir)
    assert before.returncode == 0 and "stopped" in before.stdout

    start = pgarena_db("start", "--data-dir", data_dir)
    try:
        assert start.returncode == 0, start.stderr
        assert "running in" in start.stderr
        status = pgarena_db("status", "--data-dir", data_dir)
        assert "running" in status.stdout and "pid" in status.stdout

        url = pgarena_db("url", "--data-dir", data_dir).stdout.strip()
        # What the README promises: psql "$(pgarena db url)".
        psql = subprocess.run(
            [str(BIN_DIR / "psql"), url, "-Atc", "SELECT count(*) FROM fortune"],
            capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        assert psql.returncode == 0, psql.stderr
        assert psql.stdout.strip() == "0"  # migrated; `db seed` fills it
    finally:
        stop = pgarena_db("stop", "--data-dir", data_dir)
    assert stop.returncode == 0 and "stopped PostgreSQL" in stop.stderr
    assert "stopped" in pgarena_db("status", "--data-dir", data_dir).stdout


@pytest.mark.parametrize(
    ("command", "url"),
    [
        ("url", "mysql://app:s3cret@db.example.com/shop"),
        ("seed", "postgresql+pg8000://app:s3cret@db.example.com/shop"),
        ("upgrade", "app:s3cret@db.example.com/shop"),
        ("status", "postgresql://app:s3cret@db.example.com:notaport/shop"),
        # Valid, but nothing listens there.
        ("url", "postgresql+asyncpg://app:s3cret@127.0.0.1:1/shop"),
        ("upgrade", "postgresql://app:s3cret@/shop?host=/nonexistent"),
    ],
)
def test_bad_database_url_is_one_line_exit_2_without_password(command: str, url: str) -> None:
    result = pgarena_db(command, database_url=url)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
    assert "Traceback" not in result.stderr
    assert "s3cret" not in result.stderr


def test_url_hides_the_password_unless_asked(database_url: str) -> None:
    if os.environ.get("DATABASE_URL"):
        pytest.skip("needs the embedded server, which ignores passwords on its socket")
    with_password = parse_database_url(database_url).set(password="s3cret")
    url = url_for(with_password, "psycopg")
    hidden = pgarena_db("url", database_url=url)
    assert hidden.returncode == 0, hidden.stderr
    assert "s3cret" not in hidden.stdout and ":***@" in hidden.stdout
    shown = pgarena_db("url", "--show-password", database_url=url)
    assert shown.stdout.strip() == url_for(with_password, "libpq")
