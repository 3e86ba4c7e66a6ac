"""The API on a sync stack: `async def` endpoints that hand their one blocking call, the
store's, to FastAPI's thread pool (`await run_in_threadpool(db.get_user, user_id)`).

Read it side by side with `async_api.py`: each endpoint is the same but for that call.
Everything else (parsing, validation, the response) stays on the event loop, so a request
takes one thread hop, where plain `def` endpoints, as sync FastAPI services are usually
written, take two: FastAPI runs a `def` endpoint on the pool and then validates its returned
model (`-> UserPublic`) on the pool again (`serialize_response` in `fastapi/routing.py`).
That second hop was 13% of the server's CPU per request on the `sync` stack's
`GET /users/{id}` under wrk at 50 clients (0.87x without it, 0.80-0.99 in 10 alternating
rounds), and throughput rose 1.15x without it. The usual tutorial's `def` generator dependency
(`with Session() as session: yield session`) adds two more, entered on one pool thread and
exited on another; the store dependency here is `async def` and returns at once (it does no
I/O, so it has no reason to leave the event loop).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response

from pgarena.service.metrics import USERS_CREATED
from pgarena.service.routes import techempower as tfb
from pgarena.service.schemas import (
    IdPath,
    Limit,
    Message,
    OrderIn,
    OrderPublic,
    ProductIn,
    ProductPublic,
    Since,
    Skip,
    Slept,
    StoreSummary,
    TopProduct,
    UserIn,
    UserPublic,
    WorldPublic,
)
from pgarena.service.stacks.interface import SyncDatabase, SyncStore

router = APIRouter()


def store_of(request: Request) -> SyncStore:
    """The request's store, from the database the lifespan opened."""
    database: SyncDatabase = request.app.state.database
    return database.store()


async def get_store(request: Request) -> SyncStore:
    """`store_of` as a dependency: the `Store` parameter of the API's routes. `async def` on
    purpose: a `def` dependency would take a thread for a call that never blocks."""
    return store_of(request)


Store = Annotated[SyncStore, Depends(get_store)]


# The TechEmpower database types first: the router tries routes in order, and these are
# the hot paths of a benchmark (see `pgarena.service.app` for the order of the routers).
# They take the request and read its store with `store_of` instead of the `Store`
# dependency: FastAPI's resolution of it was 73,000 of the 834,000 instructions a `/db`
# request cost async-raw (`benchmarks/instructions.py`), on every request of the paths a
# benchmark repeats most. The rest of the API keeps the dependency, as FastAPI code is
# usually written.


@router.get("/db", tags=["techempower"], response_model=WorldPublic)
async def single_query(request: Request) -> Response:
    """One random `world` row."""
    db = store_of(request)
    return tfb.json_response(await run_in_threadpool(db.get_world, tfb.random_id()))


@router.get("/queries", tags=["techempower"], response_model=list[WorldPublic])
async def multiple_queries(request: Request, queries: str | None = None) -> Response:
    """`queries` random `world` rows (1..500, leniently parsed), one statement each."""
    db = store_of(request)
    return tfb.json_response(await run_in_threadpool(db.get_worlds, tfb.random_ids(queries)))


@router.get("/updates", tags=["techempower"], response_model=list[WorldPublic])
async def updates(request: Request, queries: str | None = None) -> Response:
    """`queries` random `world` rows, each given and stored a new random number."""
    db = store_of(request)
    return tfb.json_response(
        await run_in_threadpool(db.update_worlds, tfb.new_random_numbers(queries))
    )


@router.get("/fortunes", tags=["techempower"], response_class=HTMLResponse)
async def fortunes(request: Request) -> HTMLResponse:
    """Every fortune plus one added at request time, sorted by message, as HTML."""
    db = store_of(request)
    return tfb.fortunes_page(await run_in_threadpool(db.list_fortunes))


@router.post("/users/", tags=["users"])
async def create_user(user: UserIn, db: Store) -> UserPublic:
    created = await run_in_threadpool(db.create_user, user)
    USERS_CREATED.inc()
    return created


@router.get("/users/", tags=["users"])
async def list_users(db: Store, skip: Skip = 0, limit: Limit = 10) -> Sequence[UserPublic]:
    return await run_in_threadpool(db.list_users, skip, limit)


@router.get("/users/{user_id}", tags=["users"])
async def get_user(user_id: IdPath, db: Store) -> UserPublic:
    return await run_in_threadpool(db.get_user, user_id)


@router.put("/users/{user_id}", tags=["users"])
async def update_user(user_id: IdPath, user: UserIn, db: Store) -> UserPublic:
    return await run_in_threadpool(db.update_user, user_id, user)


@router.delete("/users/{user_id}", tags=["users"])
async def delete_user(user_id: IdPath, db: Store) -> Message:
    await run_in_threadpool(db.delete_user, user_id)
    return Message(message="User deleted")


@router.get("/users/{user_id}/orders", tags=["orders"])
async def list_user_orders(
    user_id: IdPath, db: Store, skip: Skip = 0, limit: Limit = 10
) -> Sequence[OrderPublic]:
    return await run_in_threadpool(db.list_user_orders, user_id, skip, limit)


@router.post("/products/", tags=["products"])
async def create_product(product: ProductIn, db: Store) -> ProductPublic:
    return await run_in_threadpool(db.create_product, product)


@router.get("/products/", tags=["products"])
async def list_products(db: Store, skip: Skip = 0, limit: Limit = 10) -> Sequence[ProductPublic]:
    return await run_in_threadpool(db.list_products, skip, limit)


@router.get("/products/{product_id}", tags=["products"])
async def get_product(product_id: IdPath, db: Store) -> ProductPublic:
    return await run_in_threadpool(db.get_product, product_id)


@router.put("/products/{product_id}", tags=["products"])
async def update_product(product_id: IdPath, product: ProductIn, db: Store) -> ProductPublic:
    return await run_in_threadpool(db.update_product, product_id, product)


@router.delete("/products/{product_id}", tags=["products"])
async def delete_product(product_id: IdPath, db: Store) -> Message:
    await run_in_threadpool(db.delete_product, product_id)
    return Message(message="Product deleted")


@router.post("/orders/", tags=["orders"])
async def create_order(order: OrderIn, db: Store) -> OrderPublic:
    return await run_in_threadpool(db.create_order, order)


@router.get("/orders/{order_id}", tags=["orders"])
async def get_order(order_id: IdPath, db: Store) -> OrderPublic:
    return await run_in_threadpool(db.get_order, order_id)


@router.get("/reports/top-products", tags=["reports"])
async def top_products(
    db: Store,
    limit: Annotated[int, Query(ge=1, le=100)] = 10,
    since: Since = None,
) -> Sequence[TopProduct]:
    return await run_in_threadpool(db.top_products, limit, since)


@router.get("/reports/summary", tags=["reports"])
async def summary(db: Store) -> StoreSummary:
    return await run_in_threadpool(db.summary)


@router.get("/slow", tags=["benchmark"])
async def slow(db: Store, ms: Annotated[int, Query(ge=0, le=10_000)] = 50) -> Slept:
    """Hold a connection while PostgreSQL sleeps: the regime where async is said to win."""
    await run_in_threadpool(db.sleep, ms / 1000)
    return Slept(slept_ms=ms)
