"""Stacks `sync` (psycopg2) and `sync-psycopg3`: SQLAlchemy 2 ORM `Session`, one per request.

Read it side by side with `orm_async.py`: the statements are the same, only the
execution model differs.

Connections run in autocommit, as the raw stacks' do (`orm.autocommit`). Every operation that
writes is one transaction (`@unit_of_work`); one that only reads (`@read`) sends its
statements alone, one round trip each. Either way the operation returns its connection to
the pool before the endpoint returns. Holding it until a `def` session dependency closes
would deadlock under load: FastAPI exits such a dependency on the same thread pool, so
threads waiting for a connection would wait on connections whose requests wait for a thread
(fastapi/fastapi#3205, #12066).
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Executable, create_engine, delete, select, text, update
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import Session, sessionmaker

from pgarena.database.models import Base, Fortune, Order, Product, User, World
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
from pgarena.settings import Settings

# What the driver raises on a database fault; `errors.is_unavailable` tells faults (503) from
# bugs (500) by SQLSTATE.
UNAVAILABLE = (DBAPIError, PoolTimeout)
Operation = TypeVar("Operation", bound=Callable[..., Any])


def unit_of_work(operation: Operation) -> Operation:
    """Run a store operation that writes in its own transaction (`orm.unit_of_work_options`);
    a violated constraint becomes its HTTP error. The transaction commits when the operation
    returns, rolls back when it raises."""

    @functools.wraps(operation)
    def run(store: OrmStore, *args: Any) -> Any:
        try:
            with store.session.begin():
                store.database.begin_writing(store.session)
                return operation(store, *args)
        except IntegrityError as error:
            raise_for_constraint(error)

    return run  # type: ignore[return-value]


def read(operation: Operation) -> Operation:
    """Run a store operation that only reads, on the connection as the engine keeps it: in
    autocommit (`orm.autocommit`), its statements go alone, one round trip each, and closing
    the session when the operation returns gives the connection back (as in `orm_async.py`,
    where a `session.begin()` block would cost one greenlet more)."""

    @functools.wraps(operation)
    def run(store: OrmStore, *args: Any) -> Any:
        try:
            return operation(store, *args)
        finally:
            store.session.close()

    return run  # type: ignore[return-value]


class OrmStore:
    def __init__(self, session: Session, database: OrmDatabase) -> None:
        self.session = session
        self.database = database

    @read
    def get_user(self, user_id: int) -> UserPublic:
        return UserPublic.model_validate(self._get(User, user_id))

    @read
    def list_users(self, skip: int, limit: int) -> Sequence[UserPublic]:
        users = self.session.scalars(select(User).order_by(User.id).offset(skip).limit(limit))
        return [UserPublic.model_validate(user) for user in users]

    @unit_of_work
    def create_user(self, data: UserIn) -> UserPublic:
        return UserPublic.model_validate(self._add(User(**data.model_dump())))

    @unit_of_work
    def update_user(self, user_id: int, data: UserIn) -> UserPublic:
        return UserPublic.model_validate(self._update(User, user_id, data.model_dump()))

    @unit_of_work
    def delete_user(self, user_id: int) -> None:
        self._delete(User, user_id)

    @read
    def get_product(self, product_id: int) -> ProductPublic:
        return ProductPublic.model_validate(self._get(Product, product_id))

    @read
    def list_products(self, skip: int, limit: int) -> Sequence[ProductPublic]:
        products = self.session.scalars(
            select(Product).order_by(Product.id).offset(skip).limit(limit)
        )
        return [ProductPublic.model_validate(product) for product in products]

    @unit_of_work
    def create_product(self, data: ProductIn) -> ProductPublic:
        return ProductPublic.model_validate(self._add(Product(**data.model_dump())))

    @unit_of_work
    def update_product(self, product_id: int, data: ProductIn) -> ProductPublic:
        return ProductPublic.model_validate(self._update(Product, product_id, data.model_dump()))

    @unit_of_work
    def delete_product(self, product_id: int) -> None:
        try:
            self._delete(Product, product_id)
        except IntegrityError:
            raise Conflict("Product has orders") from None

    @unit_of_work
    def create_order(self, data: OrderIn) -> OrderPublic:
        user = self._get(User, data.user_id)
        product = self._get(Product, data.product_id)
        order = Order(user=user, product=product, quantity=data.quantity, unit_price=product.price)
        return OrderPublic.model_validate(self._add(order))

    @read
    def get_order(self, order_id: int) -> OrderPublic:
        order = self.session.scalar(orm.order_with_relations().where(Order.id == order_id))
        if order is None:
            raise NotFound("Order")
        return OrderPublic.model_validate(order)

    @read
    def list_user_orders(self, user_id: int, skip: int, limit: int) -> Sequence[OrderPublic]:
        self._get(User, user_id)
        orders = self.session.scalars(
            orm.order_with_relations()
            .where(Order.user_id == user_id)
            .order_by(Order.id)
            .offset(skip)
            .limit(limit)
        )
        return [OrderPublic.model_validate(order) for order in orders]

    @read
    def top_products(self, limit: int, since: datetime | None) -> Sequence[TopProduct]:
        rows = self.session.execute(orm.top_products(limit, since))
        return [TopProduct.model_validate(row) for row in rows]

    def summary(self) -> StoreSummary:
        # Independent queries at once: one session (so one connection) each, on threads.
        futures = [self.database.executor.submit(self.database.scalar, q) for q in orm.SUMMARY]
        users, products, orders, revenue = (future.result() for future in futures)
        return StoreSummary(users=users, products=products, orders=orders, revenue=revenue)

    @read
    def sleep(self, seconds: float) -> None:
        self.session.execute(text("SELECT pg_sleep(:seconds)"), {"seconds": seconds})

    @read
    def get_world(self, world_id: int) -> WorldPublic:
        return orm.world_public(self._get(World, world_id))

    @read
    def get_worlds(self, world_ids: Sequence[int]) -> list[WorldPublic]:
        # session.get, the ORM's load by primary key: the identity map lives for one request
        # and a request's ids are distinct, so each id costs one statement.
        return [orm.world_public(self._get(World, world_id)) for world_id in world_ids]

    @unit_of_work
    def update_worlds(self, new_numbers: Mapping[int, int]) -> list[WorldPublic]:
        worlds = [self._get(World, world_id) for world_id in new_numbers]
        for world in worlds:
            world.randomnumber = new_numbers[world.id]
        # The flush at commit sends the UPDATEs as one executemany, sorted by primary key.
        return [orm.world_public(world) for world in worlds]

    @read
    def list_fortunes(self) -> list[FortunePublic]:
        fortunes = self.session.scalars(select(Fortune))
        return [{"id": fortune.id, "message": fortune.message} for fortune in fortunes]

    def _get(self, model: type[Row], row_id: int) -> Row:
        row = self.session.get(model, row_id)
        if row is None:
            raise NotFound(model.__name__)
        return row

    def _add(self, row: Row) -> Row:
        self.session.add(row)
        self.session.flush()  # the INSERT, so a duplicate fails here, inside the operation
        return row

    def _update(self, model: type[Row], row_id: int, values: dict[str, Any]) -> Row:
        # One UPDATE ... RETURNING round trip instead of SELECT, UPDATE and a refresh.
        statement = update(model).where(model.id == row_id).values(values).returning(model)  # type: ignore[attr-defined]
        row = self.session.scalar(statement)
        if row is None:
            raise NotFound(model.__name__)
        return row

    def _delete(self, model: type[Base], row_id: int) -> None:
        result = self.session.execute(delete(model).where(model.id == row_id))  # type: ignore[attr-defined]
        if result.rowcount == 0:  # type: ignore[attr-defined]
            raise NotFound(model.__name__)


class OrmDatabase:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        executor: ThreadPoolExecutor,
        transaction: dict[str, Any],
        psycopg2: bool,
    ) -> None:
        self.sessions = sessions
        self.executor = executor
        self.transaction = transaction  # how a unit of work takes its connection
        self.psycopg2 = psycopg2

    def store(self) -> OrmStore:
        """One request's store. Its session needs no closing at the request's end: each
        operation gives its connection back when it ends (a read closes the session, a unit
        of work ends its transaction), and the session then holds at most the identity map
        of the request's last write."""
        return OrmStore(self.sessions(), self)

    def begin_writing(self, session: Session) -> None:
        """Give a unit of work's session its transaction (`orm.unit_of_work_options`)."""
        connection = session.connection(execution_options=self.transaction)
        if self.psycopg2:
            orm.psycopg2_begin(connection)

    def scalar(self, statement: Executable) -> Any:
        with self.sessions.begin() as session:  # as `read` does, and closed after
            return session.scalar(statement)

    def ping(self) -> None:
        self.scalar(text("SELECT 1"))


@asynccontextmanager
async def open_database(settings: Settings, url: str) -> AsyncIterator[OrmDatabase]:
    engine = create_engine(url, **orm.engine_options(settings, url))
    orm.hand_out_open_connections(engine.pool)
    psycopg2 = orm.driver_of(url) == "psycopg2"
    if psycopg2:
        orm.psycopg2_back_to_autocommit(engine.pool)
    orm.track_pool(engine.pool, settings)
    orm.cancel_on_disconnect(engine.pool)
    # Loaded attributes stay usable after commit: no refresh query to build the response.
    sessions = sessionmaker(engine, expire_on_commit=False)
    executor = ThreadPoolExecutor(settings.max_connections, thread_name_prefix="summary")
    try:
        transaction = orm.unit_of_work_options(settings, url)
        yield OrmDatabase(sessions, executor, transaction, psycopg2)
    finally:
        executor.shutdown(cancel_futures=True)
        engine.dispose()
