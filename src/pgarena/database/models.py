"""The schema, as SQLAlchemy 2 ORM models shared by every stack.

The Alembic migrations create exactly these tables; the raw-SQL stacks query them by
the same names. Constraint names are fixed by a naming convention because the service
maps them to plain HTTP messages (see `pgarena.service.errors`).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import (
    CheckConstraint,
    DateTime,
    ForeignKey,
    Integer,
    MetaData,
    Numeric,
    String,
    Text,
    func,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "%(table_name)s_%(column_0_name)s_key",
    "ck": "%(table_name)s_%(constraint_name)s_check",
    "fk": "%(table_name)s_%(column_0_name)s_fkey",
    "pk": "%(table_name)s_pkey",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(50), unique=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)


class Product(Base):
    __tablename__ = "products"
    __table_args__ = (CheckConstraint("price >= 0", name="price"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    price: Mapped[Decimal] = mapped_column(Numeric(12, 2))
    sku: Mapped[str] = mapped_column(String(64), unique=True)


class Order(Base):
    __tablename__ = "orders"
    __table_args__ = (CheckConstraint("quantity >= 1", name="quantity"),)
    # Fetch created_at with INSERT ... RETURNING instead of a refresh query after commit.
    __mapper_args__ = {"eager_defaults": True}  # noqa: RUF012

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # Deleting a user deletes their orders; a product that was sold cannot be deleted.
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    product_id: Mapped[int] = mapped_column(
        ForeignKey("products.id", ondelete="RESTRICT"), index=True
    )
    quantity: Mapped[int] = mapped_column(Integer)
    # The price paid, copied from the product at purchase time.
    unit_price: Mapped[Decimal] = mapped_column(Numeric(12, 2))
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), index=True
    )

    # lazy="raise": a forgotten eager load fails loudly in tests instead of becoming a
    # hidden query per row (sync) or a MissingGreenlet error in production (async).
    user: Mapped[User] = relationship(lazy="raise")
    product: Mapped[Product] = relationship(lazy="raise")


# TechEmpower Framework Benchmarks tables, named and shaped as the TFB rules require.
class World(Base):
    __tablename__ = "world"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    randomnumber: Mapped[int] = mapped_column(Integer)


class Fortune(Base):
    __tablename__ = "fortune"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    message: Mapped[str] = mapped_column(String(2048))
