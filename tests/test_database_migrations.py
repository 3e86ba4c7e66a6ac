"""Alembic migrations: from an empty database, through the API and the plain alembic command."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine

from pgarena.database import create_database_if_missing, drop_database, ensure_database
from pgarena.database.migrations import current_revision, head_revision, upgrade
from pgarena.database.models import Base
from pgarena.database.urls import url_for, with_database
from pgarena.settings import Settings

REPO_ROOT = Path(__file__).resolve().parent.parent
TABLES = {"users", "products", "orders", "world", "fortune"}


@pytest.fixture
def empty_database_url(postgres_url: str) -> Iterator[str]:
    """libpq URL of a database with no tables at all."""
    name = f"empty_{os.getpid()}"
    drop_database(postgres_url, name)
    create_database_if_missing(postgres_url, name)
    yield with_database(postgres_url, name)
    drop_database(postgres_url, name)


def tables(url: str) -> set[str]:
    with psycopg.connect(url) as connection:
        rows = connection.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
        ).fetchall()
    return {name for (name,) in rows}


def asyncpg_spelling(url: str) -> str:
    return url_for(url, "asyncpg")


def test_upgrade_creates_the_schema_in_an_empty_database(empty_database_url: str) -> None:
    assert tables(empty_database_url) == set()
    assert current_revision(empty_database_url) is None
    upgrade(asyncpg_spelling(empty_database_url))  # any spelling is fine
    assert tables(empty_database_url) == TABLES | {"alembic_version"}
    assert current_revision(empty_database_url) == head_revision()


def test_migrated_schema_matches_the_models_exactly(empty_database_url: str) -> None:
    upgrade(empty_database_url)
    engine = create_engine(url_for(empty_database_url, "psycopg2"))
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(
                connection, opts={"compare_type": True, "compare_server_default": True}
            )
            differences = compare_metadata(context, Base.metadata)
    finally:
        engine.dispose()
    assert differences == []


def test_plain_alembic_command_accepts_the_asyncpg_spelling(empty_database_url: str) -> None:
    env = {**os.environ, "DATABASE_URL": asyncpg_spelling(empty_database_url)}
    alembic = [sys.executable, "-m", "alembic"]
    result = subprocess.run(
        [*alembic, "upgrade", "head"], cwd=REPO_ROOT, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert "Running upgrade  -> 0001" in result.stderr
    assert tables(empty_database_url) == TABLES | {"alembic_version"}

    # -x url=... wins over DATABASE_URL; downgrade removes everything again.
    env["DATABASE_URL"] = "postgresql://nobody@/nowhere?host=/nonexistent"
    result = subprocess.run(
        [*alembic, "-x", f"url={url_for(empty_database_url, 'psycopg')}", "downgrade", "base"],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert tables(empty_database_url) == {"alembic_version"}


def test_pg_stat_statements_is_created_where_available(database_url: str) -> None:
    with psycopg.connect(database_url) as connection:
        available = connection.execute(
            "SELECT 1 FROM pg_available_extensions WHERE name = 'pg_stat_statements'"
        ).fetchone()
        installed = connection.execute(
            "SELECT 1 FROM pg_extension WHERE extname = 'pg_stat_statements'"
        ).fetchone()
    assert bool(installed) == bool(available)


def test_ensure_database_with_a_url_migrates_that_database_as_is(
    empty_database_url: str,
) -> None:
    settings = Settings(database_url=url_for(empty_database_url, "psycopg2"))
    assert ensure_database(settings) == empty_database_url
    assert tables(empty_database_url) == TABLES | {"alembic_version"}
    assert ensure_database(settings) == empty_database_url  # idempotent
