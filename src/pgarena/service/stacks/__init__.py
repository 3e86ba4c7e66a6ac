"""The stacks: interchangeable ways for the service to reach PostgreSQL.

Each stack is one module in this package plus one line in `STACKS`. A module provides
  - `open_database(settings, url)`: an async context manager that creates the engine or
    pool when the app starts, yields a `SyncDatabase` or `AsyncDatabase` (see
    `interface.py`), and disposes of it when the app stops;
  - `UNAVAILABLE`: the exceptions that mean "the database cannot be reached" (answered 503).
Several stacks can share a module: only their driver differs.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType
from typing import Literal

from pgarena.errors import UserError

Style = Literal["sync", "async"]
Driver = Literal["psycopg2", "asyncpg", "psycopg", "libpq"]


@dataclass(frozen=True)
class Stack:
    name: str
    style: Style  # "sync": `def` endpoints on a thread pool; "async": `async def` endpoints
    driver: Driver  # which URL spelling `pgarena.database.urls.url_for` must produce
    module: str  # the module in this package that implements it
    description: str

    def load(self) -> ModuleType:
        """Import the stack's module; only the stack being served is ever imported."""
        return importlib.import_module(f"{__name__}.{self.module}")


STACKS: dict[str, Stack] = {
    stack.name: stack
    for stack in (
        Stack("sync", "sync", "psycopg2", "orm_sync",
              "SQLAlchemy 2 ORM Session on psycopg2, def endpoints"),
        Stack("async", "async", "asyncpg", "orm_async",
              "SQLAlchemy 2 ORM AsyncSession on asyncpg, async def endpoints"),
        Stack("sync-psycopg3", "sync", "psycopg", "orm_sync",
              "SQLAlchemy 2 ORM Session on psycopg 3, def endpoints"),
        Stack("async-psycopg3", "async", "psycopg", "orm_async",
              "SQLAlchemy 2 ORM AsyncSession on psycopg 3, async def endpoints"),
        Stack("async-raw", "async", "libpq", "raw_asyncpg",
              "asyncpg's own pool and SQL text, no ORM, async def endpoints"),
        Stack("sync-raw", "sync", "libpq", "raw_psycopg",
              "psycopg 3 ConnectionPool and SQL text, no ORM, def endpoints"),
    )
}  # fmt: skip


def get_stack(name: str) -> Stack:
    """The stack called `name`, or a UserError that lists the valid names."""
    try:
        return STACKS[name]
    except KeyError:
        raise UserError(f"unknown stack {name!r}; choose one of: {', '.join(STACKS)}") from None
