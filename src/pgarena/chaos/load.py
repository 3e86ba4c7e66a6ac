"""HTTP load for faults: closed-loop clients that record every request, and cut requests.

httpx on asyncio rather than the benchmark's load generator: a fault needs each request's
start, end and status (and whether a 503 said `Retry-After`), not throughput, and a few dozen
clients are far from what one event loop can drive. Requests that hang are kept waiting up to
`timeout_s` and recorded with their real duration, so a hang shows as a long request.
"""

from __future__ import annotations

import asyncio
import time
from types import TracebackType

import httpx

from pgarena.chaos.model import Sample


async def request(client: httpx.AsyncClient, method: str, path: str, **kwargs: object) -> Sample:
    """One request, recorded whatever happens to it."""
    start = time.monotonic()
    try:
        response = await client.request(method, path, **kwargs)  # type: ignore[arg-type]
    except httpx.TimeoutException:
        return Sample(start, time.monotonic(), "timeout")
    except httpx.HTTPError as error:  # refused, reset, closed: name it for the report
        return Sample(start, time.monotonic(), f"error ({type(error).__name__})")
    retry_after = "retry-after" in response.headers
    return Sample(start, time.monotonic(), str(response.status_code), retry_after)


class Load:
    """`clients` connections sending GET `path` back to back while the `async with` runs."""

    def __init__(self, base_url: str, path: str, clients: int, timeout_s: float) -> None:
        self.path = path
        self.clients = clients
        self.samples: list[Sample] = []
        self._client = httpx.AsyncClient(
            base_url=base_url,
            timeout=timeout_s,
            limits=httpx.Limits(max_connections=clients, max_keepalive_connections=clients),
        )
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    async def _loop(self) -> None:
        while not self._stop.is_set():
            sample = await request(self._client, "GET", self.path)
            self.samples.append(sample)
            if not sample.status.isdigit():
                # Refused while the server restarts its pool: do not spin on a dead socket.
                await asyncio.sleep(0.01)

    async def __aenter__(self) -> Load:
        self._tasks = [asyncio.create_task(self._loop()) for _ in range(self.clients)]
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # Requests in flight finish (or time out): a hang must be measured, not cut short.
        self._stop.set()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._client.aclose()


async def cut_requests(host: str, port: int, path: str, count: int, cut_after_s: float) -> None:
    """Send `count` requests at once and drop each connection `cut_after_s` later, as
    impatient clients (or a load balancer's timeout) do. Raw sockets: no client library
    would let us abandon a request this bluntly."""

    # At most 100 connecting at once: a 2-core server accepts slower than a loop connects,
    # and an overflowing accept queue would reset connections before they send anything.
    connecting = asyncio.Semaphore(100)

    async def one() -> None:
        async with connecting:
            _reader, writer = await asyncio.open_connection(host, port)
        writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode())
        await writer.drain()
        # The client's patience, not a stand-in for work: the server is busy meanwhile.
        await asyncio.sleep(cut_after_s)
        writer.transport.abort()  # RST, no graceful close: the client is simply gone

    results = await asyncio.gather(*(one() for _ in range(count)), return_exceptions=True)
    failures = [result for result in results if isinstance(result, BaseException)]
    if failures:
        raise RuntimeError(f"{len(failures)} of {count} cut requests not sent: {failures[0]!r}")
