"""Request and response bodies, shared by every stack.

Input models (`*In`) validate what clients send; public models (`*Public`) are all a
client ever sees, so nothing internal can leak into a response.

The OpenAPI schema of an input is exactly what is accepted, no more and no less, so that a
client (or schemathesis) generating data from it is never refused a valid value nor granted
an invalid one: text that PostgreSQL cannot store (NUL, unpaired surrogates) is excluded by
a `pattern` and refused by a validator naming the field; a price is a JSON number in cents
(`multipleOf: 0.01`) or a plain decimal string; integers in a body are JSON integers, not
strings of digits (`_json_integer`).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any

from fastapi import Path, Query
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    WithJsonSchema,
    computed_field,
)
from typing_extensions import TypedDict  # pydantic needs this one on Python < 3.12

# PostgreSQL `integer` ids: anything outside this range is a client error, not a driver error.
INT32_MAX = 2_147_483_647

Username = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]{3,50}$")]
Sku = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,64}$")]


def _json_integer(value: Any) -> Any:
    """A JSON integer (`7`, or `7.0`, which JSON Schema counts as one), never `"7"` or
    `true`, which pydantic would otherwise convert and the schema does not allow."""
    if isinstance(value, str | bool):
        raise ValueError("must be a JSON integer")
    return value


RowId = Annotated[int, Field(ge=1, le=INT32_MAX), BeforeValidator(_json_integer)]

# Characters a PostgreSQL `text` cannot hold: NUL, and UTF-16 halves without their pair
# (JSON can spell both, "\u0000" and "\ud800"). Left in, they fail in the driver as a 500.
# The schemas' patterns name only NUL: JSON Schema strings are Unicode code points, which a
# lone surrogate is not, and generators (schemathesis) cannot use a pattern that names them.
_STORABLE = "[^\\x00]"

# Blank characters, spelled out: `\s` means something else to each regex dialect that reads
# the patterns (pydantic's Rust regex and Python count U+0085, JSON Schema's ECMAScript does
# not; ECMAScript counts U+FEFF, the others do not; Python's `str.strip` also takes U+001C to
# U+001F). Every character any of them calls a space is blank here, in the patterns and in
# `not_blank` alike, so that what the schema accepts the service accepts (schemathesis found
# an address with U+0085 that the schema allowed and pydantic refused).
BLANKS = (
    "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005"
    "\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
)
_BLANK = "".join(f"\\u{ord(character):04x}" for character in BLANKS)  # for a [...] class


def storable(text: str) -> str:
    """Refuse what PostgreSQL cannot store, naming the field (pydantic adds its name)."""
    if "\x00" in text:
        raise ValueError("must not contain NUL characters")
    try:
        text.encode()
    except UnicodeEncodeError:
        raise ValueError("must not contain unpaired surrogates") from None
    return text


_ISO_DATETIME = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}")


def _iso_datetime(value: Any) -> Any:
    if isinstance(value, str) and not _ISO_DATETIME.match(value):
        raise ValueError("must be an ISO 8601 date and time, such as 2025-01-31T12:00:00Z")
    return value


def _in_utc(moment: datetime | None) -> datetime | None:
    """In UTC: PostgreSQL refuses offsets past 15:59 that ISO 8601 allows (+17:32)."""
    if moment is None or moment.tzinfo is None:
        return moment
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise ValueError("is out of range") from None


# A query's date and time, as its schema says (pydantic alone would take a Unix time too).
Since = Annotated[datetime | None, BeforeValidator(_iso_datetime), AfterValidator(_in_utc)]


def not_blank(text: str) -> str:
    if not text.strip(BLANKS):
        raise ValueError("must not be blank")
    return text


Text = Annotated[str, AfterValidator(storable)]
# An address of the usual shape; whether it is deliverable is not this service's business
# (email-validator refused the reserved domains, .test, .example, which the schema allows).
Email = Annotated[
    str,
    StringConstraints(
        max_length=254,
        pattern=f"^[^@{_BLANK}\\x00]+@[^@{_BLANK}\\x00]+\\.[^@{_BLANK}\\x00]+$",
    ),
    AfterValidator(storable),
]
Name = Annotated[
    Text,
    StringConstraints(min_length=1, max_length=200),
    AfterValidator(not_blank),
    WithJsonSchema(
        {"type": "string", "minLength": 1, "maxLength": 200,
         "pattern": f"^{_STORABLE}*[^{_BLANK}\\x00]{_STORABLE}*$"}
    ),
]  # fmt: skip
Description = Annotated[
    Text,
    StringConstraints(max_length=10_000),
    WithJsonSchema({"type": "string", "maxLength": 10_000, "pattern": f"^{_STORABLE}*$"}),
]

# A price: a JSON number in whole cents or a plain decimal string, 0 to 9999999999.99. A
# string is held to the same form as its schema (pydantic alone would take "1e2" or " 5").
# -0 is 0: the sign of a zero price is not kept.
_PRICE_TEXT = re.compile(r"^[0-9]{1,10}(\.[0-9]{1,2})?$")


def _price_text(value: Any) -> Any:
    if isinstance(value, str) and not _PRICE_TEXT.fullmatch(value):
        raise ValueError("must be a decimal such as 19.99: up to 10 digits, 2 decimals")
    return value


Price = Annotated[
    Decimal,
    BeforeValidator(_price_text),
    Field(ge=0, max_digits=12, decimal_places=2),
    AfterValidator(lambda price: abs(price) if price.is_zero() else price),
    WithJsonSchema(
        {"anyOf": [
            {"type": "number", "minimum": 0, "maximum": 9999999999.99, "multipleOf": 0.01},
            {"type": "string", "pattern": _PRICE_TEXT.pattern},
        ]}
    ),
]  # fmt: skip

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
    email: Email


class UserPublic(Public):
    id: int
    username: str
    email: str


class ProductIn(BaseModel):
    name: Name
    description: Description | None = None
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
    quantity: Annotated[int, Field(ge=1, le=10_000), BeforeValidator(_json_integer)]


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


class ErrorMessage(BaseModel):
    """The body of every error but 422: one short sentence, never driver text."""

    detail: str


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
