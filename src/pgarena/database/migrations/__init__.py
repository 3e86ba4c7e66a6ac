"""pgarena's Alembic migrations, shipped inside the package so they work from a wheel.

`alembic upgrade head` from the checkout uses them through the repository's alembic.ini;
Python code calls `upgrade(url)`.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, pool

from pgarena.database.urls import url_for

MIGRATIONS_DIR = Path(__file__).parent


def alembic_config(url: str | None = None) -> Config:
    """An Alembic configuration for pgarena's migrations, without any ini file."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if url is not None:
        # Passed as an attribute, not as `sqlalchemy.url`: the ini parser would treat the `%`
        # of a percent-encoded password as interpolation syntax.
        config.attributes["database_url"] = url
    return config


def head_revision() -> str:
    """The newest revision shipped with pgarena."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def current_revision(url: str) -> str | None:
    """The revision the database at `url` (any accepted spelling) is at; None if unmigrated."""
    engine = create_engine(url_for(url, "psycopg"), poolclass=pool.NullPool)
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()


def upgrade(url: str, revision: str = "head") -> None:
    """Migrate the database at `url` (any accepted spelling) to `revision`."""
    command.upgrade(alembic_config(url), revision)
