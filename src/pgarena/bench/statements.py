"""How many statements the benchmark's database executed in a measured window.

`pg_stat_statements` counts statements (the round trips a request costs); where that
extension is missing, `pg_stat_database` counts transactions instead, and the result says
which. pg_stat_statements is one table for the whole cluster: the count is filtered to the
current database, and leaves out the resource monitor's own statements by their marker.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    import psycopg

# Every statement pgarena's monitor sends carries this comment, so counts can leave it out.
MONITOR_MARKER = "/* pgarena-monitor */"

StatementsSource = Literal["pg_stat_statements", "pg_stat_database.transactions"]

# Top-level statements only (a function's inner statements are not round trips); the marker
# sits after SELECT because the text pg_stat_statements keeps may start at the first token.
_STATEMENTS_SQL = f"""
SELECT {MONITOR_MARKER} coalesce(sum(calls), 0)::bigint FROM pg_stat_statements
WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND query NOT LIKE '%pgarena-monitor%' {{toplevel}}
"""
_TRANSACTIONS_SQL = f"""
SELECT {MONITOR_MARKER} xact_commit + xact_rollback FROM pg_stat_database
WHERE datname = current_database()
"""


class StatementCounter:
    """Statements the database executed between `start` and `stop`, on one connection.

    With `pg_stat_statements`, statements count as they finish and the monitor's own are
    left out by their marker. The `pg_stat_database` fallback counts transactions, which a
    backend publishes at most once a second: before each reading the counter asks its own
    backend to publish (PostgreSQL 15+) and subtracts the monitor's own transactions by
    number, so only the other backends' publishing delay (up to a second's worth, at both
    edges) blurs the count. Every statement the monitor sends on the connection between
    the readings must be announced with `own_statement`.
    """

    def __init__(self, *, create_extension: bool = True) -> None:
        self.create_extension = create_extension  # see `statements_source`
        self.source: StatementsSource | None = None
        self._chosen = False
        self._sql = ""
        self._before: int | None = None
        self._sent = 0  # statements sent on the connection so far
        self._sent_before = 0  # ... of which published before the start reading

    def own_statement(self) -> None:
        """Note one more statement the monitor sends (a transaction of its own)."""
        self._sent += 1

    def choose(self, connection: psycopg.Connection) -> None:
        """Choose the source (see `statements_source`), once."""
        self.source, self._sql = statements_source(connection, self.create_extension)
        self._chosen = True

    def start(self, connection: psycopg.Connection) -> None:
        """Take the start reading (choosing the source first if not done yet)."""
        if not self._chosen:
            self.choose(connection)
        self._before = self._read(connection)
        self._sent_before = self._sent - 1  # the start reading is itself in the window

    def stop(self, connection: psycopg.Connection) -> int | None:
        """Statements (or transactions) since `start`; None if either reading failed."""
        after = self._read(connection)
        if after is None or self._before is None:
            return None
        if self.source == "pg_stat_statements":
            return after - self._before
        own = (self._sent - 1) - self._sent_before  # the end reading is not
        return max(0, after - self._before - own)

    def _read(self, connection: psycopg.Connection) -> int | None:
        if self.source is None:
            return None
        flush = self.source == "pg_stat_database.transactions"
        try:
            if flush and connection.info.server_version >= 150000:
                self.own_statement()
                # Publishes this backend's counts before it answers, the monitor's included.
                connection.execute(f"SELECT {MONITOR_MARKER} pg_stat_force_next_flush()")
            self.own_statement()
            row = connection.execute(self._sql).fetchone()  # type: ignore[call-overload]
        except Exception:  # the database went away: no count rather than a wrong one
            return None
        return int(row[0]) if row is not None and row[0] is not None else None


def statements_source(
    connection: psycopg.Connection, create_extension: bool = True
) -> tuple[StatementsSource | None, str]:
    """Where this database's statement count comes from, and the query that reads it.

    `pg_stat_statements` when its library is loaded: the extension is created in the
    database if missing and we may (never when the library is absent, where it could only
    fail later, nor with `create_extension` False: a target's database is only read).
    Otherwise `pg_stat_database`'s transactions; None if neither is readable.
    """
    import psycopg

    toplevel = "AND toplevel" if connection.info.server_version >= 140000 else ""
    statements_sql = _STATEMENTS_SQL.format(toplevel=toplevel)
    for attempt in ("read", "create"):
        try:
            connection.execute(statements_sql).fetchone()
        except psycopg.errors.UndefinedTable:
            if attempt == "create" or not create_extension or not _library_loaded(connection):
                break
            try:
                connection.execute(
                    f"CREATE EXTENSION IF NOT EXISTS {MONITOR_MARKER} pg_stat_statements"
                )
            except psycopg.Error:  # not allowed: not a superuser, say
                break
        except psycopg.Error:  # created, but the library is not loaded
            break
        else:
            return "pg_stat_statements", statements_sql
    try:
        connection.execute(_TRANSACTIONS_SQL).fetchone()
    except psycopg.Error:
        return None, ""
    return "pg_stat_database.transactions", _TRANSACTIONS_SQL


def _library_loaded(connection: psycopg.Connection) -> bool:
    import psycopg

    try:
        row = connection.execute(
            f"SELECT {MONITOR_MARKER} current_setting('shared_preload_libraries')"
        ).fetchone()
    except psycopg.Error:
        return False
    return row is not None and "pg_stat_statements" in str(row[0])
