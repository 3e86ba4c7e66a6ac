"""Stacks `async` (asyncpg) and `async-psycopg3`: SQLAlchemy 2 ORM `AsyncSession`, one per
request.

Read it side by side with `orm_sync.py`: the statements are the same, only the
execution model differs.

Connections run in autocommit, as the raw stacks' do (`orm.autocommit`; behind a transaction
pooler, asyncpg's keep a transaction per operation). Every operation that writes is one
transaction (`@unit_of_work`); one that only reads (`@read`) sends its statements alone,
one round trip each. Either way the operation returns its connection to the pool before
the endpoint returns, as in `orm_sync.py`, where that is what avoids a deadlock; here it
keeps connections busy no longer than the work needs.

Operations take their turn for a connection in arrival order (`turns.py`), as in
`raw_asyncpg.py`: SQLAlchemy's asyncio pool lets a newcomer overtake the waiter it woke
(it even tries `get_nowait` first), which made the tail 4-5x the median under load.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Executable, delete, select, text, update
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

from pgarena.database.models import Base, Fortune, Order, Product, User, World
from pgarena.database.urls import url_for
from pgarena.service.errors import Conflict, NotFound, raise_for_constraint
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
from pgarena.service.stacks import orm
from pgarena.service.stacks.orm import Row
from pgarena.service.turns import Turns
from pgarena.settings import Settings

# What the driver raises on a database fault; `errors.is_unavailable` tells faults (503) from
# bugs (500) by SQLSTATE. asyncpg raises OSError subclasses (ConnectionRefusedError...) when
# the server is gone, and SQLAlchemy's asyncpg dialect wraps the rest in plain DBAPIError.
UNAVAILABLE = (DBAPIError, PoolTimeout, OSError)
Operation = TypeVar("Operation", bound=Callable[..., Awaitable[Any]])


def unit_of_work(operation: Operation) -> Operation:
    """Run a store operation that writes in its own transaction (`orm.unit_of_work_options`);
    a violated constraint becomes its HTTP error. The transaction commits when the operation
    returns, rolls back when it raises."""

    @functools.wraps(operation)
    async def run(store: OrmStore, *args: Any) -> Any:
        await store.database.turns.take()
        try:
            async with store.session.begin():
                await store.database.begin_writing(store.session)
                return await operation(store, *args)
        except IntegrityError as error:
            raise_for_constraint(error)
        finally:
            store.database.turns.give_back()

    return run  # type: ignore[return-value]


def read(operation: Operation) -> Operation:
    """Run a store operation that only reads, on the connection as the engine keeps it: in
    autocommit (`orm.autocommit`), its statements go alone, one round trip each, and closing
    the session when the operation returns gives the connection back.

    Closed, as `async with sessions() as session` ends, and not in a `session.begin()`
    block: each `AsyncSession` call runs the sync session's method in a greenlet of its own,
    and the block costs two (its start and its end) where `close` costs one. A greenlet is
    not free on CPython 3.11: each new one maps a fresh 16 KiB frame stack and unmaps it at
    its end, two system calls and four page faults. On `GET /db` that is 59,000 fewer
    instructions per request (1,401k, from 1,461k) and two such pairs instead of three."""

    @functools.wraps(operation)
    async def run(store: OrmStore, *args: Any) -> Any:
        await store.database.turns.take()
        try:
            return await operation(store, *args)
        finally:
            try:
                await store.session.close()
            finally:
                store.database.turns.give_back()

    return run  # type: ignore[return-value]


class OrmStore:
    def __init__(self, session: AsyncSession, database: OrmDatabase) -> None:
        self.session = session
        self.database = database

    @read
    async def get_user(self, user_id: int) -> UserPublic:
        return UserPublic.model_validate(await self._get(User, user_id))

    @read
    async def list_users(self, skip: int, limit: int) -> Sequence[UserPublic]:
        users = await self.session.scalars(select(User).order_by(User.id).offset(skip).limit(limit))
        return [UserPublic.model_validate(user) for user in users]

    @unit_of_work
    async def create_user(self, data: UserIn) -> UserPublic:
        return UserPublic.model_validate(await self._add(User(**data.model_dump())))

    @unit_of_work
    async def update_user(self, user_id: int, data: UserIn) -> UserPublic:
        return UserPublic.model_validate(await self._update(User, user_id, data.model_dump()))

    @unit_of_work
    async def delete_user(self, user_id: int) -> None:
        await self._delete(User, user_id)

    @read
    async def get_product(self, product_id: int) -> ProductPublic:
        return ProductPublic.model_validate(await self._get(Product, product_id))

    @read
    async def list_products(self, skip: int, limit: int) -> Sequence[ProductPublic]:
        products = await self.session.scalars(
            select(Product).order_by(Product.id).offset(skip).limit(limit)
        )
        return [ProductPublic.model_validate(product) for product in products]

    @unit_of_work
    async def create_product(self, data: ProductIn) -> ProductPublic:
        return ProductPublic.model_validate(await self._add(Product(**data.model_dump())))

    @unit_of_work
    async def update_product(self, product_id: int, data: ProductIn) -> ProductPublic:
        product = await self._update(Product, product_id, data.model_dump())
        return ProductPublic.model_validate(product)

    @unit_of_work
    async def delete_product(self, product_id: int) -> None:
        try:
            await self._delete(Product, product_id)
        except IntegrityError:
            raise Conflict("Product has orders") from None

    @unit_of_work
    async def create_order(self, data: OrderIn) -> OrderPublic:
        user = await self._get(User, data.user_id)
        product = await self._get(Product, data.product_id)
        order = Order(user=user, product=product, quantity=data.quantity, unit_price=product.price)
        return OrderPublic.model_validate(await self._add(order))

    @read
    async def get_order(self, order_id: int) -> OrderPublic:
        order = await self.session.scalar(orm.order_with_relations().where(Order.id == order_id))
        if order is None:
            raise NotFound("Order")
        return OrderPublic.model_validate(order)

    @read
    async def list_user_orders(self, user_id: int, skip: int, limit: int) -> Sequence[OrderPublic]:
        await self._get(User, user_id)
        orders = await self.session.scalars(
            orm.order_with_relations()
            .where(Order.user_id == user_id)
            .order_by(Order.id)
            .offset(skip)
            .limit(limit)
        )
        return [OrderPublic.model_validate(order) for order in orders]

    @read
    async def top_products(self, limit: int, since: datetime | None) -> Sequence[TopProduct]:
        rows = await self.session.execute(orm.top_products(limit, since))
        return [TopProduct.model_validate(row) for row in rows]

    async def summary(self) -> StoreSummary:
        # Independent queries at once: one session (so one connection) each, never shared
        # between concurrent tasks.
        users, products, orders, revenue = await asyncio.gather(
            *(self.database.scalar(statement) for statement in orm.SUMMARY)
        )
        return StoreSummary(users=users, products=products, orders=orders, revenue=revenue)

    @read
    async def sleep(self, seconds: float) -> None:
        await self.session.execute(text("SELECT pg_sleep(:seconds)"), {"seconds": seconds})

    @read
    async def get_world(self, world_id: int) -> WorldPublic:
        return orm.world_public(await self._get(World, world_id))

    @read
    async def get_worlds(self, world_ids: Sequence[int]) -> list[WorldPublic]:
        # session.get, the ORM's load by primary key: the identity map lives for one request
        # and a request's ids are distinct, so each id costs one statement.
        return [orm.world_public(await self._get(World, world_id)) for world_id in world_ids]

    @unit_of_work
    async def update_worlds(self, new_numbers: Mapping[int, int]) -> list[WorldPublic]:
        worlds = [await self._get(World, world_id) for world_id in new_numbers]
        for world in worlds:
            world.randomnumber = new_numbers[world.id]
        # The flush at commit sends the UPDATEs as one executemany, sorted by primary key.
        return [orm.world_public(world) for world in worlds]

    @read
    async def list_fortunes(self) -> list[FortunePublic]:
        fortunes = await self.session.scalars(select(Fortune))
        return [{"id": fortune.id, "message": fortune.message} for fortune in fortunes]

    async def _get(self, model: type[Row], row_id: int) -> Row:
        row = await self.session.get(model, row_id)
        if row is None:
            raise NotFound(model.__name__)
        return row

    async def _add(self, row: Row) -> Row:
        self.session.add(row)
        await self.session.flush()  # the INSERT, so a duplicate fails here, inside the operation
        return row

    async def _update(self, model: type[Row], row_id: int, values: dict[str, Any]) -> Row:
        # One UPDATE ... RETURNING round trip instead of SELECT, UPDATE and a refresh.
        statement = update(model).where(model.id == row_id).values(values).returning(model)  # type: ignore[attr-defined]
        row = await self.session.scalar(statement)
        if row is None:
            raise NotFound(model.__name__)
        return row

    async def _delete(self, model: type[Base], row_id: int) -> None:
        result = await self.session.execute(delete(model).where(model.id == row_id))  # type: ignore[attr-defined]
        if result.rowcount == 0:  # type: ignore[attr-defined]
            raise NotFound(model.__name__)


class OrmDatabase:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        settings: Settings,
        transaction: dict[str, Any],
    ) -> None:
        self.sessions = sessions
        self.turns = Turns(settings.max_connections, settings.pool_timeout, PoolTimeout)
        self.transaction = transaction  # how a unit of work takes its connection

    def store(self) -> OrmStore:
        """One request's store. Its session needs no closing at the request's end: each
        operation gives its connection back when it ends (a read closes the session, a unit
        of work ends its transaction), and the session then holds at most the identity map
        of the request's last write."""
        return OrmStore(self.sessions(), self)

    async def begin_writing(self, session: AsyncSession) -> None:
        """Give a unit of work's session its transaction (`orm.unit_of_work_options`)."""
        await session.connection(execution_options=self.transaction)

    async def scalar(self, statement: Executable) -> Any:
        await self.turns.take()
        try:
            async with self.sessions.begin() as session:  # as `read` does, and closed after
                return await session.scalar(statement)
        finally:
            self.turns.give_back()

    async def ping(self) -> None:
        await self.scalar(text("SELECT 1"))


def connect_to_the_end(url: str, options: dict[str, Any]) -> Callable[[], Awaitable[Any]]:
    """psycopg 3's `AsyncConnection.connect`, finished even when the request is cancelled.

    SQLAlchemy's pool opens a connection in the task that asked for it. When that request is
    cancelled mid-connect (its client left, `service/limits.py`), asyncpg closes its socket,
    but psycopg leaves the half-made connection to the garbage collector: an open session
    beyond the pool's limit for as long as a reference cycle keeps it (one to five after a
    disconnect storm, seconds later still there). So the connect runs shielded, and a
    connection nobody waits for any more is closed as soon as it is made.
    """
    import psycopg  # only the psycopg spelling of this stack needs it

    conninfo = url_for(url, "libpq")
    closing: set[asyncio.Task[None]] = set()

    def close_if_made(connecting: asyncio.Future[psycopg.AsyncConnection[Any]]) -> None:
        if not connecting.cancelled() and connecting.exception() is None:
            task = asyncio.ensure_future(connecting.result().close())
            closing.add(task)  # the loop keeps only a weak reference to a task
            task.add_done_callback(closing.discard)

    async def connect() -> psycopg.AsyncConnection[Any]:
        connecting = asyncio.ensure_future(psycopg.AsyncConnection.connect(conninfo, **options))
        try:
            return await asyncio.shield(connecting)
        except asyncio.CancelledError:
            connecting.add_done_callback(close_if_made)
            raise

    return connect


@asynccontextmanager
async def open_database(settings: Settings, url: str) -> AsyncIterator[OrmDatabase]:
    options = orm.engine_options(settings, url)
    if orm.driver_of(url) == "psycopg":
        options["async_creator"] = connect_to_the_end(url, options.pop("connect_args"))
    engine = create_async_engine(url, **options)
    orm.hand_out_open_connections(engine.sync_engine.pool)
    orm.track_pool(engine.sync_engine.pool, settings)
    orm.cancel_on_disconnect(engine.sync_engine.pool)
    # Loaded attributes stay usable after commit: no refresh query to build the response.
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    try:
        yield OrmDatabase(sessions, settings, orm.unit_of_work_options(settings, url))
    finally:
        await engine.dispose()
