"""One settings object for the whole of pgarena.

Values come from keyword arguments (the CLI), then environment variables (`PGARENA_*`,
plus the conventional `DATABASE_URL`), then the defaults below. Bad values fail at
construction, before any server or database is touched; the database URL is checked by
`pgarena.database.check_database_url`, which every command and the app factory call first.
This module imports nothing from pgarena: everything else depends on it, not the reverse.
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs
from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


def default_data_dir() -> Path:
    """Where the embedded PostgreSQL keeps its data unless told otherwise."""
    if os.geteuid() == 0:
        # As root the server runs as a separate system user that must be able to reach its
        # data directory; under /root/.cache that would mean opening /root to everyone.
        return Path("/var/lib/pgarena/postgres")
    return Path(platformdirs.user_cache_dir("pgarena")) / "postgres"


class Settings(BaseSettings):
    # hide_input_in_errors: a rejected DATABASE_URL must not reappear, password and all, in
    # the text of the validation error.
    model_config = SettingsConfigDict(
        env_prefix="PGARENA_", extra="forbid", frozen=True, hide_input_in_errors=True
    )

    # Database. No URL means: start the embedded PostgreSQL in `data_dir`.
    database_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("database_url", "PGARENA_DATABASE_URL", "DATABASE_URL"),
    )
    data_dir: Path = Field(default_factory=default_data_dir)
    database_name: str = "pgarena"

    # Server.
    stack: str = "async"
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    workers: int = Field(default=1, ge=1, le=64)

    # Connection pool, per worker process. Sync stacks run each request on a thread that
    # holds at most one connection, so `threads` defaults to the pool's maximum: a thread
    # never waits for a connection that other threads hold (the "QueuePool limit reached"
    # trap of 40 threads over a 5+10 pool).
    # No overflow by default: SQLAlchemy closes an overflow connection as soon as it is
    # returned, so under steady load beyond `pool_size` requests it opens and closes
    # PostgreSQL connections all the time (12-29 a second at 50 clients with 10 + 10),
    # and an ORM-vs-raw comparison would measure that churn. The pool is sized to the most
    # it will use; every stack gets the same limit, `max_connections`. Overflow remains an
    # option for bursty services that prefer churn to waiting.
    pool_size: int = Field(default=20, ge=1, le=1000)
    max_overflow: int = Field(default=0, ge=0, le=1000)
    # Seconds a request waits for a pooled connection before it is answered 503.
    pool_timeout: float = Field(default=2.0, gt=0)
    threads: int | None = Field(default=None, ge=1, le=1000)

    # DATABASE_URL reaches PostgreSQL through a pooler in transaction mode (PgBouncer): each
    # transaction may run on another backend, so no driver keeps prepared statements.
    transaction_pooler: bool = False

    # Health check: how long /health waits for the database before answering 503.
    health_timeout: float = Field(default=2.0, gt=0, le=60)

    # Bounds on every wait a request can meet (`service/limits.py` explains each). Past any
    # of them the client gets 503 with Retry-After, never a hang. 0 disables the deadline.
    request_deadline: float = Field(default=5.0, ge=0, le=3600)
    # Seconds PostgreSQL may spend on one statement; None: 80% of the deadline, so a slow
    # statement fails (and frees its connection) before the deadline answers for it.
    statement_timeout: float | None = Field(default=None, ge=0, le=3600)
    # Seconds a request of a sync stack waits for a worker thread before it is shed.
    queue_timeout: float = Field(default=2.0, gt=0, le=3600)
    # Largest request body accepted; a larger one is answered 413 before it is parsed.
    max_body_bytes: int = Field(default=1024 * 1024, ge=1)

    # PostgreSQL's `application_name` on every connection the server opens, so that
    # pg_stat_activity and the server's logs say whose a connection is (pgarena's harness
    # counts each server's connections by it). None: `pgarena-<stack>`.
    application_name: str | None = Field(default=None, max_length=63)

    @field_validator("database_url")
    @classmethod
    def _empty_url_is_none(cls, value: str | None) -> str | None:
        # Whether the URL is one pgarena accepts is `pgarena.database.check_database_url`'s
        # business: settings are the bottom layer and know nothing of URL spellings.
        return value or None

    @property
    def statement_timeout_ms(self) -> int:
        """PostgreSQL's `statement_timeout` for every connection, in ms; 0 means none."""
        if self.statement_timeout is not None:
            return round(self.statement_timeout * 1000)
        return round(self.request_deadline * 800)

    @property
    def postgres_application_name(self) -> str:
        """`application_name`, else `pgarena-<stack>`."""
        return self.application_name or f"pgarena-{self.stack}"

    @property
    def max_connections(self) -> int:
        """The most connections one worker process may open."""
        return self.pool_size + self.max_overflow

    @property
    def thread_count(self) -> int:
        """Threads running sync endpoints per worker: `threads`, else the pool's maximum.

        A sync stack holds a request in PostgreSQL per thread, so fewer threads than
        connections cap how many statements overlap: 2 threads serve `slow-db` (50 ms per
        request) at 40 requests/s where 20 serve 400. On quick reads fewer threads cost less:
        the drivers let go of the GIL around each libpq call and every thread queues to take
        it back (docs/performance.md: `sync-raw` switched context 24 times per request with
        20 threads, 5 with 2, and served 1.2x the requests).
        """
        return self.threads or self.max_connections
