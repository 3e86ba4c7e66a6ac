"""Bounds on every request: body size, deadline, client disconnect and, on sync stacks, the
wait for a worker thread. Past any of them the client gets an answer at once (413, or 503
with Retry-After), never a hang, and the work nobody waits for any more is stopped.

`RequestLimits` is one pure ASGI middleware (Starlette's BaseHTTPMiddleware would add a
memory stream per request and cannot answer while the endpoint still runs). It runs on every
request that touches the database, so it is built from the cheapest parts that do the job:
the app runs in the request's own task inside one anyio `CancelScope`, and a request still
running after `WATCH_AFTER_S` gets one small task that waits for its client to leave (most
are answered sooner and never pay for it; a client that left in that time is noticed then).
An anyio task group with the app in a task of its own, as this middleware was first written,
cost 40% of async-raw's `/db` throughput (0.26x its `/json` against 0.43x for the route
exempted, in one `pgarena run`).

No request has a timer of its own: one timer, every `SWEEP_S` while requests are inside,
looks at them, oldest first, for a watch to start or a deadline passed, and stops at the
first one younger than `WATCH_AFTER_S`. A watch thus starts 50-75 ms in, and a deadline is
answered up to 25 ms late. A timer per request for each (`call_later`, then cancelled when
the app returns, as nearly all do) cost 15,000 of the 655,000 instructions of async-raw's
`GET /db` at 50 clients (`benchmarks/instructions.py`); the sweep, a dictionary entry.

- **Body size**: a `Content-Length` over `max_body_bytes` is answered 413 before a byte of
  the body is read; a chunked body is counted as it streams and refused at the first byte
  over. The body is read before the app starts (FastAPI reads all of it anyway), so FastAPI
  never parses one that is too large, and a 10 MB JSON costs nothing. The deadline starts
  after it: a slow upload holds its own socket and nothing else, no connection and no
  thread.
- **Deadline** (`request_deadline`): when it passes, the sweep answers 503 then, from a
  task of its own, and cancels the app's scope; the answer never waits for the app to stop,
  which it may not do soon: a sync store call's thread cannot be interrupted (anyio waits for
  it, shielded, which is why the cancellation is an anyio scope's and not the task's), and
  an async driver may spend seconds cancelling a statement on a frozen server (psycopg 3
  waits up to 10 s for its cancel request). What the app sends after that is dropped. The
  statement timeout (`Settings.statement_timeout_ms`, set on every connection by the stacks)
  is below the deadline, so on a live but slow database the statement fails first, frees
  its connection and answers 503 itself.
- **Client disconnect**: the work stops instead of running on for nobody. Cancelling the
  app is not enough: a sync stack's thread cannot be cancelled at all, and on an async
  stack the pool closes a connection that a cancelled task left mid-statement, while
  PostgreSQL runs the statement to its end (asyncpg drops its own cancel request when the
  connection is closed). So the statements themselves are cancelled in PostgreSQL: each
  stack registers the backend of every connection a request holds (`hold_backend` at
  checkout, `drop_backend` at checkin) and on disconnect `pg_cancel_backend` is sent for
  each, over the service's own connection (`health.ControlConnection`). The statement fails
  with 57014, the endpoint returns, its thread and connection are free again; the app's
  scope is cancelled when it has not returned `CANCEL_GRACE_S` later. What stays impossible:
  stopping Python code between two statements; it runs until its next statement fails or
  it returns, which for this API is microseconds. A request still waiting for a thread or a
  connection never starts. A connection given back between the cancel's lookup and its
  arrival could have its next statement cancelled: that request answers 503 with
  Retry-After, the one cost of the race.
- **Queue** (sync stacks): at most `thread_count` requests are inside the app at once, so
  none waits for a thread, a wait that no pool timeout bounds (the issue that made sync
  stacks answer nothing for 90 s). Others wait at most `queue_timeout` for a place, in
  arrival order (`turns.py`), then get 503. Each request uses at most one thread at a time
  (its store call, `routes/sync_api.py`), so this is exactly the thread pool's capacity.

Routes that touch no request-pool connection (`/health`, `/metrics`, `/json`, `/plaintext`,
the docs) are exempt from all but the body size: they are cheap, bounded by their own
timeouts, and must answer while the rest is saturated (busy is not unhealthy). They pay
nothing at all.
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from contextvars import ContextVar
from typing import Any

import anyio
from pydantic_core import to_json

from pgarena.service.errors import RETRY_AFTER_S
from pgarena.service.turns import Turns

log = logging.getLogger("pgarena.service")
# How long a request whose client left gets to unwind by itself once its statements are
# cancelled in PostgreSQL, before its scope is cancelled.
CANCEL_GRACE_S = 1.0
# How long a request runs before its client is watched for leaving (0: from the start).
WATCH_AFTER_S = 0.05
# How often the requests inside are looked at for a watch to start or a deadline passed.
SWEEP_S = 0.025

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# The request being served, seen by the stack's code on the request's thread or task
# (anyio copies the context into worker threads), so it can register its connections.
_current: ContextVar[Exchange | None] = ContextVar("pgarena_request", default=None)


def backend_pid(connection: Any) -> int:
    """The server process behind a driver's connection (SQLAlchemy's async adapters wrap
    the driver's, which they call `driver_connection`)."""
    driver = getattr(connection, "driver_connection", connection)
    if hasattr(driver, "get_server_pid"):  # asyncpg
        return int(driver.get_server_pid())
    return int(driver.info.backend_pid)  # psycopg2, psycopg 3


def hold_backend(pid: int) -> None:
    """The current request took the connection to server process `pid` from its pool."""
    exchange = _current.get()
    if exchange is not None:
        with exchange.lock:
            exchange.backends.add(pid)


def drop_backend(pid: int) -> None:
    """The current request gave that connection back: never cancel it on its behalf."""
    exchange = _current.get()
    if exchange is not None:
        with exchange.lock:
            exchange.backends.discard(pid)


class Exchange:
    """One request between the server and the app: the body, the answer, the connections."""

    def __init__(self, receive: Receive, send: Send, loop: asyncio.AbstractEventLoop) -> None:
        self._receive = receive
        self._send = send
        self.body: deque[Message] = deque()  # read before the app starts, handed to it
        self.scope = anyio.CancelScope()  # the app's: cancelled when nobody waits any more
        self.app_done = loop.create_future()
        self.client_gone = loop.create_future()
        self.response_started = False
        self.response_complete = False
        self.answered = False  # we answered for the app: drop whatever it sends
        self.answering: asyncio.Task[None] | None = None
        self.watch: asyncio.Task[None] | None = None
        self.lock = threading.Lock()
        self.backends: set[int] = set()  # server pids of the connections the request holds

    async def read_body(self, max_body: int) -> bool:
        """Read the whole body, counting it; False if the client left or it was too large
        (then answered 413)."""
        size = 0
        while True:
            message = await self._receive()
            if message["type"] != "http.request":  # http.disconnect
                return False
            size += len(message.get("body", b""))
            if size > max_body:
                await self.answer(413, "Request body too large")
                return False
            self.body.append(message)
            if not message.get("more_body", False):
                return True

    async def receive(self) -> Message:
        """The app's `receive`: the body as it was read, then the disconnect."""
        if self.body:
            return self.body.popleft()
        await asyncio.shield(self.client_gone)
        return {"type": "http.disconnect"}

    async def send(self, message: Message) -> None:
        """The app's `send`, silenced once the middleware answered instead."""
        if self.answered:
            return
        if message["type"] == "http.response.start":
            self.response_started = True
        elif message["type"] == "http.response.body" and not message.get("more_body"):
            self.response_complete = True
        await self._send(message)

    async def answer(self, status: int, detail: str) -> None:
        """Answer for the app, unless it started its own response already."""
        if self.response_started:
            return
        self.answered = self.response_started = True
        await send_error(self._send, status, detail)

    def answer_soon(self, status: int, detail: str) -> None:
        """`answer`, from a task of its own: the app may go on running meanwhile, and
        whatever it sends from now on is dropped."""
        if not self.response_started:
            self.answered = self.response_started = True
            self.answering = asyncio.ensure_future(send_error(self._send, status, detail))

    def held_backends(self) -> list[int]:
        with self.lock:
            return sorted(self.backends)


async def send_error(send: Send, status: int, detail: str) -> None:
    """A whole JSON error response; a 503 says when to retry, a 413 closes the connection
    (the unread body would otherwise be parsed as the next request)."""
    body = to_json({"detail": detail})
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    if status == 503:
        headers.append((b"retry-after", str(RETRY_AFTER_S).encode()))
    if status == 413:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def declared_length(scope: Scope) -> int:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return 0  # not ours to judge: the server rejects a malformed length
    return 0


class RequestLimits:
    """The bounds of the module docstring, as one pure ASGI middleware."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body_bytes: int,
        deadline: float,
        threads: int | None,
        queue_timeout: float,
        exempt: Iterable[str],
        cancel: Callable[[list[int]], Awaitable[None]] | None,
    ) -> None:
        self.app = app
        self.max_body = max_body_bytes
        self.deadline = deadline or math.inf  # 0 disables
        # The places in the app, in arrival order (`turns.py`); None: an async stack.
        self.slots = Turns(threads, queue_timeout, TimeoutError) if threads else None
        self.exempt = frozenset(exempt)
        # pg_cancel_backend for each pid; None behind a transaction pooler, whose clients see
        # PgBouncer's own made-up process ids, not PostgreSQL's: the statement timeout and
        # the scope's cancellation are what stop the work there.
        self.cancel = cancel
        # The requests inside the app (or waiting for a place), oldest first, with the loop
        # time each came in and its scope; and the loop the sweep runs on, None when idle.
        self._inside: dict[Exchange, tuple[float, Scope]] = {}
        self._sweeping: asyncio.AbstractEventLoop | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if declared_length(scope) > self.max_body:
            await send_error(send, 413, "Request body too large")
            return
        if scope["path"] in self.exempt:
            await self.app(scope, receive, send)
            return
        # Asked once: on CPython 3.11 each `get_running_loop` is a getpid() system call.
        loop = asyncio.get_running_loop()
        exchange = Exchange(receive, send, loop)
        if not await exchange.read_body(self.max_body):
            return
        token = _current.set(exchange)  # before the watch starts: it copies the context
        self._inside[exchange] = (loop.time(), scope)
        if self._sweeping is not loop:  # idle, or a loop that is gone (tests run several)
            self._sweeping = loop
            loop.call_later(SWEEP_S, self._sweep)
        if WATCH_AFTER_S <= 0:
            self._start_watch(exchange)
        try:
            with exchange.scope:
                await self._run_app(scope, exchange)
        except Exception:
            if not exchange.answered:
                raise  # a bug: Starlette's outer handler answers 500 and logs it
            # The client has our 503 already; re-raising would make the server log the error
            # as unanswered and close a connection that is fine. Logged all the same.
            log.exception("error after the request was answered")
        finally:
            _current.reset(token)
            del self._inside[exchange]
            exchange.app_done.set_result(None)
            if exchange.watch is not None:
                if not exchange.client_gone.done():
                    exchange.watch.cancel()  # else it ends by itself, after its cancel and grace
                # The watch's task holds the request's context, which holds the exchange: kept
                # here, the pair is a cycle that only the garbage collector frees, which was
                # half of what a watch cost (60k instructions per watched request).
                exchange.watch = None
            if exchange.answering is not None:
                await exchange.answering  # the server must not see the app end unanswered
                exchange.answering = None  # its task holds the context: the same cycle

    async def _run_app(self, scope: Scope, exchange: Exchange) -> None:
        if self.slots is None:
            await self.app(scope, exchange.receive, exchange.send)
            return
        try:
            await self.slots.take()
        except TimeoutError:
            await exchange.answer(503, "Server busy")
            return
        try:
            await self.app(scope, exchange.receive, exchange.send)
        finally:
            self.slots.give_back()

    def _sweep(self) -> None:
        """Start the watch of each request inside for `WATCH_AFTER_S`, stop each past the
        deadline; again in `SWEEP_S` while any is inside."""
        loop = asyncio.get_running_loop()
        now = loop.time()
        soonest = min(WATCH_AFTER_S, self.deadline)
        for exchange, (arrived, scope) in list(self._inside.items()):
            if now - arrived < soonest:
                break  # the others came in later still
            if exchange.watch is None and now - arrived >= WATCH_AFTER_S:
                self._start_watch(exchange)
            if now - arrived >= self.deadline and not exchange.scope.cancel_called:
                self._too_late(exchange, scope)
        if self._inside:
            loop.call_later(SWEEP_S, self._sweep)
        else:
            self._sweeping = None

    def _too_late(self, exchange: Exchange, scope: Scope) -> None:
        """The deadline passed: answer 503 now, and stop the app (async stacks at their next
        await; a thread finishes first, holding the request's task but not the answer)."""
        log.warning("deadline passed on %s", scope["path"])
        exchange.answer_soon(503, "Request took too long")
        exchange.scope.cancel()

    def _start_watch(self, exchange: Exchange) -> None:
        exchange.watch = asyncio.get_running_loop().create_task(self._watch_client(exchange))

    async def _watch_client(self, exchange: Exchange) -> None:
        """Wait for the client to leave; if it leaves before its answer is complete, stop
        the request's statements in PostgreSQL, then the app."""
        await exchange._receive()  # the body is read: only the disconnect can come
        if exchange.response_complete or exchange.app_done.done():
            return
        exchange.client_gone.set_result(None)
        if self.cancel is not None and (backends := exchange.held_backends()):
            await self.cancel(backends)
            # Its statements now fail with 57014 within milliseconds: let the app unwind by
            # itself, so its connections go back to the pool clean. Cancelling it
            # mid-statement instead makes the driver cancel or close the connection itself
            # (asyncpg: a new connection per cancel request, then a reconnect), which after
            # a storm of departures kept a fresh request waiting for a connection for most
            # of a second.
            await asyncio.wait([exchange.app_done], timeout=CANCEL_GRACE_S)
        if not exchange.app_done.done():
            exchange.scope.cancel()
