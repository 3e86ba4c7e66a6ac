"""Every workload pgarena can run: TOML files shipped with the package, read at import.

A workload is a weighted set of *scenarios*; a scenario is a short sequence of requests
one client sends in order (most are a single request; the users lifecycle is five). Each
request says what a correct answer looks like (status, and a cheap body check), so a stack
that answers fast with errors does not win.

The workloads are written in the workload-file format users write their own in
(`workload_file.py`, README "Your own service and workload"): one file per workload in
`bench/workloads/`, so there is one workload language. Placeholders are `{name}` with a
lowercase name, filled in by the load generator per request:
  {user_id} {product_id} {order_id} {world_id}  a random seeded id (1..N)
  {users_skip}                                   a random offset into the users list
  {unique}                                       a token unique to this request (no 409s)
  {slow_ms}                                      the slow-db wait, in milliseconds
  {id}, ...                                      a value captured from an earlier answer

Writing workloads leave the database as they found it in size (every row they insert they
also delete), or are marked `grows` and get a re-seed before each cell; see `RESET_POLICY`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources

from pgarena.bench.workload_file import Scenario, Step, Workload, parse_workload
from pgarena.database.techempower import FORTUNE_ROWS, WORLD_ROWS
from pgarena.errors import UserError

__all__ = [
    "GROUPS",
    "RESET_POLICY",
    "WORKLOADS",
    "DataSizes",
    "Scenario",
    "Step",
    "Workload",
    "resolve_workloads",
]


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

_QUERY_COUNTS = (1, 5, 10, 20)

# The order workloads are listed in (help, `all`); each is bench/workloads/<name>.toml.
_ORDER = (
    "standard",
    "mixed",
    "parallel",
    "complex",
    "concurrent",
    "crud",
    "db",
    *(f"queries-{n}" for n in _QUERY_COUNTS),
    *(f"updates-{n}" for n in _QUERY_COUNTS),
    "fortunes",
    "json",
    "plaintext",
    "slow-db",
)


def _load_builtin(name: str) -> Workload:
    text = resources.files("pgarena.bench").joinpath("workloads", f"{name}.toml").read_text()
    workload = parse_workload(text, f"pgarena/bench/workloads/{name}.toml", name)
    assert workload.name == name, f"{name}.toml declares the name {workload.name!r}"
    return workload


WORKLOADS: dict[str, Workload] = {name: _load_builtin(name) for name in _ORDER}

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
