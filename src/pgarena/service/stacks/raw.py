"""What the two raw-SQL modules (`raw_asyncpg`, `raw_psycopg`) share: the SQL text itself and
the conversion of result rows into public schemas. Only the driver calls differ.

The statements use PostgreSQL's own `$1` placeholders, which asyncpg takes natively and
psycopg takes through its `RawCursor`, so both drivers send byte-identical SQL. Each is a
constant string: the drivers prepare it once per connection and reuse the plan (asyncpg's
statement cache, psycopg's `prepare_threshold`).

They return exactly what the ORM stacks' statements return (same columns, same types, same
`coalesce(..., 0)`), so every stack answers with identical bodies.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pgarena.service.schemas import OrderPublic, ProductPublic, UserPublic

Row = Mapping[str, Any]  # psycopg's dict_row and asyncpg's Record both read by column name


# One pool policy for both raw stacks, so that only the driver differs between them:
#   - at most `settings.max_connections` (pool size + overflow) connections;
#   - none opened before first use (POOL_MIN_SIZE), as SQLAlchemy's pools do, so the service
#     starts, and /health answers 503, while the database is down. A floor of `pool_size`
#     open connections is not offered: asyncpg opens it inside `create_pool`, which would
#     then fail when the database is down;
#   - waiting longer than `settings.pool_timeout` for a connection fails the request (503);
#   - a connection idle for POOL_MAX_IDLE_S is closed.
POOL_MIN_SIZE = 0
POOL_MAX_IDLE_S = 300.0  # asyncpg's default (psycopg_pool's is 600)

GET_USER = "SELECT id, username, email FROM users WHERE id = $1"
LIST_USERS = "SELECT id, username, email FROM users ORDER BY id OFFSET $1 LIMIT $2"
CREATE_USER = "INSERT INTO users (username, email) VALUES ($1, $2) RETURNING id, username, email"
UPDATE_USER = (
    "UPDATE users SET username = $2, email = $3 WHERE id = $1 RETURNING id, username, email"
)
DELETE_USER = "DELETE FROM users WHERE id = $1 RETURNING id"
USER_EXISTS = "SELECT EXISTS (SELECT FROM users WHERE id = $1)"

_PRODUCT = "id, name, description, price, sku"
GET_PRODUCT = f"SELECT {_PRODUCT} FROM products WHERE id = $1"
LIST_PRODUCTS = f"SELECT {_PRODUCT} FROM products ORDER BY id OFFSET $1 LIMIT $2"
CREATE_PRODUCT = (
    f"INSERT INTO products (name, description, price, sku) VALUES ($1, $2, $3, $4) "
    f"RETURNING {_PRODUCT}"
)
UPDATE_PRODUCT = (
    f"UPDATE products SET name = $2, description = $3, price = $4, sku = $5 WHERE id = $1 "
    f"RETURNING {_PRODUCT}"
)
DELETE_PRODUCT = "DELETE FROM products WHERE id = $1 RETURNING id"

# An order with its user and product, as one row.
_ORDER = """
    o.id, o.quantity, o.unit_price, o.created_at,
    u.id AS user_id, u.username, u.email,
    p.id AS product_id, p.name, p.description, p.price, p.sku
"""
GET_ORDER = f"""
    SELECT {_ORDER} FROM orders o
    JOIN users u ON u.id = o.user_id JOIN products p ON p.id = o.product_id
    WHERE o.id = $1
"""
LIST_USER_ORDERS = f"""
    SELECT {_ORDER} FROM orders o
    JOIN users u ON u.id = o.user_id JOIN products p ON p.id = o.product_id
    WHERE o.user_id = $1 ORDER BY o.id OFFSET $2 LIMIT $3
"""
# One round trip: the price is copied from the product inside the INSERT, and the response
# row is joined in the same statement. No row back means the user or the product is missing
# (and no id was drawn from the sequence, as with the ORM stacks' existence checks).
CREATE_ORDER = f"""
    WITH o AS (
        INSERT INTO orders (user_id, product_id, quantity, unit_price)
        SELECT u.id, p.id, $3, p.price FROM users u, products p WHERE u.id = $1 AND p.id = $2
        RETURNING id, user_id, product_id, quantity, unit_price, created_at
    )
    SELECT {_ORDER} FROM o
    JOIN users u ON u.id = o.user_id JOIN products p ON p.id = o.product_id
"""

# Two statements rather than `$2 IS NULL OR ...`, so each keeps a plan that fits it.
_TOP_PRODUCTS = """
    SELECT p.id AS product_id, p.name, p.sku, count(o.id) AS orders,
           sum(o.quantity) AS units, sum(o.quantity * o.unit_price) AS revenue
    FROM products p JOIN orders o ON o.product_id = p.id
    {where}
    GROUP BY p.id ORDER BY revenue DESC, p.id LIMIT $1
"""
TOP_PRODUCTS = _TOP_PRODUCTS.format(where="")
TOP_PRODUCTS_SINCE = _TOP_PRODUCTS.format(where="WHERE o.created_at >= $2")

# The four independent figures of GET /reports/summary, each run on its own connection.
SUMMARY = (
    "SELECT count(*) FROM users",
    "SELECT count(*) FROM products",
    "SELECT count(*) FROM orders",
    "SELECT coalesce(sum(quantity * unit_price), 0) FROM orders",
)

SLEEP = "SELECT pg_sleep($1)"
PING = "SELECT 1"

# TechEmpower. The alias gives the driver's row the JSON key the rules ask for.
GET_WORLD = 'SELECT id, randomnumber AS "randomNumber" FROM world WHERE id = $1'
UPDATE_WORLD = "UPDATE world SET randomnumber = $2 WHERE id = $1"
LIST_FORTUNES = "SELECT id, message FROM fortune"


def user_public(row: Row) -> UserPublic:
    return UserPublic(id=row["id"], username=row["username"], email=row["email"])


def product_public(row: Row, id_column: str = "id") -> ProductPublic:
    return ProductPublic(
        id=row[id_column],
        name=row["name"],
        description=row["description"],
        price=row["price"],
        sku=row["sku"],
    )


def order_public(row: Row) -> OrderPublic:
    return OrderPublic(
        id=row["id"],
        quantity=row["quantity"],
        unit_price=row["unit_price"],
        created_at=row["created_at"],
        user=UserPublic(id=row["user_id"], username=row["username"], email=row["email"]),
        product=product_public(row, id_column="product_id"),
    )
