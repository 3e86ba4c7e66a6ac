"""The stacks: interchangeable ways for the service to reach PostgreSQL.

Each stack is one module in this package plus one line in `STACKS`. A module provides
(`interface.StackModule` types it, and tests/unit/test_stack_contract.py checks all six)
  - `open_database(settings, url)`: an async context manager that creates the engine or
    pool when the app starts, yields a `SyncDatabase` or `AsyncDatabase` (see
    `interface.py`), and disposes of it when the app stops;
  - `UNAVAILABLE`: the exceptions that mean "the database cannot be reached" (answered 503).
Several stacks can share a module: only their driver differs.

A core install serves the asyncpg and psycopg 3 stacks; `sync` and `sync-raw` need an extra
(`EXTRA_PACKAGES`), and `Stack.check_installed()` says which before anything starts. Nothing
here imports a driver, so `pgarena stacks` lists all six on any install.
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, cast

from pgarena.errors import UserError

if TYPE_CHECKING:
    from pgarena.database.urls import Driver as UrlDriver
    from pgarena.service.stacks.interface import StackModule

Style = Literal["sync", "async"]
Driver = Literal["psycopg2", "asyncpg", "psycopg"]  # psycopg: psycopg 3
Access = Literal["orm", "raw"]


@dataclass(frozen=True)
class Stack:
    name: str
    style: Style  # "sync": the store runs on a thread pool; "async": on the event loop
    driver: Driver  # the PostgreSQL driver underneath
    access: Access  # "orm": SQLAlchemy 2 ORM sessions; "raw": the driver's own pool, SQL text
    module: str  # the module in this package that implements it
    description: str

    @property
    def url_driver(self) -> UrlDriver:
        """The URL spelling `pgarena.database.urls.url_for` must produce for this stack:
        SQLAlchemy's `postgresql+<driver>://` for the ORM, a plain libpq URI for a driver's
        own pool (asyncpg and psycopg 3 both read it)."""
        return self.driver if self.access == "orm" else "libpq"

    @property
    def installed(self) -> bool:
        """Whether the packages this stack needs are installed (found without importing)."""
        package = EXTRA_PACKAGES.get(self.name)
        return package is None or importlib.util.find_spec(package.module) is not None

    def check_installed(self) -> None:
        """A one-line `UserError` naming the extra to install, unless the stack can run.

        Without it a missing psycopg2 surfaces only when SQLAlchemy creates the engine, as a
        traceback from inside the server's lifespan, after PostgreSQL was started and migrated.
        """
        if not self.installed:
            package = EXTRA_PACKAGES[self.name]
            raise UserError(
                f"stack {self.name!r} needs {package.name}: pip install 'pgarena[{package.extra}]'"
            )

    def load(self) -> StackModule:
        """Import the stack's module; only the stack being served is ever imported."""
        self.check_installed()
        return cast("StackModule", importlib.import_module(f"{__name__}.{self.module}"))


@dataclass(frozen=True)
class ExtraPackage:
    name: str  # as pip knows it, for the message
    module: str  # the top-level module the stack (or SQLAlchemy for it) imports
    extra: str  # the pgarena extra that installs it


# What a stack needs beyond the core install (asyncpg and psycopg 3, see pyproject.toml).
EXTRA_PACKAGES: dict[str, ExtraPackage] = {
    "sync": ExtraPackage("psycopg2", "psycopg2", "psycopg2"),
    "sync-raw": ExtraPackage("psycopg-pool", "psycopg_pool", "psycopg"),
}

STACKS: dict[str, Stack] = {
    stack.name: stack
    for stack in (
        Stack("sync", "sync", "psycopg2", "orm", "orm_sync",
              "SQLAlchemy 2 ORM Session on psycopg2, on a thread pool"),
        Stack("async", "async", "asyncpg", "orm", "orm_async",
              "SQLAlchemy 2 ORM AsyncSession on asyncpg, on the event loop"),
        Stack("sync-psycopg3", "sync", "psycopg", "orm", "orm_sync",
              "SQLAlchemy 2 ORM Session on psycopg 3, on a thread pool"),
        Stack("async-psycopg3", "async", "psycopg", "orm", "orm_async",
              "SQLAlchemy 2 ORM AsyncSession on psycopg 3, on the event loop"),
        Stack("async-raw", "async", "asyncpg", "raw", "raw_asyncpg",
              "asyncpg's own pool and SQL text, no ORM, on the event loop"),
        Stack("sync-raw", "sync", "psycopg", "raw", "raw_psycopg",
              "psycopg 3 ConnectionPool and SQL text, no ORM, on a thread pool"),
    )
}  # fmt: skip


def get_stack(name: str) -> Stack:
    """The stack called `name`, or a UserError that lists the valid names."""
    try:
        return STACKS[name]
    except KeyError:
        raise UserError(f"unknown stack {name!r}; choose one of: {', '.join(STACKS)}") from None
