"""Stack `sync-raw`: psycopg 3's `ConnectionPool` and SQL text, no ORM, on a thread pool.

Read it side by side with `raw_asyncpg.py`: the statements (in `raw.py`) and the pool policy
are the same, only the driver and the execution model differ. With `prepare_threshold=0`
psycopg prepares every statement on first use and keeps it per connection, as asyncpg does,
so each request runs prepared statements.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any, TypeVar

import psycopg
from psycopg import errors
from psycopg.rows import DictRow, dict_row
from psycopg_pool import ConnectionPool

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
from pgarena.settings import Settings

Connection = psycopg.Connection[DictRow]  # what the pool hands out

# What the driver raises on a database fault (PoolTimeout is an OperationalError);
# `errors.is_unavailable` tells faults (503) from bugs (500) by SQLSTATE.
UNAVAILABLE = (psycopg.Error, OSError)

Operation = TypeVar("Operation", bound=Callable[..., Any])


def unit_of_work(operation: Operation) -> Operation:
    """Run a store operation on one pool connection, returned to the pool when the operation
    returns or raises (statements run in autocommit: there is no transaction to end)."""

    @functools.wraps(operation)
    def run(store: RawStore, *args: Any) -> Any:
        try:
            return operation(store, *args)
        finally:
            store.release()

    return run  # type: ignore[return-value]


class RawStore:
    def __init__(self, database: RawDatabase) -> None:
        self.database = database
        self._connection: Connection | None = None

    @unit_of_work
    def get_user(self, user_id: int) -> UserPublic:
        return raw.user_public(self._one("User", raw.GET_USER, user_id))

    @unit_of_work
    def list_users(self, skip: int, limit: int) -> Sequence[UserPublic]:
        rows = self._db().execute(raw.LIST_USERS, (skip, limit))
        return [raw.user_public(row) for row in rows]

    @unit_of_work
    def create_user(self, data: UserIn) -> UserPublic:
        return raw.user_public(self._write(raw.CREATE_USER, data.username, data.email))

    @unit_of_work
    def update_user(self, user_id: int, data: UserIn) -> UserPublic:
        row = self._write(raw.UPDATE_USER, user_id, data.username, data.email)
        if row is None:
            raise NotFound("User")
        return raw.user_public(row)

    @unit_of_work
    def delete_user(self, user_id: int) -> None:
        self._one("User", raw.DELETE_USER, user_id)

    @unit_of_work
    def get_product(self, product_id: int) -> ProductPublic:
        return raw.product_public(self._one("Product", raw.GET_PRODUCT, product_id))

    @unit_of_work
    def list_products(self, skip: int, limit: int) -> Sequence[ProductPublic]:
        rows = self._db().execute(raw.LIST_PRODUCTS, (skip, limit))
        return [raw.product_public(row) for row in rows]

    @unit_of_work
    def create_product(self, data: ProductIn) -> ProductPublic:
        row = self._write(raw.CREATE_PRODUCT, data.name, data.description, data.price, data.sku)
        return raw.product_public(row)

    @unit_of_work
    def update_product(self, product_id: int, data: ProductIn) -> ProductPublic:
        row = self._write(
            raw.UPDATE_PRODUCT, product_id, data.name, data.description, data.price, data.sku
        )
        if row is None:
            raise NotFound("Product")
        return raw.product_public(row)

    @unit_of_work
    def delete_product(self, product_id: int) -> None:
        try:
            self._one("Product", raw.DELETE_PRODUCT, product_id)
        except errors.IntegrityError:  # RESTRICT: the product was sold
            raise Conflict("Product has orders") from None

    @unit_of_work
    def create_order(self, data: OrderIn) -> OrderPublic:
        row = self._write(raw.CREATE_ORDER, data.user_id, data.product_id, data.quantity)
        if row is None:
            # Only on this error path: tell which of the two is missing, user first.
            found = self._db().execute(raw.USER_EXISTS, (data.user_id,)).fetchone()
            raise NotFound("Product" if found and found["exists"] else "User")
        return raw.order_public(row)

    @unit_of_work
    def get_order(self, order_id: int) -> OrderPublic:
        return raw.order_public(self._one("Order", raw.GET_ORDER, order_id))

    @unit_of_work
    def list_user_orders(self, user_id: int, skip: int, limit: int) -> Sequence[OrderPublic]:
        self._one("User", raw.GET_USER, user_id)
        rows = self._db().execute(raw.LIST_USER_ORDERS, (user_id, skip, limit))
        return [raw.order_public(row) for row in rows]

    @unit_of_work
    def top_products(self, limit: int, since: datetime | None) -> Sequence[TopProduct]:
        if since is None:
            rows = self._db().execute(raw.TOP_PRODUCTS, (limit,))
        else:
            rows = self._db().execute(raw.TOP_PRODUCTS_SINCE, (limit, since))
        return [TopProduct(**row) for row in rows]

    def summary(self) -> StoreSummary:
        # Independent queries at once, each on its own pool connection, on threads.
        futures = [self.database.executor.submit(self.database.fetchval, q) for q in raw.SUMMARY]
        users, products, orders, revenue = (future.result() for future in futures)
        return StoreSummary(users=users, products=products, orders=orders, revenue=revenue)

    @unit_of_work
    def sleep(self, seconds: float) -> None:
        self._db().execute(raw.SLEEP, (seconds,))

    @unit_of_work
    def get_world(self, world_id: int) -> WorldPublic:
        return self._db().execute(raw.GET_WORLD, (world_id,)).fetchone()  # type: ignore[return-value]

    @unit_of_work
    def get_worlds(self, world_ids: Sequence[int]) -> list[WorldPublic]:
        return self._worlds(world_ids)

    @unit_of_work
    def update_worlds(self, new_numbers: Mapping[int, int]) -> list[WorldPublic]:
        worlds = self._worlds(list(new_numbers))
        for world in worlds:
            world["randomNumber"] = new_numbers[world["id"]]
        db = self._db()
        # executemany sends every UPDATE in one pipelined batch, in one transaction.
        with db.transaction(), db.cursor() as cursor:
            cursor.executemany(raw.UPDATE_WORLD, sorted(new_numbers.items()))
        return worlds

    @unit_of_work
    def list_fortunes(self) -> list[FortunePublic]:
        return self._db().execute(raw.LIST_FORTUNES).fetchall()  # type: ignore[return-value]

    def _db(self) -> Connection:
        """The operation's connection, taken from the pool on first use."""
        if self._connection is None:
            self._connection = self.database.acquire()
        return self._connection

    def _worlds(self, world_ids: Sequence[int]) -> list[WorldPublic]:
        db = self._db()
        return [db.execute(raw.GET_WORLD, (world_id,)).fetchone() for world_id in world_ids]  # type: ignore[misc]

    def _one(self, what: str, statement: str, *args: Any) -> DictRow:
        row = self._db().execute(statement, args).fetchone()
        if row is None:
            raise NotFound(what)
        return row

    def _write(self, statement: str, *args: Any) -> DictRow | None:
        try:
            return self._db().execute(statement, args).fetchone()
        except errors.IntegrityError as error:
            raise_for_constraint(error)

    def release(self) -> None:
        if self._connection is not None:
            connection, self._connection = self._connection, None
            self.database.release(connection)


class RawDatabase:
    def __init__(self, pool: ConnectionPool[Connection], settings: Settings) -> None:
        self.pool = pool
        self.timeout = settings.pool_timeout
        # Runs the independent queries of `summary` side by side, one connection each.
        self.executor = ThreadPoolExecutor(settings.max_connections, thread_name_prefix="summary")

    def store(self) -> RawStore:
        """One request's store: it takes a connection per operation, on first use."""
        return RawStore(self)

    def acquire(self) -> Connection:
        connection = self.pool.getconn(timeout=self.timeout)
        POOL_IN_USE.inc()
        return connection

    def release(self, connection: Connection) -> None:
        POOL_IN_USE.dec()
        self.pool.putconn(connection)

    def fetchval(self, statement: str) -> Any:
        connection = self.acquire()
        try:
            row = connection.execute(statement).fetchone()
        finally:
            self.release(connection)
        assert row is not None
        return next(iter(row.values()))

    def ping(self) -> None:
        self.fetchval(raw.PING)


class RequestPool(ConnectionPool[Connection]):
    """psycopg's pool, telling the request limits which connection a request holds, so a
    request whose client went away gets its statement cancelled (`service/limits.py`)."""

    def getconn(self, timeout: float | None = None) -> Connection:
        connection = super().getconn(timeout)
        hold_backend(connection.info.backend_pid)
        return connection

    def putconn(self, conn: Connection) -> None:
        if not conn.closed:  # a closed connection is nobody's to cancel
            drop_backend(conn.info.backend_pid)
        super().putconn(conn)


@asynccontextmanager
async def open_database(settings: Settings, url: str) -> AsyncIterator[RawDatabase]:
    POOL_MAX.set(settings.max_connections)
    # The pool policy both raw stacks share is explained in `raw.py`.
    pool: ConnectionPool[Connection] = RequestPool(
        url,
        min_size=raw.POOL_MIN_SIZE,
        max_size=settings.max_connections,
        max_idle=raw.POOL_MAX_IDLE_S,
        kwargs={
            # Each statement commits on its own: no BEGIN/COMMIT round trips around reads.
            # Writes that need more than one statement open a transaction explicitly.
            "autocommit": True,
            # Prepare every statement on its first run (the default waits for 5 runs); never
            # behind a transaction pooler, where the next run may meet another backend.
            "prepare_threshold": None if settings.transaction_pooler else 0,
            # PostgreSQL's own `$1` placeholders, shared with the asyncpg stack.
            "cursor_factory": psycopg.RawCursor,
            "row_factory": dict_row,
            **connect.libpq_options(settings),  # statement and connect timeouts
        },
        name="pgarena",
        open=False,
    )
    pool.open(wait=False)  # starts the pool's workers; with no floor, nothing to wait for
    database = RawDatabase(pool, settings)
    try:
        yield database
    finally:
        database.executor.shutdown(cancel_futures=True)
        pool.close()
