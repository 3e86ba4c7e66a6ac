"""What every stack sets on each new connection, spelled the way its driver wants it.

- `statement_timeout`, from `Settings.statement_timeout_ms` (80% of the request deadline by
  default): PostgreSQL itself stops a statement that runs too long, so a slow or locked
  query frees its connection, and a sync stack's thread, before the request's deadline
  answers 503 for it. It is sent in the startup packet (libpq `options`, asyncpg
  `server_settings`), so it costs no round trip.
- a connect timeout: on a server that accepts TCP but does not answer (frozen, overloaded),
  opening a connection gives up instead of waiting for the kernel's TCP timeout. libpq
  counts whole seconds and takes no less than 2.
- `application_name` (`Settings.postgres_application_name`, `pgarena-<stack>` by default):
  pg_stat_activity and PostgreSQL's logs say which service a connection belongs to. A
  pooler in transaction mode accepts it too (PgBouncer tracks it per client).

Behind a transaction pooler (`Settings.transaction_pooler`) no timeout goes in the startup
packet: PgBouncer refuses a startup parameter it does not know (asyncpg's
`server_settings`) and drops libpq's `options`. The pooler sets the timeout on each server
connection it opens instead (`database/pgbouncer.py`, `connect_query`).

A frozen server does not enforce its own statement timeout; the request deadline, which the
service keeps on its side, covers that case (`service/limits.py`).
"""

from __future__ import annotations

import math
from typing import Any

from pgarena.settings import Settings


def connect_timeout_s(settings: Settings) -> int:
    """Seconds to wait for a new connection: as long as a request waits for the pool."""
    return max(2, math.ceil(settings.pool_timeout))


def libpq_options(settings: Settings) -> dict[str, Any]:
    """Connection keywords for psycopg2 and psycopg 3 (libpq underneath)."""
    options: dict[str, Any] = {
        "connect_timeout": connect_timeout_s(settings),
        "application_name": settings.postgres_application_name,
    }
    if settings.statement_timeout_ms and not settings.transaction_pooler:
        options["options"] = f"-c statement_timeout={settings.statement_timeout_ms}"
    return options


def asyncpg_options(settings: Settings) -> dict[str, Any]:
    """Connection keywords for asyncpg (`connect`, `create_pool`)."""
    server_settings = {"application_name": settings.postgres_application_name}
    if settings.statement_timeout_ms and not settings.transaction_pooler:
        server_settings["statement_timeout"] = str(settings.statement_timeout_ms)
    return {"timeout": connect_timeout_s(settings), "server_settings": server_settings}
