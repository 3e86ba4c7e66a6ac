"""HTTP/1.1 as the load generator speaks it: pre-rendered requests, minimally handled answers.

A request is rendered to bytes once per step when it has no placeholder, else per send with
the placeholders filled. Answers are parsed by llhttp through httptools (a uvicorn
dependency): it finds each answer's status, body and end (Content-Length or chunked) and
whether the server will close the connection, and reports anything that is not well-formed
HTTP/1.x as an error, which becomes a `ResponseError` with an error kind.

`ResponseReader` is on the hot path (once per answer): no future, no copy of a one-piece
body, one Python call per answer beyond llhttp's own callbacks.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Sequence
from random import Random

import httptools

from pgarena.bench.workloads import DataSizes, Step

FIELD = re.compile(r"\{([a-z_]+)\}")
JSON_ID = re.compile(rb'"id"\s*:\s*(\d+)')

PROTOCOL_ERROR = "protocol"


class ResponseError(Exception):
    """An answer that is not usable HTTP; `kind` is the error kind it is counted as."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind = kind


class ResponseReader:
    """The answers arriving on one connection, parsed by llhttp (Node.js's parser, through
    httptools) as the bytes come in, whatever the reads' boundaries.

    For each complete answer it calls `on_answer(status, body, close)`, `close` saying the
    server will close the connection. Measured on recorded uvicorn answers it costs ~0.45 us
    per answer where the hand-written parser it replaced cost 1.1 us (2.1 us chunked), and
    it is stricter: every malformed status line, length or chunk is an error at once.
    Not supported: a body framed by the server closing the connection (no length, not
    chunked); such an answer counts as a "disconnect" (uvicorn always sends a length).
    """

    __slots__ = ("_body", "_on_answer", "_parser")

    def __init__(self, on_answer: Callable[[int, bytes, bool], None]) -> None:
        self._parser = httptools.HttpResponseParser(self)
        self._body = b""
        self._on_answer = on_answer

    def feed(self, data: bytes) -> None:
        """Parse the bytes of one read; raises `ResponseError` on bytes that are not HTTP."""
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserCallbackError as error:
            # A bug in `on_answer`, not in the answer: let it surface as itself.
            raise (error.__context__ or error) from None
        except httptools.HttpParserError as error:
            raise ResponseError(PROTOCOL_ERROR, str(error)) from None

    # llhttp's callbacks, on the hot path: one or more `on_body`, then one completion.

    def on_body(self, body: bytes) -> None:
        self._body += body  # b"" + body is body itself: no copy for a one-piece body

    def on_message_complete(self) -> None:
        body, self._body = self._body, b""
        parser = self._parser
        self._on_answer(parser.get_status_code(), body, not parser.should_keep_alive())


def captured_id(body: bytes) -> str | None:
    """The `"id": N` of a JSON answer, which later steps of a scenario use as {id}."""
    match = JSON_ID.search(body)
    return match.group(1).decode() if match is not None else None


class Request:
    """A step compiled to bytes: rendered once when it has no placeholders."""

    def __init__(
        self, step: Step, host: str, prefix: str, values: dict[str, Callable[[], str]]
    ) -> None:
        self.step = step
        self.values = values
        path = prefix + step.path
        self.head_template = f"{step.method} {path} HTTP/1.1\r\nHost: {host}\r\n"
        self.body_template = step.body
        self.has_fields = bool(FIELD.search(path) or (step.body and FIELD.search(step.body)))
        self.constant = None if self.has_fields else self._render({})

    def _fill(self, template: str, captured: dict[str, str]) -> str:
        def value(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in captured:
                return captured[name]
            return self.values[name]()

        return FIELD.sub(value, template)

    def _render(self, captured: dict[str, str]) -> bytes:
        head = self._fill(self.head_template, captured) if self.has_fields else self.head_template
        if self.body_template is None:
            return (head + "\r\n").encode()
        body = self._fill(self.body_template, captured).encode()
        return (
            head.encode()
            + b"Content-Type: application/json\r\nContent-Length: "
            + str(len(body)).encode()
            + b"\r\n\r\n"
            + body
        )

    def build(self, captured: dict[str, str]) -> bytes:
        """The bytes to send, with `captured` ({"id": ...}) and fresh placeholder values."""
        return self.constant if self.constant is not None else self._render(captured)


def compile_scenario(
    steps: Sequence[Step], host: str, prefix: str, values: dict[str, Callable[[], str]]
) -> list[Request]:
    """The steps of a scenario as requests; an unknown placeholder is an error now, not a
    failure inside the event loop later ({id} is known after a step that captures it)."""
    known = set(values)
    requests = []
    for step in steps:
        fields = set(FIELD.findall(step.path + (step.body or "")))
        if unknown := fields - known:
            names = ", ".join(sorted(f"{{{name}}}" for name in unknown))
            raise ValueError(f"{step.method} {step.path}: unknown placeholder {names}")
        requests.append(Request(step, host, prefix, values))
        if step.capture_id:
            known.add("id")
    return requests


def placeholder_values(data: DataSizes, slow_ms: int, rng: Random) -> dict[str, Callable[[], str]]:
    """How each placeholder of a workload template gets its value."""
    randint = rng.randint
    # Unique across processes and runs: a random per-process token plus a counter.
    token = secrets.token_hex(4)
    counter = iter(range(1, 1 << 62))
    return {
        "user_id": lambda: str(randint(1, data.users)),
        "product_id": lambda: str(randint(1, data.products)),
        "order_id": lambda: str(randint(1, data.orders)),
        "world_id": lambda: str(randint(1, data.world)),
        "users_skip": lambda: str(randint(0, max(0, data.users - 10))),
        "unique": lambda: f"{token}n{next(counter)}",
        "slow_ms": lambda: str(slow_ms),
    }
