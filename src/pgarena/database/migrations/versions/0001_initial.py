"""The initial schema: users, products, orders and the TechEmpower tables world and fortune.

Revision ID: 0001
Revises:
Create Date: 2026-11-22

Mirrors `pgarena.database.models` exactly (a test compares them). Constraint names are given
explicitly (`op.f`) because the service maps them to HTTP messages.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# pg_stat_statements lets benchmarks count the statements a request executes. Creating it needs
# a superuser and the library installed; on a managed server without either, go on without it
# (the PL/pgSQL block turns the error into a notice instead of aborting the migration).
CREATE_PG_STAT_STATEMENTS = """
DO $$
BEGIN
    CREATE EXTENSION IF NOT EXISTS pg_stat_statements;
EXCEPTION WHEN OTHERS THEN
    RAISE NOTICE 'pg_stat_statements not created: %', SQLERRM;
END
$$
"""


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(length=50), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("users_pkey")),
        sa.UniqueConstraint("email", name=op.f("users_email_key")),
        sa.UniqueConstraint("username", name=op.f("users_username_key")),
    )
    op.create_table(
        "products",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("price", sa.Numeric(precision=12, scale=2), nullable=False),
        sa.Column("sku", sa.String(length=64), nullable=False),
        sa.CheckConstraint("price >= 0", name=op.f("products_price_check")),
        sa.PrimaryKeyConstraint("id", name=op.f("products_pkey")),
        sa.UniqueConstraint("sku", name=op.f("products_sku_key")),
    )
    op.create_table(
        "orders",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("product_id", sa.Integer(), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("unit_price", sa.Numeric(precision=12, scale=2), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("quantity >= 1", name=op.f("orders_quantity_check")),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("orders_user_id_fkey"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["product_id"],
            ["products.id"],
            name=op.f("orders_product_id_fkey"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("orders_pkey")),
    )
    op.create_index(op.f("ix_orders_user_id"), "orders", ["user_id"])
    op.create_index(op.f("ix_orders_product_id"), "orders", ["product_id"])
    op.create_index(op.f("ix_orders_created_at"), "orders", ["created_at"])

    # TechEmpower Framework Benchmarks tables: ids are data, not generated.
    op.create_table(
        "world",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("randomnumber", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("world_pkey")),
    )
    op.create_table(
        "fortune",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("message", sa.String(length=2048), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("fortune_pkey")),
    )

    op.execute(CREATE_PG_STAT_STATEMENTS)


def downgrade() -> None:
    # The extension stays: it holds no pgarena data and other tools may rely on it.
    op.drop_table("fortune")
    op.drop_table("world")
    op.drop_table("orders")
    op.drop_table("users")
    op.drop_table("products")
