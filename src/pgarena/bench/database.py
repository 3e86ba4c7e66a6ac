"""The benchmark's database: started (or reached), migrated and seeded, for `run` and
`calibrate` alike."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from rich.console import Console

from pgarena.bench.workloads import DataSizes
from pgarena.settings import Settings

# Keep the embedded database of `pgarena run` apart from the one `pgarena serve` uses by
# default: a run truncates and re-seeds its tables.
ARENA_DATABASE = "pgarena_arena"


@dataclass(frozen=True)
class PreparedDatabase:
    """A database ready for load: its libpq URL, where it runs, how long seeding took."""

    url: str
    embedded: bool
    seed_seconds: float
    data: DataSizes


@contextmanager
def arena_database(
    console: Console, data: DataSizes | None = None, purpose: str = "pgarena run"
) -> Iterator[PreparedDatabase]:
    """The prepared database, held for the whole block.

    On the embedded server the block holds the cluster's run lock: two runs on one cluster
    would measure each other's load and re-seed each other's tables, so the second one is
    refused with a message that names the first and says how to give it its own cluster.
    """
    from pgarena.database.lock import run_lock

    settings = Settings(database_name=ARENA_DATABASE)
    if settings.database_url is not None:
        yield prepare_database(console, data, settings)
        return
    with run_lock(settings.data_dir, purpose):
        yield prepare_database(console, data, settings)


def prepare_database(
    console: Console, data: DataSizes | None = None, settings: Settings | None = None
) -> PreparedDatabase:
    """Start or reach PostgreSQL (DATABASE_URL, else the embedded server), migrate, seed."""
    from pgarena.database import ensure_database
    from pgarena.database.seed import seed_database
    from pgarena.database.urls import redact

    data = data or DataSizes()
    settings = settings or Settings(database_name=ARENA_DATABASE)
    with console.status("starting PostgreSQL and migrating"):
        url = ensure_database(settings)
    seeding = f"seeding {data.users} users, {data.products} products, {data.orders} orders"
    with console.status(seeding):
        summary = seed_database(url, users=data.users, products=data.products, orders=data.orders)
    console.print(f"database {redact(url)} seeded in {summary.seconds:.1f} s")
    return PreparedDatabase(
        url=url,
        embedded=settings.database_url is None,
        seed_seconds=summary.seconds,
        data=data,
    )
