"""Child processes that pgarena starts (servers, PgBouncer, Locust workers): a port for them,
and their end when pgarena ends."""

from __future__ import annotations

import contextlib
import signal
import socket
import sys
from collections.abc import Callable


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def die_with_parent(sig: signal.Signals = signal.SIGTERM) -> Callable[[], None] | None:
    """A `preexec_fn` that has the child sent `sig` when its parent dies (Linux; None
    elsewhere), so that a killed pgarena leaves no server behind.

    The "parent" of PR_SET_PDEATHSIG is the *thread* that forked: a child started from a
    worker thread (asyncio.to_thread) is killed when that thread ends. Start children from a
    thread that lives as long as they should.
    """
    if sys.platform != "linux":
        return None

    def set_death_signal() -> None:  # pragma: no cover - runs in the child before exec
        with contextlib.suppress(Exception):
            import ctypes

            pr_set_pdeathsig = 1
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, sig)

    return set_death_signal
