"""Deterministic benchmark data, loaded with COPY.

The same arguments give the same rows every time: each table draws from its own random
generator seeded with `(seed, table)`, so the `world` table, for instance, does not change
when the number of users does. Existing rows are replaced and ids restart at 1.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import psycopg

from pgarena.database.techempower import FORTUNE_ROWS, FORTUNES, WORLD_ROWS
from pgarena.database.urls import url_for

ORDER_HISTORY = timedelta(days=90)

_ADJECTIVES = (
    "amber", "brave", "calm", "daring", "eager", "fuzzy", "gentle", "happy", "icy", "jolly",
    "keen", "lucky", "mellow", "nimble", "odd", "proud", "quick", "rapid", "sunny", "tidy",
)  # fmt: skip
_NOUNS = (
    "otter", "falcon", "badger", "heron", "lynx", "marten", "newt", "oriole", "panda", "quail",
    "raven", "salmon", "tapir", "urchin", "viper", "walrus", "yak", "zebra", "bison", "crane",
)  # fmt: skip
_MATERIALS = ("Steel", "Oak", "Cotton", "Glass", "Copper", "Bamboo", "Wool", "Ceramic")
_DOMAINS = ("example.com", "example.org", "example.net")


@dataclass(frozen=True)
class SeedSummary:
    """How many rows each table holds after seeding, and how long loading took."""

    users: int
    products: int
    orders: int
    world: int
    fortunes: int
    seconds: float


def seed_database(
    url: str,
    *,
    users: int,
    products: int,
    orders: int,
    seed: int = 0,
    now: datetime | None = None,
) -> SeedSummary:
    """Replace all rows with generated data: `users`, `products`, `orders`, and always the
    TechEmpower tables (`world`: 10,000 rows, `fortune`: the 12 standard rows).

    `url` may be in any accepted spelling. Order timestamps fall in the 90 days before `now`
    (default: the current time; pass a fixed one for byte-identical reruns).
    """
    if min(users, products, orders) < 0:
        raise ValueError("row counts must be >= 0")
    if orders and not (users and products):
        raise ValueError("orders need at least one user and one product")
    now = now or datetime.now(UTC)
    started = time.perf_counter()

    with psycopg.connect(url_for(url, "libpq")) as connection, connection.transaction():
        connection.execute(
            "TRUNCATE users, products, orders, world, fortune RESTART IDENTITY CASCADE"
        )
        prices = _product_prices(products, seed)
        _copy(connection, "users (username, email)", _user_rows(users, seed))
        _copy(
            connection,
            "products (name, description, price, sku)",
            _product_rows(prices, seed),
        )
        _copy(
            connection,
            "orders (user_id, product_id, quantity, unit_price, created_at)",
            _order_rows(orders, users, prices, seed, now),
        )
        _copy_techempower_rows(connection, seed)
        # Fresh statistics, so the first benchmark queries get the plans later ones will.
        connection.execute("ANALYZE users, products, orders, world, fortune")

    return SeedSummary(
        users=users,
        products=products,
        orders=orders,
        world=WORLD_ROWS,
        fortunes=FORTUNE_ROWS,
        seconds=time.perf_counter() - started,
    )


def fill_techempower_tables(url: str, *, seed: int = 0) -> bool:
    """Give `world` and `fortune` their standard rows unless they already hold them.

    Leaves every other table alone: `pgarena serve` calls it on databases that may hold
    someone's data. Returns whether it (re)filled the tables.
    """
    check = "SELECT (SELECT count(*) FROM world), (SELECT count(*) FROM fortune)"
    with psycopg.connect(url_for(url, "libpq")) as connection, connection.transaction():
        if connection.execute(check).fetchone() == (WORLD_ROWS, FORTUNE_ROWS):
            return False
        # Serialise servers starting together on one database; then look again.
        connection.execute("LOCK TABLE world, fortune IN ACCESS EXCLUSIVE MODE")
        if connection.execute(check).fetchone() == (WORLD_ROWS, FORTUNE_ROWS):
            return False
        connection.execute("TRUNCATE world, fortune")
        _copy_techempower_rows(connection, seed)
        connection.execute("ANALYZE world, fortune")
    return True


def _copy_techempower_rows(connection: psycopg.Connection, seed: int) -> None:
    world_random = random.Random(f"{seed}:world")
    _copy(
        connection,
        "world (id, randomnumber)",
        ((i, world_random.randint(1, WORLD_ROWS)) for i in range(1, WORLD_ROWS + 1)),
    )
    _copy(connection, "fortune (id, message)", enumerate(FORTUNES, start=1))


def _copy(connection: psycopg.Connection, target: str, rows: Iterable[Sequence[object]]) -> None:
    # FREEZE (allowed because the tables were truncated in this transaction) writes the rows
    # already frozen: the first benchmark reads then do not pay for setting hint bits.
    with connection.cursor().copy(f"COPY {target} FROM STDIN WITH (FREEZE)") as copy:
        for row in rows:
            copy.write_row(row)


def _user_rows(count: int, seed: int) -> Iterator[tuple[str, str]]:
    rng = random.Random(f"{seed}:users")
    for i in range(1, count + 1):
        # The running number keeps names unique; the words make them look like names.
        username = f"{rng.choice(_ADJECTIVES)}_{rng.choice(_NOUNS)}{i}"
        yield username, f"{username}@{rng.choice(_DOMAINS)}"


def _product_prices(count: int, seed: int) -> list[Decimal]:
    rng = random.Random(f"{seed}:prices")
    return [Decimal(rng.randint(99, 99_999)).scaleb(-2) for _ in range(count)]


def _product_rows(prices: list[Decimal], seed: int) -> Iterator[tuple[str, str, Decimal, str]]:
    rng = random.Random(f"{seed}:products")
    for i, price in enumerate(prices, start=1):
        name = f"{rng.choice(_ADJECTIVES)} {rng.choice(_MATERIALS)} {rng.choice(_NOUNS)}".title()
        description = f"A {name.lower()}, item {i} of the pgarena catalogue."
        yield name, description, price, f"SKU-{i:08d}"


def _order_rows(
    count: int, users: int, prices: list[Decimal], seed: int, now: datetime
) -> Iterator[tuple[int, int, int, Decimal, datetime]]:
    rng = random.Random(f"{seed}:orders")
    history = ORDER_HISTORY.total_seconds()
    # Oldest first, so order ids grow with time as they would in a real shop.
    ages = sorted((rng.uniform(0, history) for _ in range(count)), reverse=True)
    for age in ages:
        product_id = rng.randint(1, len(prices))
        yield (
            rng.randint(1, users),
            product_id,
            rng.randint(1, 5),
            prices[product_id - 1],
            now - timedelta(seconds=age),
        )
