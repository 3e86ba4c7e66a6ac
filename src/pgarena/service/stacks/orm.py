"""What the two SQLAlchemy ORM modules (`orm_sync`, `orm_async`) share: engine options,
pool metrics and the statements themselves. Only how they are executed differs."""

from __future__ import annotations

from datetime import datetime
from typing import Any, TypeVar
from uuid import uuid4

from sqlalchemy import Connection, Select, event, func, make_url, select
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import joinedload
from sqlalchemy.pool import ConnectionPoolEntry, Pool

from pgarena.database.models import Base, Order, Product, User, World
from pgarena.service.limits import backend_pid, drop_backend, hold_backend
from pgarena.service.metrics import POOL_IN_USE, POOL_MAX
from pgarena.service.schemas import WorldPublic
from pgarena.service.stacks.connect import asyncpg_options, libpq_options
from pgarena.settings import Settings

Row = TypeVar("Row", bound=Base)


def driver_of(url: str) -> str:
    """The driver a SQLAlchemy URL names: `postgresql+psycopg2://...` -> "psycopg2"."""
    return make_url(url).get_driver_name()


def engine_options(settings: Settings, url: str) -> dict[str, Any]:
    """Pool settings for `create_engine` and `create_async_engine` alike."""
    options: dict[str, Any] = {
        "pool_size": settings.pool_size,
        "max_overflow": settings.max_overflow,
        "pool_timeout": settings.pool_timeout,
        # No pool_pre_ping: it costs a round trip per request; a connection broken by a
        # database restart fails one request (503) and is then replaced.
    }
    if autocommit(settings, url):
        options["isolation_level"] = "AUTOCOMMIT"
        # The rollback that ends every session is then a no-op, which the dialect skips.
        # Made, it is no free call: psycopg2 lets go of the GIL for it, and under 20 threads
        # the thread queues to take it back (`sync`, GET /db: 12.7 GIL releases and 25
        # context switches per request became 8.6 and 15, 1.10-1.14x the throughput in two
        # A/B runs); psycopg 3's async adapter awaits it on the event loop. A failed write
        # is out of autocommit: its rollback is still made.
        options["skip_autocommit_rollback"] = True
    # Statement and connect timeouts on every connection (connect.py).
    driver = driver_of(url)
    options["connect_args"] = (asyncpg_options if driver == "asyncpg" else libpq_options)(settings)
    if driver == "psycopg2":
        # psycopg2's executemany is one round trip per row; execute_batch sends the ORM's
        # flush of many UPDATEs (TechEmpower /updates) in pages of 100. asyncpg and
        # psycopg 3 batch executemany by themselves.
        options["executemany_mode"] = "values_plus_batch"
    if settings.transaction_pooler:
        options["connect_args"] |= pooler_connect_args(url)
    return options


def autocommit(settings: Settings, url: str) -> bool:
    """Whether the engine's connections run in autocommit, as the raw stacks' do.

    Then a read's statements go alone, with no BEGIN before and no COMMIT after: a read by
    primary key is one round trip instead of three. What a read gives up is one snapshot for
    all its statements: each sees the data as of its own start. Every read of this API is
    one statement, or several whose answers need no common snapshot (the user, then their
    orders; TechEmpower's independent rows). A unit of work that writes asks for its
    transaction (`unit_of_work_options`), and the pool puts the connection back in
    autocommit when it is returned: both switches are client-side settings, with no round
    trip, on every driver (on psycopg2 only through its own attribute: `psycopg2_begin`).

    One setup keeps the transaction per operation, reads included: asyncpg behind a
    transaction pooler. SQLAlchemy's dialect prepares each statement by name in one round
    trip and runs it in the next, and in autocommit the pooler may send the two to different
    backends ("prepared statement ... does not exist").
    """
    return not (settings.transaction_pooler and driver_of(url) == "asyncpg")


def unit_of_work_options(settings: Settings, url: str) -> dict[str, Any]:
    """How a unit of work that writes takes its connection (`Session.connection`): in a
    transaction at PostgreSQL's default level when the engine is in autocommit. psycopg2
    takes none: it switches with its own attribute (`psycopg2_begin`)."""
    if not autocommit(settings, url) or driver_of(url) == "psycopg2":
        return {}
    return {"isolation_level": "READ COMMITTED"}


def psycopg2_begin(connection: Connection) -> None:
    """Start a psycopg2 unit of work's transaction: the driver's `autocommit` attribute,
    set on the client, BEGIN going with the first statement as psycopg2 always sends it. The
    pool sets it back (`psycopg2_back_to_autocommit`).

    SQLAlchemy's own switch, the `isolation_level` the other drivers get, costs psycopg2 a
    round trip on every write but a connection's first: once a level has been named on a
    connection, psycopg2 sends `SET default_transaction_isolation TO DEFAULT` each time it
    leaves autocommit. An engine event could make the switch from an execution option, but
    any engine event sends every statement of the engine through SQLAlchemy's event
    dispatch: 8% more instructions per read (`benchmarks/instructions.py`, `sync`, `/db`).
    """
    connection.connection.dbapi_connection.autocommit = False  # type: ignore[union-attr]


def psycopg2_back_to_autocommit(pool: Pool) -> None:
    """Put a psycopg2 connection that a unit of work took out of autocommit back in it when
    the pool takes it back, on the client.

    A switch that fails as the pool takes a connection back is not caught: when an earlier
    design had SQLAlchemy send psycopg2's SET at checkin, a PostgreSQL restart gave a
    request that had its answer the driver's raw error (a 500) and the pool lost the
    connection. This one runs after the pool's rollback, out of any transaction, and skips
    a connection the driver has closed (`hand_out_open_connections` drops it): it cannot
    fail.
    """
    from psycopg2.extensions import TRANSACTION_STATUS_IDLE

    def checkin(dbapi_connection: Any, _: ConnectionPoolEntry) -> None:
        if (
            dbapi_connection is not None  # None: invalidated
            and not dbapi_connection.closed
            and not dbapi_connection.autocommit
            and dbapi_connection.get_transaction_status() == TRANSACTION_STATUS_IDLE
        ):
            dbapi_connection.autocommit = True

    event.listen(pool, "checkin", checkin)


def pooler_connect_args(url: str) -> dict[str, Any]:
    """Driver options for a pooler in transaction mode (PgBouncer), where the next
    transaction may run on another backend: no prepared statement may be reused by name.

    psycopg 3: never prepare (`prepare_threshold=None`). asyncpg through SQLAlchemy, as its
    documentation says for PgBouncer: no statement caches (asyncpg's and the dialect's), and
    a unique name for the statements the dialect still prepares, so that two clients never
    meet each other's on a shared backend. psycopg2 prepares nothing.
    """
    if driver_of(url) == "psycopg":
        return {"prepare_threshold": None}
    if driver_of(url) == "asyncpg":
        return {
            "statement_cache_size": 0,
            "prepared_statement_cache_size": 0,
            "prepared_statement_name_func": lambda: f"__asyncpg_{uuid4()}__",
        }
    return {}


def is_closed(connection: Any) -> bool:
    """Whether the driver already knows `connection` is closed: no round trip. SQLAlchemy's
    asyncio adapters wrap the driver's connection (`driver_connection`)."""
    driver = getattr(connection, "driver_connection", connection)
    if driver is None:  # an adapter whose connection is gone
        return True
    if hasattr(driver, "is_closed"):  # asyncpg
        return bool(driver.is_closed())
    return bool(driver.closed)  # psycopg2 (a number), psycopg 3


def hand_out_open_connections(pool: Pool) -> None:
    """Never hand out a connection its driver knows is closed: the pool drops it and opens
    another (SQLAlchemy retries a checkout that raises `DisconnectionError`).

    A driver marks a connection closed when it sees its socket fail, and SQLAlchemy does not
    always learn of it. Handed out, the connection would fail its first statement, wrapped
    by SQLAlchemy and answered 503; a unit of work first switches it out of autocommit
    (`unit_of_work_options`), and that switch raises the driver's own error, which
    SQLAlchemy does not wrap: a 500. Checked here, it costs one attribute read and no request
    fails.
    """

    def checkout(dbapi_connection: Any, *_: Any) -> None:
        if is_closed(dbapi_connection):
            raise DisconnectionError("the driver closed this connection")

    # First among the checkout listeners: the others count a connection that is handed out.
    event.listen(pool, "checkout", checkout, insert=True)


def track_pool(pool: Pool, settings: Settings) -> None:
    """Keep the pool gauges of /metrics current through the pool's own events."""
    POOL_MAX.set(settings.max_connections)
    event.listen(pool, "checkout", lambda *_: POOL_IN_USE.inc())
    event.listen(pool, "checkin", lambda *_: POOL_IN_USE.dec())


def cancel_on_disconnect(pool: Pool) -> None:
    """Tell the request limits which connection a request holds, so a request whose client
    went away gets its statement cancelled (see `service/limits.py`)."""

    def checkout(dbapi_connection: Any, record: ConnectionPoolEntry, *_: Any) -> None:
        record.info["pid"] = pid = backend_pid(dbapi_connection)
        hold_backend(pid)

    def checkin(dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        # An invalidated connection comes back as None: the pid was noted at checkout.
        if "pid" in record.info:
            drop_backend(record.info["pid"])

    event.listen(pool, "checkout", checkout)
    event.listen(pool, "checkin", checkin)


def order_with_relations() -> Select[tuple[Order]]:
    # joinedload, not selectinload: both relations are many-to-one, so a JOIN fetches the
    # order, its user and its product in one round trip instead of three.
    return select(Order).options(joinedload(Order.user), joinedload(Order.product))


def top_products(limit: int, since: datetime | None) -> Select[Any]:
    """Revenue and order count per product, joined and aggregated in PostgreSQL."""
    revenue = func.sum(Order.quantity * Order.unit_price).label("revenue")
    statement = (
        select(
            Product.id.label("product_id"),
            Product.name,
            Product.sku,
            func.count(Order.id).label("orders"),
            func.sum(Order.quantity).label("units"),
            revenue,
        )
        .join(Order, Order.product_id == Product.id)
        .group_by(Product.id)
        .order_by(revenue.desc(), Product.id)
        .limit(limit)
    )
    if since is not None:
        statement = statement.where(Order.created_at >= since)
    return statement


# The four independent figures of GET /reports/summary, each run on its own connection.
SUMMARY = (
    select(func.count()).select_from(User),
    select(func.count()).select_from(Product),
    select(func.count()).select_from(Order),
    select(func.coalesce(func.sum(Order.quantity * Order.unit_price), 0)),
)


def world_public(world: World) -> WorldPublic:
    return {"id": world.id, "randomNumber": world.randomnumber}
