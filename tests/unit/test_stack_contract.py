"""Every stack provides the whole contract of `stacks/interface.py`, in its own style.

A stack that misses an operation, or writes one `def` where its style needs `async def`,
would only fail when that route is called; these tests fail at once, with no database.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, get_args, get_type_hints

import pytest

from pgarena.service.stacks import STACKS, Stack
from pgarena.service.stacks.interface import (
    AsyncDatabase,
    AsyncStore,
    StackModule,
    SyncDatabase,
    SyncStore,
)


def protocol_members(protocol: type) -> dict[str, Callable[..., Any]]:
    """The operations a protocol declares, by name."""
    return {
        name: member
        for name, member in vars(protocol).items()
        if inspect.isfunction(member) and not name.startswith("_")
    }


def yielded_class(function: Callable[..., Any]) -> type:
    """`Database` from `-> AsyncIterator[Database]` (a context manager's generator)."""
    (yielded,) = get_args(get_type_hints(function)["return"])
    return yielded


def contract_breaches(implementation: type, protocol: type, style: str) -> list[str]:
    """What `implementation` lacks of `protocol`: missing operations, wrong style, wrong
    parameters. Empty when it keeps the contract."""
    breaches = []
    for name, declared in protocol_members(protocol).items():
        actual = getattr(implementation, name, None)
        if actual is None:
            breaches.append(f"{name}: missing")
            continue
        # `store()` is a plain call in both styles; the other operations are awaited
        # exactly when the protocol awaits them.
        if inspect.iscoroutinefunction(actual) != inspect.iscoroutinefunction(declared):
            breaches.append(f"{name}: not {'async def' if style == 'async' else 'def'}")
        wanted = list(inspect.signature(declared).parameters)
        found = list(inspect.signature(actual).parameters)
        if found != wanted:
            breaches.append(f"{name}: parameters {found}, the protocol has {wanted}")
    return breaches


@pytest.fixture(params=list(STACKS.values()), ids=list(STACKS))
def stack(request: pytest.FixtureRequest) -> Stack:
    return request.param


def test_every_stack_module_exports_open_database_and_unavailable(stack: Stack) -> None:
    module = stack.load()
    assert isinstance(module, StackModule)
    assert inspect.signature(module.open_database).parameters.keys() == {"settings", "url"}
    assert module.UNAVAILABLE and all(
        issubclass(error, BaseException) for error in module.UNAVAILABLE
    )


def test_every_stack_database_and_store_keep_the_protocol_of_their_style(stack: Stack) -> None:
    database_protocol, store_protocol = {
        "sync": (SyncDatabase, SyncStore),
        "async": (AsyncDatabase, AsyncStore),
    }[stack.style]
    database = yielded_class(stack.load().open_database)
    store = get_type_hints(database.store)["return"]
    assert contract_breaches(database, database_protocol, stack.style) == []
    assert contract_breaches(store, store_protocol, stack.style) == []


def test_the_contract_check_catches_a_missing_and_a_mis_styled_operation() -> None:
    store = get_type_hints(yielded_class(STACKS["sync-raw"].load().open_database).store)["return"]

    class Incomplete(store):  # type: ignore[misc, valid-type]
        list_fortunes = None  # as if never written

        async def get_world(self, world_id: int) -> Any:  # async in a sync stack
            return None

    assert contract_breaches(Incomplete, SyncStore, "sync") == [
        "get_world: not def",
        "list_fortunes: missing",
    ]


def test_stacks_name_their_driver_and_get_the_url_spelling_it_reads() -> None:
    drivers = {
        name: (stack.driver, stack.access, stack.url_driver) for name, stack in STACKS.items()
    }
    assert drivers == {
        "sync": ("psycopg2", "orm", "psycopg2"),
        "async": ("asyncpg", "orm", "asyncpg"),
        "sync-psycopg3": ("psycopg", "orm", "psycopg"),
        "async-psycopg3": ("psycopg", "orm", "psycopg"),
        "async-raw": ("asyncpg", "raw", "libpq"),
        "sync-raw": ("psycopg", "raw", "libpq"),
    }
