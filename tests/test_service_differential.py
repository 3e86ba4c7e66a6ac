"""Differential test: every stack answers the same random API session identically.

A seeded generator produces a few hundred calls (creates, reads, updates, deletes, orders,
duplicates, bad input). Each stack replays them on a fresh database; the transcripts of
status codes and bodies must be equal. Timestamps are the only values that may differ
between runs, so they are checked for shape and then masked.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient

from pgarena.service.app import create_app
from pgarena.service.stacks import STACKS
from pgarena.settings import Settings

CALLS = 400
Call = tuple[str, str, dict[str, Any] | None]


def random_session(seed: int, calls: int = CALLS) -> list[Call]:
    """The calls a (rather chaotic) client makes: hits, misses, duplicates, conflicts and
    bad input all happen often."""
    rng = random.Random(seed)
    names = [f"user{n}" for n in range(40)]
    skus = [f"SKU-{n}" for n in range(40)]
    # Every insert that reaches PostgreSQL takes an id, even when it then fails, so the ids
    # in use lie within the number of inserts attempted so far.
    attempts = {"users": 0, "products": 0, "orders": 0}

    def user_body() -> dict[str, Any]:
        name = rng.choice(names)
        email = f"{rng.choice(names)}@example.com"
        return rng.choice(
            [{"username": name, "email": email}] * 6
            + [{"username": "x", "email": email}, {"username": name, "email": "nope"}, {}]
        )

    def product_body() -> dict[str, Any]:
        price = rng.choice(["0.00", "1.50", "19.99", "250", 3, 7, 12, "0.99", "-1", "1.001"])
        return {"name": f"Thing {rng.randint(1, 9)}", "description": rng.choice([None, "nice"]),
                "price": price, "sku": rng.choice(skus)}  # fmt: skip

    def create(table: str, body: dict[str, Any]) -> Call:
        attempts[table] += 1
        return ("POST", f"/{table}/", body)

    def some_id(table: str) -> int:
        return rng.randint(1, max(1, attempts[table]) + rng.choice([0, 0, 0, 3]))

    makers = [
        (5, lambda: create("users", user_body())),
        (4, lambda: ("GET", f"/users/{some_id('users')}", None)),
        (2, lambda: ("GET", f"/users/?skip={rng.randint(0, 5)}&limit={rng.randint(0, 6)}", None)),
        (2, lambda: ("PUT", f"/users/{some_id('users')}", user_body())),
        (1, lambda: ("DELETE", f"/users/{some_id('users')}", None)),
        (3, lambda: create("products", product_body())),
        (2, lambda: ("GET", f"/products/{some_id('products')}", None)),
        (1, lambda: ("GET", "/products/?limit=5", None)),
        (1, lambda: ("PUT", f"/products/{some_id('products')}", product_body())),
        (2, lambda: ("DELETE", f"/products/{some_id('products')}", None)),
        (
            4,
            lambda: create(
                "orders",
                {
                    "user_id": some_id("users"),
                    "product_id": some_id("products"),
                    "quantity": rng.choice([1, 2, 7, 0]),
                },
            ),
        ),
        (2, lambda: ("GET", f"/orders/{some_id('orders')}", None)),
        (2, lambda: ("GET", f"/users/{some_id('users')}/orders?limit=3", None)),
        (1, lambda: ("GET", f"/reports/top-products?limit={rng.randint(1, 4)}", None)),
        (1, lambda: ("GET", "/reports/summary", None)),
        (1, lambda: ("GET", f"/users/{rng.choice(['abc', '0', '99999999999'])}", None)),
    ]
    weights = [weight for weight, _ in makers]
    return [rng.choices(makers, weights)[0][1]() for _ in range(calls)]


OUTCOMES = [
    '"detail":"Username already taken"',
    '"detail":"Email already taken"',
    '"detail":"SKU already taken"',
    '"detail":"Product has orders"',
    '"detail":"User not found"',
    '"detail":"Product not found"',
    '"detail":"Order not found"',
    '"type":"string_pattern_mismatch"',  # a 422
    '"message":"User deleted"',
    '"message":"Product deleted"',
    '"revenue":',
    '"total":',
]
TIMESTAMP = re.compile(r'"created_at":"([^"]+)"')


def masked(body: str) -> str:
    for stamp in TIMESTAMP.findall(body):
        datetime.fromisoformat(stamp)  # a real ISO-8601 timestamp on every stack
    return TIMESTAMP.sub('"created_at":"<timestamp>"', body)


def transcript(database_url: str, stack: str, calls: list[Call]) -> list[tuple[int, str]]:
    app = create_app(Settings(database_url=database_url, stack=stack))
    with TestClient(app) as client:
        return [
            (response.status_code, masked(response.text))
            for response in (client.request(m, path, json=body) for m, path, body in calls)
        ]


@pytest.mark.parametrize("seed", [2, 3])
def test_every_stack_answers_a_random_session_identically(
    seed: int, fresh_database: Callable[[], str]
) -> None:
    calls = random_session(seed)
    # A fresh database per stack, so ids and sequences start from the same state.
    transcripts = {stack: transcript(fresh_database(), stack, calls) for stack in STACKS}

    reference_stack, reference = next(iter(transcripts.items()))
    bodies = "\n".join(body for _, body in reference)
    for outcome in OUTCOMES:  # the session must exercise every kind of answer
        assert outcome in bodies, f"no call of the session produced {outcome}"
    for stack, answers in transcripts.items():
        for number, (call, expected, actual) in enumerate(
            zip(calls, reference, answers, strict=True)
        ):
            assert actual == expected, (
                f"call {number} {call[0]} {call[1]} {call[2]}: "
                f"{reference_stack} answered {expected}, {stack} answered {actual}"
            )
