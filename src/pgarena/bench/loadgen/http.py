"""HTTP/1.1 as the load generator speaks it: pre-rendered requests, minimally parsed answers.

A request is rendered to bytes once per step when it has no placeholder, else per send with
the placeholders filled. An answer is parsed just far enough to know its status, its body
and where it ends (Content-Length, chunked, or the connection closing), and whether the
server will close the connection; anything that is not well-formed HTTP/1.x is reported as
a `ResponseError` with an error kind, never a hang or a crash of the client.

`parse_response` is on the hot path (once per answer): it returns a plain tuple and does
its searches in place on the receive buffer, without copying the head.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Sequence
from random import Random

from pgarena.bench.workloads import DataSizes, Step

FIELD = re.compile(r"\{([a-z_]+)\}")
JSON_ID = re.compile(rb'"id"\s*:\s*(\d+)')

_STATUS_LINE = re.compile(rb"HTTP/1\.([01]) (\d\d\d)[ \r]")
# With `endpos` set to the end of the head, `$` matches there: the last header line ends too.
_CONTENT_LENGTH = re.compile(rb"\r\ncontent-length:[ \t]*(\d+)[ \t]*(?=\r|$)", re.IGNORECASE)
_ANY_CONTENT_LENGTH = re.compile(rb"\r\ncontent-length:", re.IGNORECASE)
_CHUNKED = re.compile(rb"\r\ntransfer-encoding:[^\r]*chunked", re.IGNORECASE)
_CONNECTION = re.compile(rb"\r\nconnection:([^\r]*)", re.IGNORECASE)
_CHUNK_SIZE = re.compile(rb"([0-9a-fA-F]+)[ \t]*(?:;|$)")

PROTOCOL_ERROR = "protocol"
MAX_HEAD = 64 * 1024  # a head longer than this is garbage, not a slow server
MAX_CHUNK_LINE = 4 * 1024

# (status, body, bytes consumed, the server will close the connection)
Response = tuple[int, bytes, int, bool]


class ResponseError(Exception):
    """An answer that is not usable HTTP; `kind` is the error kind it is counted as."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind = kind


def _malformed(detail: str) -> ResponseError:
    return ResponseError(PROTOCOL_ERROR, detail)


def parse_response(buffer: bytes | bytearray, eof: bool = False) -> Response | None:
    """The first answer in `buffer`, or None while it is incomplete.

    `eof` says the server has closed the connection: an answer without Content-Length or
    chunked encoding then ends with the bytes received (HTTP/1.1's third way to frame a body).
    Raises `ResponseError` for bytes that cannot become a valid answer.
    """
    head_end = buffer.find(b"\r\n\r\n")
    if head_end < 0:
        if not buffer.startswith(b"HTTP/1."[: len(buffer)]):
            raise _malformed("not an HTTP/1.x status line")
        if len(buffer) > MAX_HEAD:
            raise _malformed(f"no end of head in {MAX_HEAD} bytes")
        return None
    status_line = _STATUS_LINE.match(buffer)
    if status_line is None:
        raise _malformed("not an HTTP/1.x status line")
    status = int(status_line.group(2))
    close = False
    connection = _CONNECTION.search(buffer, 0, head_end)
    if connection is not None:
        close = b"close" in connection.group(1).lower()
    if status_line.group(1) == b"0":  # HTTP/1.0 keeps a connection open only when asked
        close = connection is None or b"keep-alive" not in connection.group(1).lower()
    body_start = head_end + 4
    if status in (204, 304) or status < 200:
        return status, b"", body_start, close
    match = _CONTENT_LENGTH.search(buffer, 0, head_end)
    if match is not None:
        end = body_start + int(match.group(1))
        if len(buffer) < end:
            return None
        return status, bytes(buffer[body_start:end]), end, close
    if _ANY_CONTENT_LENGTH.search(buffer, 0, head_end) is not None:
        raise _malformed("Content-Length is not a number")
    if _CHUNKED.search(buffer, 0, head_end) is not None:
        return _parse_chunked(buffer, body_start, status, close)
    if eof:  # no length: the body ended when the server closed (uvicorn always sends one)
        return status, bytes(buffer[body_start:]), len(buffer), True
    return None


def _parse_chunked(
    buffer: bytes | bytearray, position: int, status: int, close: bool
) -> Response | None:
    chunks: list[bytes] = []
    while True:
        line_end = buffer.find(b"\r\n", position)
        if line_end < 0:
            if len(buffer) - position > MAX_CHUNK_LINE:
                raise _malformed("chunk size line too long")
            return None
        size_field = _CHUNK_SIZE.match(buffer, position, line_end)
        if size_field is None:
            raise _malformed("chunk size is not hexadecimal")
        size = int(size_field.group(1), 16)
        data_start = line_end + 2
        if size == 0:
            # Optional trailer fields, then an empty line. Searching from the size line's
            # own CRLF finds "\r\n\r\n" right there when there are no trailers.
            trailer_end = buffer.find(b"\r\n\r\n", line_end)
            if trailer_end < 0:
                if len(buffer) - line_end > MAX_HEAD:
                    raise _malformed("no end of trailers")
                return None
            return status, b"".join(chunks), trailer_end + 4, close
        data_end = data_start + size
        if len(buffer) < data_end + 2:
            return None
        if buffer[data_end : data_end + 2] != b"\r\n":
            raise _malformed("chunk longer than its size")
        chunks.append(bytes(buffer[data_start:data_end]))
        position = data_end + 2


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
