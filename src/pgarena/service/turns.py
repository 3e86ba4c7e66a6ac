"""Places handed out in arrival order, each wait bounded: the asyncio stacks' connections,
and the sync stacks' places in the app (the request limits' queue, `limits.py`).

An asyncio pool (SQLAlchemy's `AsyncAdaptedQueuePool`, asyncpg's `Pool`) hands a returned
connection to whoever asks first: `asyncio.Queue` wakes the longest waiter without
reserving the connection for it, and a request arriving in the same event-loop iteration
takes it; the woken waiter then queues again at the back. Under more clients than
connections some requests lose that race again and again, and p99 grows far beyond the
median (4-5x on /db at 50 clients for the async ORM stack, against 2x on the sync stacks,
whose thread pool, as large as the connection pool, admits requests in order: anyio's
limiter is FIFO).

`Turns` hands out as many turns as the pool has connections, taken before a connection is
asked for and given back after it is returned: the pool then always has a connection for
whoever holds a turn, so it never has a waiter, and requests wait here, in order. A turn
given back goes straight to the longest waiter, so no newcomer can take it first. It also
spares asyncpg's pool its timeout: `pool.acquire(timeout=...)` wraps every checkout in
`asyncio.wait_for`, a task per request on Python 3.11.

The wait is bounded (by the pool timeout) with one timer for all waiters, set for the
oldest one's deadline: they queue in order and wait equally long, so nobody behind it can
expire first. This class was first an `asyncio.Semaphore` with an `asyncio.timeout` around
each wait. At 50 clients against 20 connections, where most requests wait, the timeouts
cost 29,000 of the 669,000 instructions of async-raw's `GET /db`, and the semaphore, which
scans its waiters on each call to tell whether it is free, 6,000 more; these turns cost
3,000 (`benchmarks/instructions.py`: 637,000 in all, and 1,478,000 against 1,526,000 on
`async`).

The sync stacks admit at most as many requests into the app as they have threads; the
others wait here for a place, at most the queue timeout. That queue was an
`anyio.Semaphore` inside `anyio.move_on_after`: a cancel scope and a timer per request, and,
even when a place was free, a shielded yield to the event loop. At 50 clients against 20
threads, `GET /db` costs 807,000 instructions on sync-raw with these turns (844,000 with
that queue) and 1,523,000 on sync (1,553,000).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable


class Turns:
    def __init__(self, size: int, timeout: float, timed_out: Callable[[str], Exception]) -> None:
        self._free = size  # turns nobody holds: never more than 0 while anyone waits
        self._timeout = timeout
        self._timed_out = timed_out  # e.g. the stack's own "no connection in time" error
        self._waiting: deque[tuple[float, asyncio.Future[None]]] = deque()  # oldest first
        self._timer: asyncio.TimerHandle | None = None  # for the oldest waiter's deadline

    async def take(self) -> None:
        """Wait, in arrival order, for a place (a connection, a place in the app); as long
        as the timeout at most (then `timed_out`'s error, which the service answers 503)."""
        if self._free:
            self._free -= 1
            return
        loop = asyncio.get_running_loop()
        waiter = loop.create_future()
        self._waiting.append((loop.time() + self._timeout, waiter))
        if self._timer is None:
            self._timer = loop.call_at(self._waiting[0][0], self._expire)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                self.give_back()  # the turn came as its caller was cancelled: pass it on
            raise

    def give_back(self) -> None:
        """End the turn (after the connection went back to the pool, or the app returned):
        the longest waiter gets it, or it is free."""
        while self._waiting:
            _, waiter = self._waiting.popleft()
            if not waiter.done():  # else cancelled, or timed out
                waiter.set_result(None)
                return
        self._free += 1

    def _expire(self) -> None:
        """Fail every waiter past its deadline, then wait for the next one's."""
        loop = asyncio.get_running_loop()
        while self._waiting and self._waiting[0][0] <= loop.time():
            _, waiter = self._waiting.popleft()
            if not waiter.done():
                waiter.set_exception(self._timed_out(f"no place free within {self._timeout:g} s"))
        self._timer = loop.call_at(self._waiting[0][0], self._expire) if self._waiting else None
