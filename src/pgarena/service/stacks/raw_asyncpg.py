"""Stack `async-raw`: asyncpg's own pool and SQL text, no ORM: the async driver's ceiling.

Read it side by side with `raw_psycopg.py`: the statements (in `raw.py`) and the pool policy
are the same, only the driver and the execution model differ. asyncpg prepares every
statement on first use and keeps it in its per-connection cache, so each request runs
prepared statements.

One difference in pool policy comes from the execution model: asyncpg's pool lets a
newcomer overtake a waiting request, so this stack, like `orm_async.py`, hands connections
out in arrival order itself (`turns.py`); psycopg's pool queues its waiters in order.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any, TypeVar

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from pgarena.service.errors import Conflict, NotFound, raise_for_constraint
from pgarena.service.limits import drop_backend, hold_backend
from pgarena.service.metrics import POOL_IN_USE, POOL_MAX
from pgarena.service.schemas import (
    FortunePublic,
    OrderIn,
    OrderPublic,
    ProductIn,
    ProductPublic,
    StoreSummary,
    TopProduct,
    UserIn,
    UserPublic,
    WorldPublic,
)
from pgarena.service.stacks import connect, raw
from pgarena.service.turns import Turns
from pgarena.settings import Settings

Connection = PoolConnectionProxy  # what the pool hands out

# What the driver raises on a database fault; `errors.is_unavailable` tells faults (503) from
# bugs (500) by SQLSTATE. OSError covers a refused or dropped socket and, since Python 3.11,
# the pool's TimeoutError; InternalClientError a connection a cancelled or broken operation
# left in a state it cannot leave ("cannot switch to state 12").
UNAVAILABLE = (
    OSError,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.InternalClientError,
)

Operation = TypeVar("Operation", bound=Callable[..., Awaitable[Any]])


def unit_of_work(operation: Operation) -> Operation:
    """Run a store operation on one pool connection, returned to the pool when the operation
    returns or raises (statements run in autocommit: there is no transaction to end)."""

    @functools.wraps(operation)
    async def run(store: RawStore, *args: Any) -> Any:
        try:
            return await operation(store, *args)
        finally:
            await store.release()

    return run  # type: ignore[return-value]


class RawStore:
    def __init__(self, database: RawDatabase) -> None:
        self.database = database
        self._connection: Connection | None = None

    @unit_of_work
    async def get_user(self, user_id: int) -> UserPublic:
        return raw.user_public(await self._one("User", raw.GET_USER, user_id))

    @unit_of_work
    async def list_users(self, skip: int, limit: int) -> Sequence[UserPublic]:
        rows = await (await self._db()).fetch(raw.LIST_USERS, skip, limit)
        return [raw.user_public(row) for row in rows]

    @unit_of_work
    async def create_user(self, data: UserIn) -> UserPublic:
        return raw.user_public(await self._write(raw.CREATE_USER, data.username, data.email))

    @unit_of_work
    async def update_user(self, user_id: int, data: UserIn) -> UserPublic:
        row = await self._write(raw.UPDATE_USER, user_id, data.username, data.email)
        if row is None:
            raise NotFound("User")
        return raw.user_public(row)

    @unit_of_work
    async def delete_user(self, user_id: int) -> None:
        await self._one("User", raw.DELETE_USER, user_id)

    @unit_of_work
    async def get_product(self, product_id: int) -> ProductPublic:
        return raw.product_public(await self._one("Product", raw.GET_PRODUCT, product_id))

    @unit_of_work
    async def list_products(self, skip: int, limit: int) -> Sequence[ProductPublic]:
        rows = await (await self._db()).fetch(raw.LIST_PRODUCTS, skip, limit)
        return [raw.product_public(row) for row in rows]

    @unit_of_work
    async def create_product(self, data: ProductIn) -> ProductPublic:
        row = await self._write(
            raw.CREATE_PRODUCT, data.name, data.description, data.price, data.sku
        )
        return raw.product_public(row)

    @unit_of_work
    async def update_product(self, product_id: int, data: ProductIn) -> ProductPublic:
        row = await self._write(
            raw.UPDATE_PRODUCT, product_id, data.name, data.description, data.price, data.sku
        )
        if row is None:
            raise NotFound("Product")
        return raw.product_public(row)

    @unit_of_work
    async def delete_product(self, product_id: int) -> None:
        try:
            await self._one("Product", raw.DELETE_PRODUCT, product_id)
        except asyncpg.IntegrityConstraintViolationError:  # RESTRICT: the product was sold
            raise Conflict("Product has orders") from None

    @unit_of_work
    async def create_order(self, data: OrderIn) -> OrderPublic:
        row = await self._write(raw.CREATE_ORDER, data.user_id, data.product_id, data.quantity)
        if row is None:
            # Only on this error path: tell which of the two is missing, user first.
            user_exists = await (await self._db()).fetchval(raw.USER_EXISTS, data.user_id)
            raise NotFound("Product" if user_exists else "User")
        return raw.order_public(row)

    @unit_of_work
    async def get_order(self, order_id: int) -> OrderPublic:
        return raw.order_public(await self._one("Order", raw.GET_ORDER, order_id))

    @unit_of_work
    async def list_user_orders(self, user_id: int, skip: int, limit: int) -> Sequence[OrderPublic]:
        await self._one("User", raw.GET_USER, user_id)
        rows = await (await self._db()).fetch(raw.LIST_USER_ORDERS, user_id, skip, limit)
        return [raw.order_public(row) for row in rows]

    @unit_of_work
    async def top_products(self, limit: int, since: datetime | None) -> Sequence[TopProduct]:
        if since is None:
            rows = await (await self._db()).fetch(raw.TOP_PRODUCTS, limit)
        else:
            rows = await (await self._db()).fetch(raw.TOP_PRODUCTS_SINCE, limit, since)
        return [TopProduct(**row) for row in rows]

    async def summary(self) -> StoreSummary:
        # Independent queries at once, each on its own pool connection.
        users, products, orders, revenue = await asyncio.gather(
            *(self.database.fetchval(statement) for statement in raw.SUMMARY)
        )
        return StoreSummary(users=users, products=products, orders=orders, revenue=revenue)

    @unit_of_work
    async def sleep(self, seconds: float) -> None:
        await (await self._db()).execute(raw.SLEEP, seconds)

    @unit_of_work
    async def get_world(self, world_id: int) -> WorldPublic:
        return dict(await (await self._db()).fetchrow(raw.GET_WORLD, world_id))  # type: ignore[return-value]

    @unit_of_work
    async def get_worlds(self, world_ids: Sequence[int]) -> list[WorldPublic]:
        return await self._worlds(world_ids)

    @unit_of_work
    async def update_worlds(self, new_numbers: Mapping[int, int]) -> list[WorldPublic]:
        worlds = await self._worlds(list(new_numbers))
        for world in worlds:
            world["randomNumber"] = new_numbers[world["id"]]
        db = await self._db()
        # executemany sends every UPDATE in one pipelined batch, in one transaction.
        async with db.transaction():
            await db.executemany(raw.UPDATE_WORLD, sorted(new_numbers.items()))
        return worlds

    @unit_of_work
    async def list_fortunes(self) -> list[FortunePublic]:
        rows = await (await self._db()).fetch(raw.LIST_FORTUNES)
        return [{"id": row["id"], "message": row["message"]} for row in rows]

    async def _db(self) -> Connection:
        """The operation's connection, taken from the pool on first use."""
        if self._connection is None:
            self._connection = await self.database.acquire()
        return self._connection

    async def _worlds(self, world_ids: Sequence[int]) -> list[WorldPublic]:
        db = await self._db()
        return [dict(await db.fetchrow(raw.GET_WORLD, world_id)) for world_id in world_ids]  # type: ignore[misc]

    async def _one(self, what: str, statement: str, *args: Any) -> asyncpg.Record:
        row = await (await self._db()).fetchrow(statement, *args)
        if row is None:
            raise NotFound(what)
        return row

    async def _write(self, statement: str, *args: Any) -> asyncpg.Record | None:
        try:
            return await (await self._db()).fetchrow(statement, *args)
        except asyncpg.IntegrityConstraintViolationError as error:
            raise_for_constraint(error)

    async def release(self) -> None:
        if self._connection is not None:
            connection, self._connection = self._connection, None
            await self.database.release(connection)


class RawDatabase:
    def __init__(self, pool: asyncpg.Pool, settings: Settings) -> None:
        self.pool = pool
        # Connections in arrival order (see `turns.py`); a turn always finds one free, so
        # `acquire` needs no timeout of its own. A wait past the pool timeout is a
        # TimeoutError, an OSError: 503, as the pool's own timeout was.
        self.turns = Turns(settings.max_connections, settings.pool_timeout, TimeoutError)

    def store(self) -> RawStore:
        """One request's store: it takes a connection per operation, on first use."""
        return RawStore(self)

    async def acquire(self) -> Connection:
        await self.turns.take()
        try:
            connection = await self.pool.acquire()
        except BaseException:
            self.turns.give_back()
            raise
        POOL_IN_USE.inc()
        return connection

    async def release(self, connection: Connection) -> None:
        POOL_IN_USE.dec()
        try:
            await self.pool.release(connection)
        finally:
            self.turns.give_back()

    async def fetchval(self, statement: str) -> Any:
        connection = await self.acquire()
        try:
            return await connection.fetchval(statement)
        finally:
            await self.release(connection)

    async def ping(self) -> None:
        await self.fetchval(raw.PING)


async def hold(connection: asyncpg.Connection) -> None:
    """Pool setup hook, on every acquire: tell the request limits which connection the
    request holds, so its statement is cancelled if its client goes away (`limits.py`)."""
    hold_backend(connection.get_server_pid())


async def keep_session(connection: asyncpg.Connection) -> None:
    """Pool reset hook, on every release: nothing to undo but the request limits' record.

    asyncpg's default reset runs `SELECT pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *;
    RESET ALL` on every release: one more round trip per request, for session state this
    stack never creates. An open transaction is still rolled back by the pool itself.
    """
    drop_backend(connection.get_server_pid())


@asynccontextmanager
async def open_database(settings: Settings, url: str) -> AsyncIterator[RawDatabase]:
    POOL_MAX.set(settings.max_connections)
    # The pool policy both raw stacks share is explained in `raw.py`.
    pool = await asyncpg.create_pool(
        url,
        min_size=raw.POOL_MIN_SIZE,
        max_size=settings.max_connections,
        max_inactive_connection_lifetime=raw.POOL_MAX_IDLE_S,
        setup=hold,
        reset=keep_session,
        **connect.asyncpg_options(settings),  # statement and connect timeouts
        # Behind a transaction pooler no statement outlives its transaction's backend: no
        # cache, so asyncpg uses unnamed statements it re-parses each time.
        **({"statement_cache_size": 0} if settings.transaction_pooler else {}),
    )
    try:
        yield RawDatabase(pool, settings)
    finally:
        await pool.close()
