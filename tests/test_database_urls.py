"""Every accepted URL spelling, converted for every consumer, and really connected through it.

The conversions themselves, which need no server, are checked in tests/unit/test_urls.py."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Iterator

import asyncpg
import psycopg
import psycopg_pool
import pytest
from helpers import SPELLINGS
from psycopg import sql
from sqlalchemy import create_engine, text
from sqlalchemy.ext.asyncio import create_async_engine

from pgarena.database.embedded import BIN_DIR
from pgarena.database.urls import (
    parse_database_url,
    url_for,
)

# --- real connections --------------------------------------------------------------------

ROLE, PASSWORD = "pgarena url-test", "p@ss/w:rd%"


@pytest.fixture
def role_url(database_url: str) -> Iterator[str]:
    """URL of the test database for a role whose name and password need escaping."""
    role = sql.Identifier(ROLE)
    with psycopg.connect(database_url, autocommit=True) as connection:
        try:
            connection.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(role))
            connection.execute(
                sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(role, sql.Literal(PASSWORD))
            )
        except psycopg.errors.InsufficientPrivilege:
            pytest.skip("the test server's role may not create roles")
    parsed = parse_database_url(database_url).set(username=ROLE, password=PASSWORD)
    yield url_for(parsed, "libpq")
    with psycopg.connect(database_url, autocommit=True) as connection:
        connection.execute(sql.SQL("DROP ROLE {}").format(role))


def _psql(url: str) -> tuple[str, str]:
    output = subprocess.run(
        [str(BIN_DIR / "psql"), url, "-AtF,", "-c", "SELECT current_user, 1"],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout
    user, one = output.strip().split(",")
    return user, one


def _psycopg(url: str) -> tuple[str, str]:
    with psycopg.connect(url) as connection:
        user, one = connection.execute("SELECT current_user, 1").fetchone()  # type: ignore[misc]
    return user, str(one)


def _psycopg_pool(url: str) -> tuple[str, str]:
    with psycopg_pool.ConnectionPool(url, min_size=1, max_size=1) as pool, pool.connection() as c:
        user, one = c.execute("SELECT current_user, 1").fetchone()  # type: ignore[misc]
    return user, str(one)


def _asyncpg(url: str) -> tuple[str, str]:
    async def query() -> tuple[str, str]:
        connection = await asyncpg.connect(url)
        try:
            row = await connection.fetchrow("SELECT current_user, 1")
        finally:
            await connection.close()
        pool = await asyncpg.create_pool(url, min_size=1, max_size=1)
        try:
            assert await pool.fetchval("SELECT current_user") == row[0]
        finally:
            await pool.close()
        return row[0], str(row[1])

    return asyncio.run(query())


def _sqlalchemy(url: str) -> tuple[str, str]:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            user, one = connection.execute(text("SELECT current_user, 1")).one()
    finally:
        engine.dispose()
    return user, str(one)


def _sqlalchemy_async(url: str) -> tuple[str, str]:
    async def query() -> tuple[str, str]:
        engine = create_async_engine(url)
        try:
            async with engine.connect() as connection:
                user, one = (await connection.execute(text("SELECT current_user, 1"))).one()
        finally:
            await engine.dispose()
        return user, str(one)

    return asyncio.run(query())


CONSUMERS = {
    "psql": ("libpq", _psql),
    "psycopg.connect": ("libpq", _psycopg),
    "psycopg_pool": ("libpq", _psycopg_pool),
    "asyncpg.connect/create_pool": ("libpq", _asyncpg),
    "sqlalchemy psycopg2": ("psycopg2", _sqlalchemy),
    "sqlalchemy psycopg": ("psycopg", _sqlalchemy),
    "sqlalchemy asyncpg": ("asyncpg", _sqlalchemy_async),
    "sqlalchemy psycopg async": ("psycopg", _sqlalchemy_async),
}


@pytest.mark.parametrize("consumer", sorted(CONSUMERS))
def test_every_consumer_connects_with_the_converted_url(role_url: str, consumer: str) -> None:
    target, connect = CONSUMERS[consumer]
    for spelling in SPELLINGS:
        url = role_url.replace("postgresql://", f"{spelling}://", 1)
        assert connect(url_for(url, target)) == (ROLE, "1"), spelling  # type: ignore[arg-type]
