"""Seed data: deterministic, complete, valid for the API, and always the TechEmpower tables."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import psycopg
import pytest

from pgarena.database.seed import fill_techempower_tables, seed_database
from pgarena.database.urls import url_for

NOW = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)
USERNAME = re.compile(r"^[A-Za-z0-9_.-]{3,50}$")


def dump(url: str) -> dict[str, list[tuple]]:
    """Every row of every table, in id order."""
    with psycopg.connect(url) as connection:
        return {
            table: connection.execute(f"SELECT * FROM {table} ORDER BY id").fetchall()
            for table in ("users", "products", "orders", "world", "fortune")
        }


def test_same_seed_gives_the_same_rows(database_url: str) -> None:
    seed_database(database_url, users=40, products=10, orders=60, seed=7, now=NOW)
    first = dump(database_url)
    seed_database(database_url, users=40, products=10, orders=60, seed=7, now=NOW)
    assert dump(database_url) == first

    seed_database(database_url, users=40, products=10, orders=60, seed=8, now=NOW)
    other = dump(database_url)
    assert other["users"] != first["users"] and other["orders"] != first["orders"]


def test_seeding_replaces_rows_and_restarts_ids(database_url: str) -> None:
    seed_database(database_url, users=30, products=5, orders=20)
    summary = seed_database(url_for(database_url, "asyncpg"), users=10, products=3, orders=4)
    assert (summary.users, summary.products, summary.orders) == (10, 3, 4)
    assert (summary.world, summary.fortunes) == (10_000, 12)
    rows = dump(database_url)
    assert [row[0] for row in rows["users"]] == list(range(1, 11))
    assert [row[0] for row in rows["products"]] == [1, 2, 3]
    assert [row[0] for row in rows["orders"]] == [1, 2, 3, 4]


def test_seeded_rows_follow_the_api_rules(database_url: str) -> None:
    seed_database(database_url, users=500, products=50, orders=2000, seed=3, now=NOW)
    rows = dump(database_url)

    usernames = [username for _, username, _ in rows["users"]]
    emails = [email for _, _, email in rows["users"]]
    assert all(USERNAME.match(name) for name in usernames)
    assert len(set(usernames)) == len(set(emails)) == 500
    assert all(re.match(r"^[^@\s]+@[a-z0-9.-]+\.[a-z]+$", email) for email in emails)

    prices = {}
    for product_id, name, description, price, _sku in rows["products"]:
        assert name and description
        assert price >= 0 and price == price.quantize(Decimal("0.01"))
        prices[product_id] = price
    assert len({sku for *_, sku in rows["products"]}) == 50

    for _, user_id, product_id, quantity, unit_price, created_at in rows["orders"]:
        assert 1 <= user_id <= 500 and 1 <= product_id <= 50 and quantity >= 1
        assert unit_price == prices[product_id]
        assert NOW - timedelta(days=90) <= created_at <= NOW
    timestamps = [row[5] for row in rows["orders"]]
    assert timestamps == sorted(timestamps)  # ids grow with time
    assert timestamps[-1] - timestamps[0] > timedelta(days=80)  # spread, not bunched


def test_techempower_tables_hold_the_standard_rows(database_url: str) -> None:
    seed_database(database_url, users=0, products=0, orders=0, seed=5)
    rows = dump(database_url)
    assert [row[0] for row in rows["world"]] == list(range(1, 10_001))
    numbers = [number for _, number in rows["world"]]
    assert min(numbers) >= 1 and max(numbers) <= 10_000
    assert len(set(numbers)) > 5_000  # random, not a constant or the id

    fortunes = dict(rows["fortune"])
    assert sorted(fortunes) == list(range(1, 13))
    assert fortunes[1] == "fortune: No such file or directory"
    assert fortunes[11] == (
        '<script>alert("This should not be displayed in a browser alert box.");</script>'
    )
    assert fortunes[12] == "フレームワークのベンチマーク"
    assert fortunes[6] == "Emacs is a nice operating system, but I prefer UNIX. — Tom Christaensen"


def test_world_does_not_depend_on_the_other_tables(database_url: str) -> None:
    seed_database(database_url, users=0, products=0, orders=0, seed=1)
    alone = dump(database_url)["world"]
    seed_database(database_url, users=100, products=10, orders=100, seed=1)
    assert dump(database_url)["world"] == alone


def test_orders_without_users_or_products_are_refused(database_url: str) -> None:
    with pytest.raises(ValueError, match="at least one user and one product"):
        seed_database(database_url, users=0, products=5, orders=10)
    with pytest.raises(ValueError, match=">= 0"):
        seed_database(database_url, users=-1, products=0, orders=0)


def test_fill_techempower_tables_restores_them_and_leaves_other_rows_alone(
    database_url: str,
) -> None:
    seed_database(database_url, users=5, products=2, orders=3)
    assert fill_techempower_tables(database_url) is False  # already complete: untouched
    with psycopg.connect(database_url) as connection:
        connection.execute("DELETE FROM world WHERE id > 9000")
        connection.execute("DELETE FROM fortune")
    assert fill_techempower_tables(url_for(database_url, "asyncpg")) is True
    rows = dump(database_url)
    assert len(rows["world"]) == 10_000 and len(rows["fortune"]) == 12
    assert (len(rows["users"]), len(rows["products"]), len(rows["orders"])) == (5, 2, 3)
