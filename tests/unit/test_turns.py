"""`Turns`: connections for the asyncio stacks in arrival order, the wait bounded by the pool
timeout, and no turn lost to a caller that timed out or was cancelled."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Coroutine
from typing import Any

import pytest

from pgarena.service.turns import Turns


class NoConnection(Exception):
    """The stack's own "no connection in time" error."""


def at_once(take: Coroutine[Any, Any, None]) -> bool:
    """Whether a `take()` returns without waiting (a turn was free)."""
    try:
        take.send(None)
    except StopIteration:
        return True
    take.close()
    return False


def test_waiters_get_their_turns_in_arrival_order_and_a_newcomer_waits_behind_them() -> None:
    async def scenario() -> list[str]:
        turns = Turns(1, 5.0, NoConnection)
        await turns.take()
        order: list[str] = []

        async def request(name: str) -> None:
            await turns.take()
            order.append(name)
            await asyncio.sleep(0)  # holds its connection across a loop iteration
            turns.give_back()

        waiting = [asyncio.create_task(request(name)) for name in "abc"]
        await asyncio.sleep(0)  # all three wait
        turns.give_back()
        # A newcomer in the same iteration in which the turn went back: with
        # asyncio.Semaphore or asyncio.Queue it could take the turn before "a" wakes.
        newcomer = asyncio.create_task(request("newcomer"))
        await asyncio.gather(*waiting, newcomer)
        return order

    assert asyncio.run(scenario()) == ["a", "b", "c", "newcomer"]


def test_a_wait_past_the_pool_timeout_fails_with_the_stacks_error() -> None:
    async def scenario() -> tuple[list[BaseException | None], float]:
        turns = Turns(1, 0.05, NoConnection)
        await turns.take()  # held for good
        started = time.perf_counter()
        first = asyncio.create_task(turns.take())
        await asyncio.sleep(0.02)
        second = asyncio.create_task(turns.take())  # expires 20 ms after the first
        results = await asyncio.gather(first, second, return_exceptions=True)
        return list(results), time.perf_counter() - started

    (first, second), elapsed = asyncio.run(scenario())
    assert isinstance(first, NoConnection) and isinstance(second, NoConnection)
    assert str(first) == "no place free within 0.05 s"
    assert elapsed >= 0.07  # the second waited its own 50 ms, not the first's deadline


def test_no_turn_is_lost_to_a_waiter_that_timed_out_or_was_cancelled() -> None:
    async def scenario() -> list[bool]:
        turns = Turns(2, 0.05, NoConnection)
        await turns.take()
        await turns.take()
        timed_out = asyncio.create_task(turns.take())
        cancelled = asyncio.create_task(turns.take())
        await asyncio.sleep(0)
        cancelled.cancel()
        with pytest.raises(NoConnection):
            await timed_out
        # Handed a turn and cancelled in the same iteration: it passes the turn on.
        handed = asyncio.create_task(turns.take())
        behind = asyncio.create_task(turns.take())
        await asyncio.sleep(0)
        turns.give_back()
        handed.cancel()
        await asyncio.wait_for(behind, 1.0)  # got the turn that `handed` passed on
        assert handed.cancelled()
        turns.give_back()  # behind's turn
        turns.give_back()  # the second held since the start
        return [at_once(turns.take()), at_once(turns.take()), at_once(turns.take())]

    assert asyncio.run(scenario()) == [True, True, False]  # both turns free, and no third
