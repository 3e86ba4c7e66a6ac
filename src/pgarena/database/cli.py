"""`pgarena db ...`: manage the embedded PostgreSQL, migrate, seed.

Every command honours `DATABASE_URL`: with it set, pgarena uses that server and never starts
or stops it. What a command answers goes to stdout (`db url`'s URL, `db status`'s state); what
it did along the way goes to stderr, so `pgarena db url` prints nothing but the URL on stdout.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from pgarena.database import check_database_url, ensure_database
from pgarena.errors import UserError
from pgarena.settings import Settings, default_data_dir

if TYPE_CHECKING:
    from pgarena.database.embedded import EmbeddedPostgres

# Database modules are imported inside the commands: `pgarena --help` imports this module
# and should not wait for the drivers, SQLAlchemy and Alembic.

db_app = typer.Typer(
    no_args_is_help=True,
    help="The PostgreSQL database: embedded server, migrations, seed data.",
)
console = Console(stderr=True, highlight=False)  # what a command did
answer = Console(highlight=False)  # what it answers

DataDir = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        metavar="DIR",
        file_okay=False,
        envvar="PGARENA_DATA_DIR",
        help="Embedded PostgreSQL data directory.",
        show_default=str(default_data_dir()),
    ),
]


def _settings(data_dir: Path | None) -> Settings:
    settings = Settings(data_dir=data_dir) if data_dir is not None else Settings()
    check_database_url(settings)
    return settings


def _embedded(settings: Settings, action: str) -> EmbeddedPostgres:
    """The embedded server, or a one-line refusal when DATABASE_URL points elsewhere."""
    from pgarena.database.urls import redact

    if settings.database_url is not None:
        raise UserError(
            f"cannot {action}: DATABASE_URL is set ({redact(settings.database_url)}), "
            "and pgarena does not manage that server; unset it to use the embedded one"
        )
    # After the check: without the `embedded` extra this import is the one-line error.
    from pgarena.database.embedded import EmbeddedPostgres

    return EmbeddedPostgres(settings.data_dir)


@db_app.command()
def start(data_dir: DataDir = None) -> None:
    """Start the embedded PostgreSQL (or reuse the running one), create and migrate the database."""
    settings = _settings(data_dir)
    server = _embedded(settings, "start the embedded server")
    url = ensure_database(settings)
    status = server.status()
    console.print(
        f"PostgreSQL {status.version} running in {status.data_dir} (pid {status.pid})",
        markup=False,
    )
    console.print(f"database URL: {url}", markup=False, soft_wrap=True)


@db_app.command()
def stop(data_dir: DataDir = None) -> None:
    """Stop the embedded PostgreSQL."""
    settings = _settings(data_dir)
    server = _embedded(settings, "stop the server")
    if server.stop():
        console.print(f"stopped PostgreSQL in {server.data_dir}", markup=False)
    else:
        console.print(f"PostgreSQL in {server.data_dir} was not running", markup=False)


@db_app.command()
def status(data_dir: DataDir = None) -> None:
    """Show whether PostgreSQL runs, where, which version, and its URL."""
    import psycopg

    from pgarena.database.urls import hide_password, redact, url_for

    settings = _settings(data_dir)
    if settings.database_url is not None:
        url = settings.database_url
        try:
            with psycopg.connect(url_for(url, "libpq"), connect_timeout=5) as connection:
                version = connection.execute("SHOW server_version").fetchone()[0]  # type: ignore[index]
            state = f"reachable, PostgreSQL {version}"
        except psycopg.Error as error:
            state = "not reachable: " + hide_password(str(error).strip().splitlines()[0], url)
        answer.print(
            f"external server from DATABASE_URL ({redact(url)}), not managed by pgarena: {state}",
            markup=False,
            soft_wrap=True,
        )
        return

    from pgarena.database.embedded import EmbeddedPostgres  # needs the `embedded` extra

    state = EmbeddedPostgres(settings.data_dir).status()
    table = Table.grid(padding=(0, 2))
    table.add_row("server", "[green]running[/]" if state.running else "[yellow]stopped[/]")
    table.add_row("data dir", str(state.data_dir) + ("" if state.initialized else " (empty)"))
    if state.version:
        table.add_row("version", f"PostgreSQL {state.version}")
    if state.running:
        table.add_row("pid", str(state.pid))
        table.add_row("server URL", str(state.url))
    answer.print(table)


@db_app.command()
def url(
    data_dir: DataDir = None,
    show_password: Annotated[
        bool, typer.Option(help="Print the password of DATABASE_URL instead of ***.")
    ] = False,
) -> None:
    """Print the libpq URL, for `psql "$(pgarena db url)"` (starts the server if needed)."""
    from pgarena.database.urls import redact

    settings = _settings(data_dir)
    database_url = ensure_database(settings)
    typer.echo(database_url if show_password else redact(database_url))


@db_app.command()
def upgrade(data_dir: DataDir = None) -> None:
    """Apply pending migrations (starting the embedded server and creating the database)."""
    from pgarena.database.migrations import current_revision
    from pgarena.database.urls import redact

    database_url = ensure_database(_settings(data_dir))
    console.print(
        f"{redact(database_url)} is at revision {current_revision(database_url)} (head)",
        markup=False,
        soft_wrap=True,
    )


@db_app.command()
def seed(
    # No `min=0`: its `[x>=0]` clutters the help, and seed_database refuses negative counts.
    users: Annotated[int, typer.Option(metavar="N", help="Users to create.")] = 1000,
    products: Annotated[int, typer.Option(metavar="N", help="Products to create.")] = 100,
    orders: Annotated[int, typer.Option(metavar="N", help="Orders to create.")] = 1000,
    seed: Annotated[
        int, typer.Option(metavar="N", help="Random seed: the same seed gives the same rows.")
    ] = 0,
    data_dir: DataDir = None,
) -> None:
    """Replace all rows with deterministic generated data (and the TechEmpower tables)."""
    from pgarena.database.seed import seed_database
    from pgarena.database.urls import redact

    if min(users, products, orders) < 0:
        raise UserError("--users, --products and --orders must be >= 0")
    database_url = ensure_database(_settings(data_dir))
    try:
        summary = seed_database(
            database_url, users=users, products=products, orders=orders, seed=seed
        )
    except ValueError as error:
        raise UserError(str(error)) from None
    table = Table()
    table.add_column("table")
    table.add_column("rows", justify="right")
    for name in ("users", "products", "orders", "world", "fortunes"):
        table.add_row(name, f"{getattr(summary, name):,}")
    console.print(table)
    console.print(
        f"seeded {redact(database_url)} with seed {seed} in {summary.seconds:.2f} s",
        markup=False,
        soft_wrap=True,
    )
