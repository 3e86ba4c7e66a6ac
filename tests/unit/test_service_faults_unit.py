"""Which errors mean "the database cannot serve" (503) and which are bugs (500), on every
driver's real exception classes; and the request limits on a tiny app. No database."""

from __future__ import annotations

import gc
import threading
import time
import weakref

import anyio
import asyncpg
import psycopg
import psycopg2
import pytest
import sqlalchemy.exc
from anyio.abc import TaskGroup
from fastapi import FastAPI
from fastapi.testclient import TestClient
from psycopg import errors as pg
from psycopg_pool import PoolTimeout

from pgarena.service import limits
from pgarena.service.errors import is_unavailable
from pgarena.service.limits import RequestLimits


@pytest.mark.parametrize(
    "error",
    [
        asyncpg.exceptions.AdminShutdownError("terminating connection"),  # 57P01
        asyncpg.exceptions.CannotConnectNowError("the database system is starting up"),
        asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed"),  # 08003
        asyncpg.exceptions.TooManyConnectionsError("too many clients"),  # 53300
        asyncpg.exceptions.QueryCanceledError("statement timeout"),  # 57014
        asyncpg.exceptions.InternalClientError("cannot switch to state 12"),
        asyncpg.exceptions.InterfaceError("connection is closed"),
        pg.AdminShutdown("terminating connection"),
        pg.QueryCanceled("canceling statement due to statement timeout"),
        psycopg.OperationalError("server closed the connection unexpectedly"),
        # A frozen server: psycopg 3 gives up connecting after `connect_timeout`, through
        # SQLAlchemy on the async-psycopg3 stack (a 500 in pgarena chaos until it was seen).
        pg.ConnectionTimeout("connection timeout expired"),
        sqlalchemy.exc.OperationalError("SELECT 1", {}, pg.ConnectionTimeout("expired")),
        psycopg2.OperationalError("server closed the connection unexpectedly"),
        PoolTimeout("couldn't get a connection after 2.00 sec"),
        sqlalchemy.exc.TimeoutError("QueuePool limit of size 2 overflow 0 reached"),
        sqlalchemy.exc.OperationalError("SELECT 1", {}, pg.AdminShutdown()),
        # SQLAlchemy's asyncpg dialect: a plain DBAPIError, asyncpg's error as its cause.
        sqlalchemy.exc.DBAPIError("SELECT 1", {}, asyncpg.exceptions.AdminShutdownError()),
        sqlalchemy.exc.DBAPIError("SELECT 1", {}, Exception(), connection_invalidated=True),
        ConnectionRefusedError(111, "Connection refused"),
    ],
    ids=lambda error: type(error).__name__,
)
def test_database_faults_are_unavailable(error: BaseException) -> None:
    assert is_unavailable(error)


@pytest.mark.parametrize(
    "error",
    [
        asyncpg.exceptions.UndefinedTableError('relation "x" does not exist'),  # 42P01
        asyncpg.exceptions.UniqueViolationError("duplicate key"),  # 23505
        asyncpg.exceptions.InterfaceError("cannot perform operation: another operation"),
        pg.SyntaxError("syntax error at or near"),
        pg.UntranslatableCharacter("unsupported Unicode escape sequence"),
        psycopg2.ProgrammingError("can't adapt type 'dict'"),
        sqlalchemy.exc.ProgrammingError("SELEC 1", {}, pg.SyntaxError()),
        sqlalchemy.exc.DBAPIError("SELECT 1", {}, asyncpg.exceptions.DataError("bad")),
        ValueError("a bug"),
    ],
    ids=lambda error: type(error).__name__,
)
def test_bugs_are_not_hidden_behind_a_503(error: BaseException) -> None:
    assert not is_unavailable(error)


def limited_app(**limits: object) -> tuple[FastAPI, threading.Event]:
    """An app whose `/stuck` never finishes until `release` is set, behind the limits."""
    app = FastAPI()
    release = threading.Event()

    @app.get("/stuck")
    def stuck() -> dict[str, str]:
        release.wait(10)  # a statement that hangs (a frozen database), released by the test
        return {"status": "finally"}

    @app.get("/fails-late")
    def fails_late() -> None:
        release.wait(10)
        raise RuntimeError("the driver gave up after the deadline")  # as a connect timeout does

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/echo")
    async def echo(body: dict[str, str]) -> dict[str, str]:
        return body

    async def no_cancel(pids: list[int]) -> None:
        pass

    options = {"max_body_bytes": 1024, "deadline": 0.3, "threads": 2, "queue_timeout": 0.2}
    options |= limits
    app.add_middleware(RequestLimits, exempt={"/health"}, cancel=no_cancel, **options)  # type: ignore[arg-type]
    return app, release


async def answer(
    app: FastAPI, path: str, tasks: TaskGroup
) -> tuple[int, dict[str, str], bytes, float]:
    """Call the app as a server would, in `tasks`; return the response and how long it took
    to arrive, while the app may still run.

    Not TestClient: it waits for the app to return, while a server sends the response as
    soon as it is written (the limits answer while the stuck endpoint still runs)."""
    scope = {"type": "http", "method": "GET", "path": path, "raw_path": path.encode(),
             "query_string": b"", "headers": [], "http_version": "1.1", "scheme": "http",
             "server": ("test", 80), "client": ("test", 1), "root_path": ""}  # fmt: skip
    messages: list[dict] = []
    done = anyio.Event()

    requested = []

    async def receive() -> dict:
        if not requested:
            requested.append(True)
            return {"type": "http.request", "body": b"", "more_body": False}
        await done.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        messages.append(message)
        if message["type"] == "http.response.body" and not message.get("more_body"):
            done.set()

    started = time.monotonic()
    tasks.start_soon(app, scope, receive, send)
    await done.wait()
    took = time.monotonic() - started
    start, body = messages[0], messages[-1]
    headers = {name.decode(): value.decode() for name, value in start["headers"]}
    return start["status"], headers, body["body"], took


def test_the_deadline_answers_503_while_the_endpoint_hangs() -> None:
    app, release = limited_app()

    async def scenario() -> tuple[int, dict[str, str], bytes, float]:
        async with anyio.create_task_group() as tasks:
            result = await answer(app, "/stuck", tasks)
            release.set()  # the stuck thread may go: the app returns, the test ends
        return result

    status, headers, body, took = anyio.run(scenario)
    assert (status, body) == (503, b'{"detail":"Request took too long"}')
    assert headers["retry-after"] == "1"
    assert took < 1.5  # the 0.3 s deadline, not the endpoint's 10 s


def test_an_error_after_the_deadline_answered_does_not_reach_the_server(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The client has its 503; the app failing later is logged, not raised to the server
    (which would log it as an unanswered request and drop the client's connection)."""
    app, release = limited_app()

    async def scenario() -> tuple[int, dict[str, str], bytes, float]:
        async with anyio.create_task_group() as tasks:  # the app's error would surface here
            result = await answer(app, "/fails-late", tasks)
            release.set()
        return result

    status, _, body, _ = anyio.run(scenario)
    assert (status, body) == (503, b'{"detail":"Request took too long"}')
    assert "error after the request was answered" in caplog.text


def test_past_the_threads_requests_are_shed_and_exempt_routes_still_answer() -> None:
    app, release = limited_app()
    answers: list[bytes] = []

    async def scenario() -> None:
        async with anyio.create_task_group() as tasks:

            async def ask(path: str) -> None:
                answers.append((await answer(app, path, tasks))[2])

            async with anyio.create_task_group() as asking:
                for _ in range(4):  # 4 requests for 2 threads
                    asking.start_soon(ask, "/stuck")
            await ask("/health")  # while both threads are still stuck
            release.set()

    anyio.run(scenario)
    # The two that got a thread hit the deadline; the two that did not were shed.
    assert (
        sorted(answers[:4])
        == [b'{"detail":"Request took too long"}'] * 2 + [b'{"detail":"Server busy"}'] * 2
    )
    assert answers[4] == b'{"status":"ok"}'


def test_bodies_over_the_limit_are_413_declared_or_streamed() -> None:
    app, _ = limited_app()
    with TestClient(app) as client:
        assert client.post("/echo", json={"a": "b"}).json() == {"a": "b"}
        declared = client.post("/echo", json={"a": "x" * 2000})
        assert (declared.status_code, declared.headers["connection"]) == (413, "close")
        streamed = client.post("/echo", content=iter([b'{"a": "', b"x" * 2000, b'"}']))
        assert streamed.status_code == 413


def test_a_cancelled_async_endpoint_is_stopped_at_the_deadline() -> None:
    app, _ = limited_app()
    stopped = threading.Event()

    @app.get("/waits")
    async def waits() -> None:
        try:
            await anyio.sleep(10)  # an awaited statement that does not return
        finally:
            stopped.set()

    with TestClient(app) as client:
        assert client.get("/waits").status_code == 503
        assert stopped.wait(2)


@pytest.mark.parametrize("path", ["/waits-past-deadline", "/watched"])
def test_a_finished_request_is_freed_without_the_garbage_collector(
    path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No reference cycle outlives a request, answered by the app after its client was
    watched or by the deadline: a cycle per request left to the collector cost a watched
    request 60k instructions, a third of what the limits cost."""
    monkeypatch.setattr(limits, "WATCH_AFTER_S", 0.0)  # every request is watched at once
    app, _ = limited_app()
    exchanges: list[weakref.ref] = []

    @app.get("/waits-past-deadline")
    async def waits_past_deadline() -> None:
        exchanges.append(weakref.ref(limits._current.get()))
        await anyio.sleep(10)  # stopped by the deadline's cancellation at 0.3 s

    @app.get("/watched")
    async def watched() -> dict[str, str]:
        exchange = limits._current.get()
        exchanges.append(weakref.ref(exchange))
        while exchange.watch is None:  # its timer is due at once: it starts next turn
            await anyio.sleep(0)
        return {"status": "ok"}

    async def scenario() -> int:
        async with anyio.create_task_group() as tasks:
            status = (await answer(app, path, tasks))[0]
        return status

    gc.disable()
    try:
        status = anyio.run(scenario)
        assert status == (503 if path == "/waits-past-deadline" else 200)
        assert len(exchanges) == 1 and exchanges[0]() is None
    finally:
        gc.enable()
