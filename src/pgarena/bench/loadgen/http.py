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

import json
import re
import secrets
import ssl
from collections.abc import Callable, Iterable, Sequence
from random import Random
from urllib.parse import quote

import httptools

from pgarena.bench.workload_file import FIELD
from pgarena.bench.workloads import DataSizes, Step

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


def json_capture(body: bytes, captures: Sequence[tuple[str, str]]) -> dict[str, str] | None:
    """The values `captures` names ((placeholder, "data.id") pairs) in a JSON answer, as
    text; None when the answer is not JSON or lacks one of them (a "body" error).

    A path is keys and list indexes joined by dots; a string is taken as is, anything else
    as its JSON text (5, true, null)."""
    try:
        document = json.loads(body)
    except ValueError:
        return None
    values = {}
    for name, path in captures:
        value = document
        for key in path.split("."):
            if isinstance(value, dict) and key in value:
                value = value[key]
            elif isinstance(value, list) and key.isdigit() and int(key) < len(value):
                value = value[int(key)]
            else:
                return None
        values[name] = value if isinstance(value, str) else json.dumps(value)
    return values


def tls_context() -> ssl.SSLContext:
    """The TLS settings of an https target: the standard library's defaults, which verify
    the certificate and the host name against the system's CAs (or SSL_CERT_FILE's)."""
    return ssl.create_default_context()


def host_header(host: str, port: int, tls: bool) -> str:
    """The Host header for a server: the port is left out when it is the scheme's default."""
    name = f"[{host}]" if ":" in host else host
    return name if port == (443 if tls else 80) else f"{name}:{port}"


class Request:
    """A step compiled to bytes: rendered once when it has no placeholders."""

    def __init__(
        self,
        step: Step,
        host: str,
        prefix: str,
        values: dict[str, Callable[[], str]],
        think_s: float = 0.0,
    ) -> None:
        self.step = step
        self.values = values
        self.think_s = think_s  # the client's pause after this request's answer
        self.path_template = prefix + step.path
        names = {name.lower() for name, _ in step.headers}
        lines = [] if "host" in names else [f"Host: {host}\r\n"]
        lines += [f"{name}: {value}\r\n" for name, value in step.headers]
        if step.body is not None and "content-type" not in names:
            lines.append("Content-Type: application/json\r\n")
        self.headers_template = "".join(lines)
        self.body_template = step.body
        templates = (self.path_template, self.headers_template, step.body or "")
        self.has_fields = any(FIELD.search(template) for template in templates)
        self.constant = None if self.has_fields else self._render({})

    def _fill(self, template: str, captured: dict[str, str], escape: Callable[[str], str]) -> str:
        def value(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in captured:
                return escape(captured[name])
            return self.values[name]()

        return FIELD.sub(value, template)

    def _render(self, captured: dict[str, str]) -> bytes:
        # Captured values come from answers: quoted in a path, escaped in a JSON string.
        path = self._fill(self.path_template, captured, _quote)
        headers = self._fill(self.headers_template, captured, str)
        head = f"{self.step.method} {path} HTTP/1.1\r\n{headers}"
        if self.body_template is None:
            return (head + "\r\n").encode()
        escape = _json_escape if self.step.json_body else str
        body = self._fill(self.body_template, captured, escape).encode()
        return head.encode() + b"Content-Length: %d\r\n\r\n" % len(body) + body

    def build(self, captured: dict[str, str]) -> bytes:
        """The bytes to send, with `captured` ({"id": ...}) and fresh placeholder values."""
        return self.constant if self.constant is not None else self._render(captured)

    def check(self, status: int, body: bytes) -> str | dict[str, str]:
        """An answer's error kind, or the values it captures ({} when it captures none)."""
        step = self.step
        if status != step.expect_status:
            return f"status_{status}"
        if step.expect_body is not None and step.expect_body not in body:
            return "body"
        if step.capture_id:
            value = captured_id(body)
            return "body" if value is None else {"id": value}
        if step.captures:
            values = json_capture(body, step.captures)
            return "body" if values is None else values
        return _NOTHING


_NOTHING: dict[str, str] = {}


def _quote(value: str) -> str:
    return quote(value, safe="")


def _json_escape(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)[1:-1]


def compile_scenario(
    steps: Sequence[Step],
    host: str,
    prefix: str,
    values: dict[str, Callable[[], str]],
    think_s: float = 0.0,
    known: Iterable[str] = (),
) -> list[Request]:
    """The steps of a scenario as requests; an unknown placeholder is an error now, not a
    failure inside the event loop later (a captured name is known after the step that
    captures it, and `known` names the values a setup captured)."""
    names = set(values) | set(known)
    requests = []
    for step in steps:
        text = step.path + (step.body or "") + "".join(value for _, value in step.headers)
        if unknown := set(FIELD.findall(text)) - names:
            listed = ", ".join(sorted(f"{{{name}}}" for name in unknown))
            raise ValueError(f"{step.method} {step.path}: unknown placeholder {listed}")
        requests.append(Request(step, host, prefix, values, think_s))
        if step.capture_id:
            names.add("id")
        names.update(name for name, _ in step.captures)
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
