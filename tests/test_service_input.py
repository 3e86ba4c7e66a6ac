"""Bad input: what PostgreSQL cannot store and bodies too large to parse, on every stack;
prices and integers in forms the schema does not allow, 405s and an OpenAPI document that
lists every status a route can answer, on one (validation and routing are shared)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import psycopg
import pytest
from fastapi.testclient import TestClient
from psycopg import sql

from pgarena.database import drop_database
from pgarena.database.urls import with_database
from pgarena.service.app import create_app
from pgarena.service.stacks import STACKS
from pgarena.settings import Settings

JSON = {"content-type": "application/json"}


@pytest.fixture(scope="module", params=list(STACKS))
def client(
    request: pytest.FixtureRequest, postgres_url: str, template_database: str
) -> Iterator[TestClient]:
    """One app per stack for the whole module, on a database of its own: every test here
    expects its input refused, so they cannot disturb each other."""
    name = f"test_input_{os.getpid()}_{request.param.replace('-', '_')}"
    drop_database(postgres_url, name)
    with psycopg.connect(postgres_url, autocommit=True) as connection:
        connection.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(name), sql.Identifier(template_database)
            )
        )
    app = create_app(Settings(database_url=with_database(postgres_url, name), stack=request.param))
    try:
        with TestClient(app) as test_client:
            yield test_client
    finally:
        drop_database(postgres_url, name)


def product(**fields: str) -> str:
    """A product body as raw JSON text, so it can carry escapes Python's json would fix."""
    body = {"name": '"Widget"', "price": '"1.00"', "sku": '"W-1"', **fields}
    return "{" + ", ".join(f'"{key}": {value}' for key, value in body.items()) + "}"


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("name", r'"a\u0000b"', "must not contain NUL characters"),
        ("name", r'"a\ud800b"', "must not contain unpaired surrogates"),
        ("description", r'"x\udfffy"', "must not contain unpaired surrogates"),
        ("description", r'"\u0000"', "must not contain NUL characters"),
    ],
)
def test_text_postgresql_cannot_store_is_422_naming_the_field(
    client: TestClient, field: str, value: str, message: str
) -> None:
    response = client.post("/products/", content=product(**{field: value}), headers=JSON)
    assert response.status_code == 422
    (error,) = response.json()["detail"]
    assert error["loc"] == ["body", field]
    assert message in error["msg"]


@pytest.mark.parametrize("email", [r'"a\u0000@example.com"', r'"a\ud800@example.com"'])
def test_bad_characters_in_an_email_are_422(client: TestClient, email: str) -> None:
    body = '{"username": "alice", "email": ' + email + "}"
    response = client.post("/users/", content=body, headers=JSON)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "email"]


@pytest.mark.parametrize("client", ["async"], indirect=True)  # validation: no driver involved
def test_prices_outside_the_schema_are_422_and_negative_zero_is_zero(client: TestClient) -> None:
    for price in ['"-0.00"', '""', '"1e2"', '" 5"', '"+1"', "-0.01", "0.001"]:
        response = client.post("/products/", content=product(price=price), headers=JSON)
        assert response.status_code == 422, price
        assert response.json()["detail"][0]["loc"] == ["body", "price"]
    zero = client.post("/products/", content=product(price="-0.0", sku='"ZERO"'), headers=JSON)
    assert zero.status_code == 200
    assert zero.json()["price"] == "0.00"


@pytest.mark.parametrize("client", ["async"], indirect=True)  # validation: no driver involved
def test_body_integers_must_be_json_integers(client: TestClient) -> None:
    as_text = client.post("/orders/", json={"user_id": "1", "product_id": 1, "quantity": 1})
    assert as_text.status_code == 422
    assert as_text.json()["detail"][0]["loc"] == ["body", "user_id"]
    # 2.0 is an integer to JSON Schema: accepted (here: no such user, so 404).
    as_float = client.post("/orders/", json={"user_id": 99, "product_id": 1, "quantity": 2.0})
    assert as_float.status_code == 404


def test_a_body_over_1_mib_is_413_before_it_is_parsed(client: TestClient) -> None:
    two_mib = product(name='"' + "x" * (2 * 1024 * 1024) + '"')
    response = client.post("/products/", content=two_mib, headers=JSON)
    assert (response.status_code, response.json()) == (413, {"detail": "Request body too large"})
    # Streamed without a Content-Length: counted as it arrives.
    chunks = iter([b'{"name": "', b"x" * (2 * 1024 * 1024), b'"}'])
    streamed = client.post("/products/", content=chunks, headers=JSON)
    assert streamed.status_code == 413
    stored = client.get("/products/?limit=1000").json()
    assert all(p["sku"] == "ZERO" for p in stored)  # none of the large bodies went in


@pytest.mark.parametrize("client", ["async"], indirect=True)  # validation: no driver involved
def test_method_not_allowed_lists_every_method_of_the_path(client: TestClient) -> None:
    response = client.patch("/users/1", json={})
    assert response.status_code == 405
    assert response.headers["allow"] == "DELETE, GET, PUT"
    assert client.request("OPTIONS", "/users/").headers["allow"] == "GET, POST"


@pytest.mark.parametrize("client", ["async"], indirect=True)  # validation: no driver involved
def test_openapi_lists_every_status_a_route_answers(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert set(paths["/users/{user_id}"]["put"]["responses"]) == {
        "200", "400", "404", "409", "413", "422", "503",
    }  # fmt: skip
    assert set(paths["/users/"]["get"]["responses"]) == {"200", "413", "422", "503"}
    assert set(paths["/db"]["get"]["responses"]) == {"200", "413", "503"}
    assert "409" in paths["/products/{product_id}"]["delete"]["responses"]
    assert "409" not in paths["/users/{user_id}"]["delete"]["responses"]
    assert "404" in paths["/orders/"]["post"]["responses"]
    assert list(paths["/plaintext"]["get"]["responses"]["200"]["content"]) == ["text/plain"]
