"""Connections handed out in arrival order, for the two asyncio stacks.

An asyncio pool (SQLAlchemy's `AsyncAdaptedQueuePool`, asyncpg's `Pool`) hands a returned
connection to whoever asks first: `asyncio.Queue` wakes the longest waiter without
reserving the connection for it, and a request arriving in the same event-loop iteration
takes it; the woken waiter then queues again at the back. Under more clients than
connections some requests lose that race again and again, and p99 grows far beyond the
median (4-5x on /db at 50 clients for the async ORM stack, against 2x on the sync stacks,
whose thread pool, as large as the connection pool, admits requests in order: anyio's
limiter is FIFO).

`Turns` is a FIFO `asyncio.Semaphore` as large as the pool, taken before a connection is
asked for and given back after it is returned: the pool then always has a connection for
whoever holds a turn, so it never has a waiter, and requests wait here, in order. It also
spares asyncpg's pool its timeout: `pool.acquire(timeout=...)` wraps every checkout in
`asyncio.wait_for`, a task per request on Python 3.11; a turn sets a timer only when it
has to wait.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable


class Turns:
    def __init__(self, size: int, timeout: float, timed_out: Callable[[str], Exception]) -> None:
        # asyncio.Semaphore is FIFO: while anyone waits, a newcomer waits behind them.
        self._semaphore = asyncio.Semaphore(size)
        self._timeout = timeout
        self._timed_out = timed_out  # the stack's own "no connection in time" error

    async def take(self) -> None:
        """Wait, in arrival order, for a connection to be free for this caller; as long as
        the pool timeout at most (then the stack's timeout error: a 503)."""
        if not self._semaphore.locked():
            await self._semaphore.acquire()  # returns at once: no timer to set up
            return
        try:
            async with asyncio.timeout(self._timeout):
                await self._semaphore.acquire()
        except TimeoutError:
            raise self._timed_out(f"no connection free within {self._timeout:g} s") from None

    def give_back(self) -> None:
        """End the turn (after the connection went back to the pool)."""
        self._semaphore.release()
