"""Every workload pgarena can run, declared in one place as data.

A workload is a weighted set of *scenarios*; a scenario is a short sequence of requests
one client sends in order (most are a single request; the users lifecycle is five). Each
request says what a correct answer looks like (status, and a cheap body check), so a stack
that answers fast with errors does not win.

Paths and bodies are templates. Placeholders are `{name}` with a lowercase name (so JSON's
own braces need no escaping), filled in by the load generator per request:
  {user_id} {product_id} {order_id} {world_id}  a random seeded id (1..N)
  {users_skip}                                   a random offset into the users list
  {unique}                                       a token unique to this request (no 409s)
  {id}                                           the id returned by the scenario's previous
                                                 request that has `capture_id=True`
  {slow_ms}                                      the slow-db wait, in milliseconds

Writing workloads leave the database as they found it in size (every row they insert they
also delete), or are marked `grows` and get a re-seed before each cell; see `RESET_POLICY`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from pgarena.database.techempower import (
    EXTRA_FORTUNE_MESSAGE,
    FORTUNE_ROWS,
    HELLO_WORLD,
    WORLD_ROWS,
)
from pgarena.errors import UserError


@dataclass(frozen=True)
class Step:
    """One HTTP request and what a correct answer looks like."""

    method: str
    path: str
    body: str | None = None  # JSON template
    expect_status: int = 200
    expect_body: bytes | None = None  # must occur in the response body
    capture_id: bool = False  # remember the response's "id" as {id} for the next steps


@dataclass(frozen=True)
class Scenario:
    """Requests one client sends in order; picked with probability weight / total."""

    weight: int
    steps: tuple[Step, ...]


@dataclass(frozen=True)
class Workload:
    """A named load: scenarios, where it comes from, and whether it writes."""

    name: str
    description: str
    source: str
    scenarios: tuple[Scenario, ...]
    writes: bool = False
    grows: bool = False  # inserts rows it does not delete: re-seed before each of its cells
    tags: frozenset[str] = field(default_factory=frozenset)


@dataclass(frozen=True)
class DataSizes:
    """How many rows the seed puts in each table; the ids are 1..N."""

    users: int = 10_000
    products: int = 1_000
    orders: int = 10_000
    world: int = WORLD_ROWS  # fixed by TechEmpower
    fortune: int = FORTUNE_ROWS  # fixed by TechEmpower

    def to_dict(self) -> dict[str, int]:
        """The JSON shape of `metadata.data` (without the reset policy)."""
        return {
            "users": self.users,
            "products": self.products,
            "orders": self.orders,
            "world": self.world,
            "fortune": self.fortune,
        }


# How writing workloads are kept from biasing the cells after them. Recorded in the result.
RESET_POLICY = (
    "bounded: mixed and crud delete every row they insert and updates-N change values only, "
    "so table sizes stay put (within one row per connection); concurrent inserts orders, so "
    "the database is re-seeded (truncate + COPY) before each of its cells"
)

_JSON_ID = b'"id"'


def _get(path: str, expect: bytes | None = None) -> Step:
    return Step("GET", path, expect_body=expect)


def _single(*steps: Step, weight: int = 1) -> tuple[Scenario, ...]:
    return tuple(Scenario(weight, (step,)) for step in steps)


def _user_body(prefix: str) -> str:
    return '{"username": "' + prefix + '{unique}", "email": "' + prefix + '{unique}@example.com"}'


def _product_body(prefix: str) -> str:
    return (
        '{"name": "' + prefix + ' {unique}", "description": "load test product", '
        '"price": 9.99, "sku": "' + prefix + '-{unique}"}'
    )


def _create_then_delete(resource: str, body: str) -> Scenario:
    return Scenario(
        1,
        (
            Step("POST", f"/{resource}/", body, expect_body=_JSON_ID, capture_id=True),
            Step("DELETE", f"/{resource}/{{id}}", expect_body=b"deleted"),
        ),
    )


# Seed 004's mixed benchmark: INSERT, UPDATE, DELETE and SELECT. The seed gives no
# proportions beyond "mixed", so each operation is a quarter of the requests, on users and
# products alike. Inserted rows are deleted by the same client: the tables do not grow.
_MIXED = (
    _create_then_delete("users", _user_body("mx")),
    Scenario(1, (Step("PUT", "/users/{user_id}", _user_body("up"), expect_body=_JSON_ID),)),
    Scenario(1, (_get("/users/{user_id}", _JSON_ID),)),
    _create_then_delete("products", _product_body("mx")),
    Scenario(
        1, (Step("PUT", "/products/{product_id}", _product_body("up"), expect_body=_JSON_ID),)
    ),
    Scenario(1, (_get("/products/{product_id}", _JSON_ID),)),
)

_TFB_WORLD = b'"randomNumber"'
_QUERY_COUNTS = (1, 5, 10, 20)


def _tfb_parameterized(kind: str, count: int) -> Workload:
    verb = "reads" if kind == "queries" else "reads and updates"
    return Workload(
        f"{kind}-{count}",
        f"TechEmpower {kind}: {verb} {count} random world rows per request",
        "TechEmpower",
        _single(_get(f"/{kind}?queries={count}", _TFB_WORLD)),
        writes=kind == "updates",
        tags=frozenset({"techempower", kind}),
    )


_ALL: tuple[Workload, ...] = (
    Workload(
        "standard",
        "reads: user by id, a page of users, product by id",
        "seed 004 (standard benchmark)",
        _single(
            _get("/users/{user_id}", _JSON_ID),
            _get("/users/?skip={users_skip}&limit=10", _JSON_ID),
            _get("/products/{product_id}", _JSON_ID),
        ),
    ),
    Workload(
        "mixed",
        "insert, update, delete and select of users and products, a quarter each",
        "seed 004 (mixed benchmark)",
        _MIXED,
        writes=True,
    ),
    Workload(
        "parallel",
        "one request runs several independent queries at once (/reports/summary)",
        "seed 004 (advanced: parallel operations)",
        _single(_get("/reports/summary")),
        tags=frozenset({"advanced"}),
    ),
    Workload(
        "complex",
        "the report query: join and aggregate (/reports/top-products)",
        "seed 004 (advanced: complex query)",
        _single(_get("/reports/top-products?limit=10")),
        tags=frozenset({"advanced"}),
    ),
    Workload(
        "concurrent",
        "many clients on a mixed workload with orders: reads, writes and order lookups",
        "seed 004 (advanced: concurrent clients)",
        (
            *_MIXED,
            Scenario(
                1,
                (
                    Step(
                        "POST",
                        "/orders/",
                        '{"user_id": {user_id}, "product_id": {product_id}, "quantity": 1}',
                        expect_body=_JSON_ID,
                    ),
                ),
            ),
            Scenario(1, (_get("/orders/{order_id}", _JSON_ID),)),
            Scenario(1, (_get("/users/{user_id}/orders"),)),
        ),
        writes=True,
        grows=True,
        tags=frozenset({"advanced"}),
    ),
    Workload(
        "crud",
        "the users lifecycle: create, read, update, list, delete",
        "seed 000 (users CRUD)",
        (
            Scenario(
                1,
                (
                    Step(
                        "POST", "/users/", _user_body("crud"), expect_body=_JSON_ID, capture_id=True
                    ),
                    _get("/users/{id}", _JSON_ID),
                    Step("PUT", "/users/{id}", _user_body("crud2"), expect_body=_JSON_ID),
                    _get("/users/?skip={users_skip}&limit=10", _JSON_ID),
                    Step("DELETE", "/users/{id}", expect_body=b"deleted"),
                ),
            ),
        ),
        writes=True,
    ),
    Workload(
        "db",
        "TechEmpower single query: one random world row",
        "TechEmpower",
        _single(_get("/db", _TFB_WORLD)),
        tags=frozenset({"techempower"}),
    ),
    *(_tfb_parameterized("queries", n) for n in _QUERY_COUNTS),
    *(_tfb_parameterized("updates", n) for n in _QUERY_COUNTS),
    Workload(
        "fortunes",
        "TechEmpower fortunes: all rows, one added, sorted, rendered as escaped HTML",
        "TechEmpower",
        _single(_get("/fortunes", EXTRA_FORTUNE_MESSAGE.encode())),
        tags=frozenset({"techempower"}),
    ),
    Workload(
        "json",
        "TechEmpower JSON serialization: no database",
        "TechEmpower",
        _single(_get("/json", HELLO_WORLD.encode())),
        tags=frozenset({"techempower"}),
    ),
    Workload(
        "plaintext",
        "TechEmpower plaintext: no database",
        "TechEmpower",
        _single(_get("/plaintext", HELLO_WORLD.encode())),
        tags=frozenset({"techempower"}),
    ),
    Workload(
        "slow-db",
        "each request holds a connection while PostgreSQL runs pg_sleep (default 50 ms)",
        "seeds 001-003 ('100 concurrent requests: 5000 ms sync vs 100 ms async')",
        _single(_get("/slow?ms={slow_ms}")),
    ),
)

WORKLOADS: dict[str, Workload] = {workload.name: workload for workload in _ALL}

# Names that stand for several workloads on the command line.
GROUPS: dict[str, tuple[str, ...]] = {
    "advanced": ("parallel", "complex", "concurrent"),
    "queries": tuple(f"queries-{n}" for n in _QUERY_COUNTS),
    "updates": tuple(f"updates-{n}" for n in _QUERY_COUNTS),
    "techempower": (
        "db",
        *(f"queries-{n}" for n in _QUERY_COUNTS),
        *(f"updates-{n}" for n in _QUERY_COUNTS),
        "fortunes",
        "json",
        "plaintext",
    ),
    "all": tuple(WORKLOADS),
}


def resolve_workloads(names: Iterable[str]) -> list[Workload]:
    """Workloads for names and group names, in the order given, without duplicates."""
    resolved: list[Workload] = []
    for name in names:
        members = GROUPS.get(name, (name,))
        for member in members:
            if member not in WORKLOADS:
                known = ", ".join([*WORKLOADS, *GROUPS])
                raise UserError(f"unknown workload {name!r}; choose from: {known}")
            if WORKLOADS[member] not in resolved:
                resolved.append(WORKLOADS[member])
    return resolved
