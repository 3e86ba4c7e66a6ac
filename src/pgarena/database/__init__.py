"""PostgreSQL for pgarena: the embedded server, URL handling, migrations and seed data.

`ensure_database(settings)` is the one call the CLI and the servers make before they touch
the database; `check_database_url(settings)` rejects a URL pgarena cannot use before
anything else happens.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

from pgarena.errors import UserError

if TYPE_CHECKING:
    from pgarena.settings import Settings

__all__ = [
    "check_database_url",
    "create_database_if_missing",
    "drop_database",
    "ensure_database",
]

# The drivers, SQLAlchemy and Alembic are imported inside the functions: every `pgarena`
# command imports this package, and `pgarena --help` should not wait ~0.7 s for them.


def check_database_url(settings: Settings) -> None:
    """A one-line `UserError` (password hidden) unless `settings.database_url` is unset or a
    PostgreSQL URL in a spelling pgarena accepts.

    `Settings` cannot check this itself: it sits below every package, this one included.
    Commands call it before they start a server or touch a database, as a validator would.
    """
    from pgarena.database.urls import parse_database_url

    if settings.database_url is not None:
        try:
            parse_database_url(settings.database_url)
        except ValueError as error:  # the message is redacted already
            raise UserError(str(error)) from None


def ensure_database(settings: Settings) -> str:
    """Make the configured database ready and return its libpq URL.

    Without `settings.database_url`: start (or reuse) the embedded server in
    `settings.data_dir` and create the database `settings.database_name` if missing. With it:
    use the URL's database as is. Either way, apply pending migrations. A second call costs a
    connection and a version check, not a migration run.
    """
    import psycopg
    from sqlalchemy.exc import SQLAlchemyError

    from pgarena.database.migrations import current_revision, head_revision, upgrade
    from pgarena.database.urls import hide_password, redact, url_for

    check_database_url(settings)
    if settings.database_url is None:
        # Imported only here: with DATABASE_URL set, the `embedded` extra is not needed.
        from pgarena.database.embedded import EmbeddedPostgres

        server = EmbeddedPostgres(settings.data_dir)
        server_url: str | None = server.start()
        url = server.url(settings.database_name)
    else:
        server_url = None
        url = url_for(settings.database_url, "libpq")

    try:
        if server_url is not None:
            create_database_if_missing(server_url, settings.database_name)
        if current_revision(url) != head_revision():
            upgrade(url)
    except (psycopg.Error, SQLAlchemyError, OSError) as error:
        # SQLAlchemy prefixes the driver's message with its class name; show the message.
        error = getattr(error, "orig", None) or error
        lines = str(error).strip().splitlines() or [type(error).__name__]
        # Driver messages name the host and user, and a malformed URL may be echoed whole.
        reason = hide_password(lines[0], url)
        raise UserError(f"cannot prepare the database at {redact(url)}: {reason}") from None
    return url


def create_database_if_missing(server_url: str, name: str) -> None:
    """Create database `name` on the server behind `server_url` (libpq URL) unless it exists."""
    import psycopg
    from psycopg import errors, sql

    with psycopg.connect(server_url, autocommit=True) as connection:
        found = connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
        if found.fetchone():
            return
        # Another process may create it between our check and our CREATE; depending on the
        # timing PostgreSQL reports that as a duplicate database or a unique violation.
        with contextlib.suppress(errors.DuplicateDatabase, errors.UniqueViolation):
            connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def drop_database(server_url: str, name: str) -> None:
    """Drop database `name` if it exists, ending any sessions still connected to it."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(server_url, autocommit=True) as connection:
        connection.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
