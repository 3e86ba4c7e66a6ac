"""The users, products, orders and reports API, one test body run on every stack."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import psycopg
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event

from pgarena.service.app import create_app
from pgarena.service.stacks import STACKS
from pgarena.settings import Settings


@pytest.fixture(params=list(STACKS))
def client(request: pytest.FixtureRequest, database_url: str) -> Iterator[TestClient]:
    app = create_app(Settings(database_url=database_url, stack=request.param))
    with TestClient(app) as test_client:
        yield test_client


def new_user(client: TestClient, name: str = "alice") -> dict:
    response = client.post("/users/", json={"username": name, "email": f"{name}@example.com"})
    assert response.status_code == 200, response.text
    return response.json()


def new_product(client: TestClient, sku: str = "W-1", price: str = "19.99") -> dict:
    body = {"name": "Widget", "description": "A widget", "price": price, "sku": sku}
    response = client.post("/products/", json=body)
    assert response.status_code == 200, response.text
    return response.json()


def new_order(client: TestClient, user_id: int, product_id: int, quantity: int = 2) -> dict:
    body = {"user_id": user_id, "product_id": product_id, "quantity": quantity}
    response = client.post("/orders/", json=body)
    assert response.status_code == 200, response.text
    return response.json()


# Users


def test_created_user_can_be_read_back(client: TestClient) -> None:
    user = new_user(client)
    assert user == {"id": user["id"], "username": "alice", "email": "alice@example.com"}
    assert client.get(f"/users/{user['id']}").json() == user


def test_unknown_user_is_404_with_plain_message(client: TestClient) -> None:
    response = client.get("/users/12345")
    assert response.status_code == 404
    assert response.json() == {"detail": "User not found"}


def test_duplicate_username_is_409_on_every_stack(client: TestClient) -> None:
    new_user(client, "alice")
    response = client.post("/users/", json={"username": "alice", "email": "other@example.com"})
    assert response.status_code == 409
    assert response.json() == {"detail": "Username already taken"}


def test_duplicate_email_is_409(client: TestClient) -> None:
    new_user(client, "alice")
    response = client.post("/users/", json={"username": "bob", "email": "alice@example.com"})
    assert response.status_code == 409
    assert response.json() == {"detail": "Email already taken"}


@pytest.mark.parametrize(
    "body",
    [
        {"username": "al", "email": "al@example.com"},  # too short
        {"username": "a" * 51, "email": "long@example.com"},  # too long
        {"username": "bad name!", "email": "bad@example.com"},  # forbidden characters
        {"username": "carol", "email": "not-an-email"},
        {"username": "carol"},
        {},
    ],
)
def test_invalid_user_is_422(client: TestClient, body: dict) -> None:
    response = client.post("/users/", json=body)
    assert response.status_code == 422
    assert client.get("/users/").json() == []


def test_user_list_is_ordered_by_id_and_paginated(client: TestClient) -> None:
    users = [new_user(client, f"user{n:02}") for n in range(12)]
    assert client.get("/users/").json() == users[:10]  # default limit is 10
    assert client.get("/users/?skip=10&limit=5").json() == users[10:]
    assert client.get("/users/?skip=3&limit=2").json() == users[3:5]


@pytest.mark.parametrize("query", ["limit=0", "limit=1001", "skip=-1", "limit=ten"])
def test_bad_pagination_is_422(client: TestClient, query: str) -> None:
    assert client.get(f"/users/?{query}").status_code == 422


def test_update_user_replaces_fields(client: TestClient) -> None:
    user = new_user(client)
    body = {"username": "alice2", "email": "alice2@example.com"}
    response = client.put(f"/users/{user['id']}", json=body)
    assert response.status_code == 200
    assert response.json() == {"id": user["id"], **body}
    assert client.get(f"/users/{user['id']}").json() == {"id": user["id"], **body}


def test_update_user_errors(client: TestClient) -> None:
    alice, bob = new_user(client, "alice"), new_user(client, "bob")
    taken = {"username": "bob", "email": "alice@example.com"}
    assert client.put(f"/users/{alice['id']}", json=taken).status_code == 409
    assert client.get(f"/users/{alice['id']}").json() == alice  # unchanged
    missing = client.put("/users/999", json={"username": "zed", "email": "zed@example.com"})
    assert (missing.status_code, missing.json()) == (404, {"detail": "User not found"})
    bad = client.put(f"/users/{bob['id']}", json={"username": "x", "email": "x@example.com"})
    assert bad.status_code == 422


def test_delete_user_then_it_is_gone(client: TestClient) -> None:
    user = new_user(client)
    response = client.delete(f"/users/{user['id']}")
    assert (response.status_code, response.json()) == (200, {"message": "User deleted"})
    assert client.get(f"/users/{user['id']}").status_code == 404
    assert client.delete(f"/users/{user['id']}").status_code == 404


@pytest.mark.parametrize("path", ["/users/0", "/users/-1", "/users/2147483648", "/users/abc"])
def test_ids_outside_the_integer_range_are_422_not_500(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 422


# Products


def test_product_prices_are_exact_decimals(client: TestClient) -> None:
    product = new_product(client, price="0.10")
    assert product["price"] == "0.10"
    again = client.get(f"/products/{product['id']}").json()
    assert again == product
    assert Decimal(again["price"]) * 3 == Decimal("0.30")


@pytest.mark.parametrize("price", ["-1", "1.234", "abc", "12345678901.00"])
def test_invalid_price_is_422(client: TestClient, price: str) -> None:
    body = {"name": "Widget", "price": price, "sku": "W-1"}
    assert client.post("/products/", json=body).status_code == 422


def test_product_crud(client: TestClient) -> None:
    product = new_product(client, sku="W-1")
    new_product(client, sku="W-2")
    duplicate = client.post("/products/", json={"name": "Other", "price": "1", "sku": "W-1"})
    assert (duplicate.status_code, duplicate.json()) == (409, {"detail": "SKU already taken"})
    assert [p["sku"] for p in client.get("/products/").json()] == ["W-1", "W-2"]
    body = {"name": "Gadget", "description": None, "price": "5.00", "sku": "G-1"}
    updated = client.put(f"/products/{product['id']}", json=body)
    assert updated.json() == {"id": product["id"], **body}
    taken = client.put(f"/products/{product['id']}", json={**body, "sku": "W-2"})
    assert taken.status_code == 409
    assert client.delete(f"/products/{product['id']}").json() == {"message": "Product deleted"}
    assert client.get(f"/products/{product['id']}").json() == {"detail": "Product not found"}


# Orders


def test_order_embeds_user_and_product_and_totals(client: TestClient) -> None:
    user, product = new_user(client), new_product(client, price="19.99")
    order = new_order(client, user["id"], product["id"], quantity=3)
    assert order["user"] == user
    assert order["product"] == product
    assert (order["quantity"], order["unit_price"], order["total"]) == (3, "19.99", "59.97")
    assert client.get(f"/orders/{order['id']}").json() == order


def test_order_for_unknown_user_or_product_is_404_not_a_foreign_key_error(
    client: TestClient,
) -> None:
    user, product = new_user(client), new_product(client)
    no_user = client.post(
        "/orders/", json={"user_id": 999, "product_id": product["id"], "quantity": 1}
    )
    assert (no_user.status_code, no_user.json()) == (404, {"detail": "User not found"})
    no_product = client.post(
        "/orders/", json={"user_id": user["id"], "product_id": 999, "quantity": 1}
    )
    assert (no_product.status_code, no_product.json()) == (404, {"detail": "Product not found"})
    assert client.get("/orders/1").status_code == 404


@pytest.mark.parametrize("quantity", [0, -1, "two"])
def test_order_quantity_must_be_positive(client: TestClient, quantity: object) -> None:
    user, product = new_user(client), new_product(client)
    body = {"user_id": user["id"], "product_id": product["id"], "quantity": quantity}
    assert client.post("/orders/", json=body).status_code == 422


def test_user_orders_lists_only_that_users_orders(client: TestClient) -> None:
    alice, bob, product = new_user(client, "alice"), new_user(client, "bob"), new_product(client)
    first = new_order(client, alice["id"], product["id"])
    new_order(client, bob["id"], product["id"])
    second = new_order(client, alice["id"], product["id"], quantity=5)
    assert client.get(f"/users/{alice['id']}/orders").json() == [first, second]
    assert client.get(f"/users/{alice['id']}/orders?skip=1").json() == [second]
    assert client.get("/users/999/orders").json() == {"detail": "User not found"}


def test_deleting_a_user_deletes_their_orders_but_a_sold_product_stays(
    client: TestClient,
) -> None:
    user, product = new_user(client), new_product(client)
    order = new_order(client, user["id"], product["id"])
    sold = client.delete(f"/products/{product['id']}")
    assert (sold.status_code, sold.json()) == (409, {"detail": "Product has orders"})
    assert client.delete(f"/users/{user['id']}").status_code == 200
    assert client.get(f"/orders/{order['id']}").status_code == 404
    assert client.delete(f"/products/{product['id']}").status_code == 200


# Reports


def test_top_products_aggregates_revenue_in_sql(client: TestClient) -> None:
    alice, bob = new_user(client, "alice"), new_user(client, "bob")
    cheap, dear = new_product(client, "CHEAP", "2.50"), new_product(client, "DEAR", "100.00")
    new_order(client, alice["id"], cheap["id"], quantity=4)  # 10.00
    new_order(client, bob["id"], cheap["id"], quantity=2)  # 5.00
    new_order(client, bob["id"], dear["id"], quantity=1)  # 100.00
    report = client.get("/reports/top-products").json()
    assert report == [
        {"product_id": dear["id"], "name": "Widget", "sku": "DEAR", "orders": 1, "units": 1,
         "revenue": "100.00"},
        {"product_id": cheap["id"], "name": "Widget", "sku": "CHEAP", "orders": 2, "units": 6,
         "revenue": "15.00"},
    ]  # fmt: skip
    assert client.get("/reports/top-products?limit=1").json() == report[:1]
    assert client.get("/reports/top-products?since=2999-01-01T00:00:00Z").json() == []
    assert client.get("/reports/top-products?limit=0").status_code == 422


def test_summary_counts_every_table(client: TestClient) -> None:
    user, product = new_user(client), new_product(client, price="3.00")
    new_order(client, user["id"], product["id"], quantity=3)
    new_user(client, "bob")
    summary = client.get("/reports/summary").json()
    assert summary == {"users": 2, "products": 1, "orders": 1, "revenue": "9.00"}


def test_slow_endpoint_waits_in_postgres(client: TestClient) -> None:
    assert client.get("/slow?ms=20").json() == {"slept_ms": 20}
    assert client.get("/slow?ms=-1").status_code == 422


# Operations


def test_health_is_ok_when_database_answers(client: TestClient) -> None:
    response = client.get("/health")
    assert (response.status_code, response.json()) == (200, {"status": "ok"})


def test_metrics_count_users_requests_and_pool(client: TestClient) -> None:
    def metric(text: str, prefix: str) -> float:
        lines = [line for line in text.splitlines() if line.startswith(prefix)]
        return sum(float(line.rsplit(" ", 1)[1]) for line in lines)

    before = client.get("/metrics").text
    new_user(client, "alice")
    new_user(client, "bob")
    client.get("/users/1")
    after = client.get("/metrics").text
    assert metric(after, "users_created_total") - metric(before, "users_created_total") == 2
    by_template = 'http_requests_total{method="GET",route="/users/{user_id}",status="200"}'
    assert metric(after, by_template) - metric(before, by_template) == 1
    assert metric(after, 'http_request_duration_seconds_count{method="POST",route="/users/"') >= 2
    assert metric(after, "db_pool_max_connections") == 20  # a pool of 20, no overflow
    assert "db_pool_connections_in_use" in after


def test_openapi_docs_are_served(client: TestClient) -> None:
    assert client.get("/docs").status_code == 200
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/users/", "/users/{user_id}", "/orders/", "/reports/top-products"} <= set(paths)


# Connections


def test_every_connection_a_stack_opens_carries_its_name(
    client: TestClient, database_url: str
) -> None:
    assert client.get("/db").status_code == 200
    assert client.get("/health").status_code == 200  # the control connection, too
    stack = client.app.state.settings.stack
    with psycopg.connect(database_url, autocommit=True) as connection:
        names = connection.execute(
            "SELECT application_name, count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid() "
            "AND backend_type = 'client backend' GROUP BY 1"
        ).fetchall()
    assert dict(names).keys() == {f"pgarena-{stack}"}  # pg_stat_activity says whose
    assert dict(names)[f"pgarena-{stack}"] >= 2  # a pooled connection and the control one


@pytest.mark.parametrize(
    "path",
    [
        "/users/{id}",
        "/users/{id}/orders",
        "/reports/summary",
        "/db",
        "/queries?queries=3",
        "/fortunes",
    ],
)
def test_a_read_sends_its_statements_alone_with_no_begin_or_commit(
    client: TestClient, database_url: str, path: str
) -> None:
    # A transaction around a read adds a BEGIN and a COMMIT round trip and changes nothing
    # in what it answers. The connection the read used is the one whose state changed last;
    # its last statement is the read's own, not a COMMIT (or a ROLLBACK on its way back).
    # A connection a pool opened for the read but did not use has sent nothing: it is left
    # out.
    user = new_user(client)
    assert client.get(path.format(id=user["id"])).status_code == 200
    with psycopg.connect(database_url, autocommit=True) as connection:
        (last,) = connection.execute(
            "SELECT query FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid() "
            "AND backend_type = 'client backend' AND query <> '' "
            "ORDER BY state_change DESC LIMIT 1"
        ).fetchone()
    assert last.split(None, 1)[0].upper() == "SELECT", last


@pytest.mark.parametrize("stack", list(STACKS))
def test_a_write_sends_its_statement_in_one_transaction_and_nothing_more(
    database_url: str, stack: str
) -> None:
    # Each write of an ORM stack is BEGIN, its INSERT and COMMIT; a raw stack's, its INSERT
    # alone (one statement in autocommit). Nothing else: no switch of the session's
    # isolation level, which psycopg2 sends as a SET of its own on every write but a
    # connection's first once SQLAlchemy names a level. One pooled connection, so that the
    # writes follow each other on it.
    app = create_app(Settings(database_url=database_url, stack=stack, pool_size=1))
    with TestClient(app) as client, psycopg.connect(database_url, autocommit=True) as observer:
        if observer.execute("SELECT to_regclass('pg_stat_statements')").fetchone() == (None,):
            pytest.skip("pg_stat_statements is not installed in this database")
        new_user(client, "first")  # the connection's first write, and its opening
        observer.execute("SELECT pg_stat_statements_reset()")
        for name in ("second", "third", "fourth"):
            new_user(client, name)
        calls = observer.execute(
            "SELECT split_part(upper(query), ' ', 1), sum(calls) FROM pg_stat_statements "
            "WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) "
            "AND query NOT LIKE '%pg_stat_statements%' GROUP BY 1"
        ).fetchall()
    expected = {"INSERT": 3} if stack.endswith("-raw") else {"BEGIN": 3, "INSERT": 3, "COMMIT": 3}
    assert dict(calls) == expected


@pytest.mark.parametrize("stack", ["sync", "sync-psycopg3", "async", "async-psycopg3"])
def test_reads_skip_the_rollback_autocommit_makes_a_no_op_and_a_failed_write_still_rolls_back(
    database_url: str, stack: str
) -> None:
    # A read's session ends with a rollback that autocommit makes a no-op, and the engines
    # skip it (`orm.engine_options`): psycopg2 lets go of the GIL even for that one. A write
    # whose statement fails is in a transaction, out of autocommit, and must still be rolled
    # back for real, or the pool's one connection would refuse every statement after it.
    app = create_app(Settings(database_url=database_url, stack=stack, pool_size=1))
    with TestClient(app) as client, psycopg.connect(database_url, autocommit=True) as observer:
        engine = app.state.database.sessions.kw["bind"]
        assert getattr(engine, "sync_engine", engine).dialect.skip_autocommit_rollback
        user = new_user(client)
        duplicate = {"username": user["username"], "email": "other@example.com"}
        assert client.post("/users/", json=duplicate).status_code == 409
        states = observer.execute(
            "SELECT DISTINCT state FROM pg_stat_activity WHERE application_name = %s",
            [f"pgarena-{stack}"],
        ).fetchall()
        assert states == [("idle",)]  # not "idle in transaction (aborted)"
        assert client.get(f"/users/{user['id']}").json() == user
        assert new_user(client, "bob")["username"] == "bob"


@pytest.mark.parametrize("stack", ["sync", "sync-psycopg3", "async", "async-psycopg3"])
def test_a_pooled_connection_its_driver_knows_is_closed_is_replaced_not_handed_out(
    database_url: str, stack: str
) -> None:
    # A driver marks a connection closed when it sees its socket fail. Handed out again, it
    # fails the next request: a read with a 503, a write with a 500, as the switch out of
    # autocommit raises the driver's own error, which SQLAlchemy does not wrap. The pool
    # must open another instead.
    app = create_app(Settings(database_url=database_url, stack=stack, pool_size=1))
    with TestClient(app) as client:
        engine = app.state.database.sessions.kw["bind"]
        pool = getattr(engine, "sync_engine", engine).pool
        returned: list = []
        event.listen(pool, "checkin", lambda connection, _: returned.append(connection))

        def close_the_pooled_connection() -> None:
            driver = getattr(returned[-1], "driver_connection", returned[-1])
            if hasattr(driver, "terminate"):  # asyncpg
                driver.terminate()
            elif hasattr(driver, "pgconn"):  # psycopg 3: closed where no loop awaits it
                driver.pgconn.finish()
            else:  # psycopg2
                driver.close()

        assert client.get("/db").status_code == 200
        close_the_pooled_connection()
        assert client.get("/db").status_code == 200
        close_the_pooled_connection()
        user = new_user(client)
        assert client.get(f"/users/{user['id']}").json() == user
