"""The service's own line to PostgreSQL, apart from the requests' pool and threads: the
health check, and the cancelling of statements whose client went away.

Busy is not unhealthy: when every pooled connection is taken or every thread of a sync stack
is busy, `/health` must still say 200 if PostgreSQL answers, or an orchestrator restarts a
healthy instance exactly when it is loaded. So the check keeps one connection of its own,
on psycopg 3's async driver (part of every install), on the event loop: it never waits for
the pool, for a thread, or behind the requests' queue. The same connection sends
`pg_cancel_backend` for the request limits (`limits.py`), which need a connection that is
free exactly when the pool is not.

The check waits `health_timeout` for `SELECT 1`. It does not cancel a ping that overruns:
on a frozen server psycopg's cancellation would itself wait up to 10 s. The ping runs on in
the background and the next check waits for that same ping rather than stacking another
connection attempt on a server that does not answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math

import psycopg

log = logging.getLogger("pgarena.service")


class ControlConnection:
    def __init__(self, url: str, timeout: float, application_name: str) -> None:
        self.url = url  # libpq form
        self.timeout = timeout
        self.application_name = application_name
        self._connection: psycopg.AsyncConnection | None = None
        self._ping: asyncio.Task[bool] | None = None
        self._cancels: set[asyncio.Task[None]] = set()  # referenced until done
        self._connecting = asyncio.Lock()  # one new connection at a time, however many wait

    async def check(self) -> bool:
        """Whether PostgreSQL answered `SELECT 1` within the timeout."""
        if self._ping is None:
            self._ping = asyncio.ensure_future(self._ping_once())
        ping = self._ping
        done, _ = await asyncio.wait({ping}, timeout=self.timeout)
        if not done:
            log.warning("health check: no answer in %g s", self.timeout)
            return False
        if self._ping is ping:
            self._ping = None
        return ping.result()

    async def cancel(self, pids: list[int]) -> None:
        """Cancel the statements the server processes `pids` run; wait at most the timeout."""
        task = asyncio.ensure_future(self._cancel_once(pids))
        self._cancels.add(task)
        task.add_done_callback(self._cancels.discard)
        await asyncio.wait({task}, timeout=self.timeout)

    async def _connect(self) -> psycopg.AsyncConnection:
        async with self._connecting:
            if self._connection is None or self._connection.closed:
                self._connection = await psycopg.AsyncConnection.connect(
                    self.url,
                    autocommit=True,
                    connect_timeout=max(2, math.ceil(self.timeout)),
                    application_name=self.application_name,
                )
            return self._connection

    async def _execute(self, query: str, params: list[object] | None = None) -> None:
        """Run `query` on the control connection. A connection broken by a restart fails
        once; a fresh one says how things are now (and cancels what runs now)."""
        for attempt in range(2):
            connection = await self._connect()
            try:
                await connection.execute(query, params)
                return
            except (psycopg.Error, OSError):
                await self._discard(connection)
                if attempt:
                    raise

    async def _ping_once(self) -> bool:
        try:
            await self._execute("SELECT 1")
            return True
        except (psycopg.Error, OSError) as error:
            log.warning("health check failed: %s", type(error).__name__)
            return False

    async def _cancel_once(self, pids: list[int]) -> None:
        try:
            await self._execute(
                "SELECT pg_cancel_backend(pid) FROM unnest(%s::int[]) AS pid", [pids]
            )
        except (psycopg.Error, OSError) as error:  # the statement timeout ends them instead
            log.warning("could not cancel abandoned statements: %s", type(error).__name__)

    async def _discard(self, broken: psycopg.AsyncConnection | None = None) -> None:
        """Close the connection (only if it is still `broken`'s: requests that failed together
        must not close the fresh one the first of them opened)."""
        if broken is not None and self._connection is not broken:
            return
        connection, self._connection = self._connection, None
        if connection is not None:
            with contextlib.suppress(psycopg.Error, OSError):
                await connection.close()

    async def close(self) -> None:
        for task in [self._ping, *self._cancels]:
            if task is not None:
                task.cancel()
                with contextlib.suppress(BaseException):
                    await asyncio.wait({task}, timeout=1)
        await self._discard()
