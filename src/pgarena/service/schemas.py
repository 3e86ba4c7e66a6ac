"""Request and response bodies, shared by every stack.

Input models (`*In`) validate what clients send; public models (`*Public`) are all a
client ever sees, so nothing internal can leak into a response.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated

from fastapi import Path, Query
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    StringConstraints,
    computed_field,
)
from typing_extensions import TypedDict  # pydantic needs this one on Python < 3.12

# PostgreSQL `integer` ids: anything outside this range is a client error, not a driver error.
INT32_MAX = 2_147_483_647

Username = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]{3,50}$")]
Sku = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
Price = Annotated[Decimal, Field(ge=0, max_digits=12, decimal_places=2)]
RowId = Annotated[int, Field(ge=1, le=INT32_MAX)]

CENT = Decimal("0.01")
# Money leaves the service with exactly two decimal places, on every stack: the ORM stacks
# answer a create with the value the client sent ("12.5"), a sum of nothing is "0", while
# PostgreSQL's numeric(12, 2) says "12.50".
Money = Annotated[Decimal, AfterValidator(lambda amount: amount.quantize(CENT))]

# asyncpg hands timestamps back in UTC, psycopg in the session's TimeZone: normalise, so
# every stack writes the same `created_at` whatever the server's time zone is.
UtcDatetime = Annotated[datetime, AfterValidator(lambda moment: moment.astimezone(UTC))]

# Path and query parameters, declared once so every stack's routes validate alike.
IdPath = Annotated[int, Path(ge=1, le=INT32_MAX)]
Skip = Annotated[int, Query(ge=0, le=INT32_MAX)]
Limit = Annotated[int, Query(ge=1, le=1000)]


class Public(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class UserIn(BaseModel):
    username: Username
    email: EmailStr


class UserPublic(Public):
    id: int
    username: str
    email: str


class ProductIn(BaseModel):
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
    description: Annotated[str, StringConstraints(max_length=10_000)] | None = None
    price: Price
    sku: Sku


class ProductPublic(Public):
    id: int
    name: str
    description: str | None
    price: Money
    sku: str


class OrderIn(BaseModel):
    user_id: RowId
    product_id: RowId
    quantity: Annotated[int, Field(ge=1, le=10_000)]


class OrderPublic(Public):
    id: int
    quantity: int
    unit_price: Money
    created_at: UtcDatetime
    user: UserPublic
    product: ProductPublic

    @computed_field  # type: ignore[prop-decorator]
    @property
    def total(self) -> Decimal:
        return self.unit_price * self.quantity


class TopProduct(Public):
    product_id: int
    name: str
    sku: str
    orders: int
    units: int
    revenue: Money


class StoreSummary(Public):
    """The figures of `GET /reports/summary`, each from its own query, run in parallel."""

    users: int
    products: int
    orders: int
    revenue: Money


class Message(BaseModel):
    message: str


class Slept(BaseModel):
    slept_ms: int


# TechEmpower Framework Benchmarks rows. Plain dicts rather than models: the raw stacks get
# them from the driver as they are, and they serialise without a validation pass.
class WorldPublic(TypedDict):
    id: int
    randomNumber: int


class FortunePublic(TypedDict):
    id: int
    message: str
