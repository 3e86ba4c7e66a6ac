"""Alembic environment for pgarena's schema (the models in `pgarena.database.models`).

The database URL may be in any spelling pgarena accepts (`postgresql+asyncpg://...` included);
it is converted for psycopg 3, the driver Alembic runs on (the one every install has: psycopg2
is an extra). Where it comes from, first match wins:
`alembic -x url=...`, the Python API (`pgarena.database.migrations.upgrade`), `sqlalchemy.url`
in the ini file, then the `DATABASE_URL` environment variable.
"""

from __future__ import annotations

import os
from logging.config import fileConfig

from alembic import context
from sqlalchemy import create_engine, pool, text

from pgarena.database.models import Base
from pgarena.database.urls import url_for

config = context.config
if config.config_file_name is not None:  # the plain `alembic` command: log as Alembic does
    fileConfig(config.config_file_name, disable_existing_loggers=False)
target_metadata = Base.metadata

# Several processes may start at once (server workers, parallel test sessions): the first one
# migrates, the others wait on this lock and then find the schema at head.
MIGRATION_LOCK = "SELECT pg_advisory_xact_lock(hashtext('pgarena.migrations'))"


def database_url() -> str:
    """The configured URL, converted for psycopg 3."""
    url = (
        context.get_x_argument(as_dictionary=True).get("url")
        or config.attributes.get("database_url")
        or config.get_main_option("sqlalchemy.url")
        or os.environ.get("DATABASE_URL")
    )
    if not url:
        raise SystemExit("no database URL: set DATABASE_URL or pass `-x url=postgresql://...`")
    try:
        return url_for(url, "psycopg")
    except ValueError as error:  # a one-line message (password redacted), not a traceback
        raise SystemExit(str(error)) from None


def run_migrations_offline() -> None:
    """Print the SQL instead of running it (`alembic upgrade head --sql`)."""
    context.configure(url=database_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Run the migrations in one transaction, holding the migration lock."""
    engine = create_engine(database_url(), poolclass=pool.NullPool)
    try:
        with engine.connect() as connection:
            context.configure(connection=connection, target_metadata=target_metadata)
            with context.begin_transaction():
                connection.execute(text(MIGRATION_LOCK))
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
