"""The load generator's HTTP/1.1: answers parsed byte by byte, requests rendered from steps."""

from __future__ import annotations

import random
import ssl

import pytest

from pgarena.bench.loadgen.http import (
    PROTOCOL_ERROR,
    ResponseError,
    ResponseReader,
    captured_id,
    compile_scenario,
    host_header,
    json_capture,
    placeholder_values,
    tls_context,
)
from pgarena.bench.workloads import DataSizes, Step

JSON_ANSWER = (
    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 22\r\n\r\n"
    b'{"id": 42, "ok": true}'
)
CHUNKED_ANSWER = (
    b'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{"id"\r\n4\r\n: 7}\r\n0\r\n\r\n'
)

Answer = tuple[int, bytes, bool]  # status, body, the server will close


class Connection:
    """The answers a reader finds in the reads of one connection."""

    def __init__(self) -> None:
        self.answers: list[Answer] = []
        self.reader = ResponseReader(lambda *answer: self.answers.append(answer))

    def read(self, *reads: bytes) -> list[Answer]:
        for data in reads:
            self.reader.feed(data)
        return self.answers


def answers(*reads: bytes) -> list[Answer]:
    return Connection().read(*reads)


def test_a_content_length_body_is_cut_at_its_length() -> None:
    assert answers(JSON_ANSWER) == [(200, b'{"id": 42, "ok": true}', False)]


def test_header_names_are_case_insensitive_and_the_length_may_come_last() -> None:
    answer = b"HTTP/1.1 201 Created\r\nX-A: b\r\nCONTENT-LENGTH: 2\r\n\r\n{}"

    assert answers(answer) == [(201, b"{}", False)]


def test_a_chunked_body_is_the_chunks_joined() -> None:
    assert answers(CHUNKED_ANSWER) == [(200, b'{"id": 7}', False)]


def test_chunk_extensions_and_trailers_are_skipped() -> None:
    answer = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
        b"3;name=value\r\nabc\r\n"
        b'A;x;y="q"\r\n0123456789\r\n'
        b"0\r\nServer-Timing: db;dur=1\r\nX-Other: 2\r\n\r\n"
    )

    assert answers(answer) == [(200, b"abc0123456789", False)]


@pytest.mark.parametrize("answer", [JSON_ANSWER, CHUNKED_ANSWER], ids=["length", "chunked"])
def test_an_answer_split_at_any_byte_is_complete_only_with_its_last_byte(answer: bytes) -> None:
    whole = answers(answer)
    for cut in range(1, len(answer)):
        connection = Connection()
        assert connection.read(answer[:cut]) == [], cut
        assert connection.read(answer[cut:]) == whole, cut


def test_an_answer_arriving_one_byte_per_read_is_complete_only_with_its_last_byte() -> None:
    connection = Connection()
    counts = [len(connection.read(bytes([byte]))) for byte in CHUNKED_ANSWER]

    assert counts == [0] * (len(CHUNKED_ANSWER) - 1) + [1]
    assert connection.answers == [(200, b'{"id": 7}', False)]


def test_two_pipelined_answers_in_one_read_are_both_found() -> None:
    connection = Connection()

    assert connection.read(CHUNKED_ANSWER + JSON_ANSWER + b"HTTP/1.1 2") == [
        (200, b'{"id": 7}', False),
        (200, b'{"id": 42, "ok": true}', False),
    ]
    assert connection.read(b"04 No Content\r\n\r\n")[-1] == (204, b"", False)


def test_connection_close_is_reported_so_the_client_reconnects() -> None:
    answer = b"HTTP/1.1 503 Busy\r\nConnection: Close\r\nContent-Length: 0\r\n\r\n"

    assert answers(answer) == [(503, b"", True)]


def test_http_1_0_closes_unless_it_asks_to_keep_alive() -> None:
    closing = b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\n{}"
    kept = b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\n{}"

    assert answers(closing) == [(200, b"{}", True)]
    assert answers(kept) == [(200, b"{}", False)]


@pytest.mark.parametrize("status", [204, 304])
def test_answers_without_a_body_end_with_their_head(status: int) -> None:
    # A 304 may announce the length of the body it does not send.
    answer = b"HTTP/1.1 %d X\r\nContent-Length: 120\r\n\r\n" % status

    assert answers(answer + JSON_ANSWER) == [
        (status, b"", False),
        (200, b'{"id": 42, "ok": true}', False),
    ]


def test_a_status_line_without_reason_phrase_is_accepted() -> None:
    assert answers(b"HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n") == [(200, b"", False)]


@pytest.mark.parametrize(
    "answer",
    [
        b"SSH-2.0-OpenSSH_9.6\r\n",  # no end of head yet: refused at once, not at the timeout
        b"<html>oops</html>\r\n\r\n",
        b"HTTP/2 200\r\n\r\n",
        b"HTTP/1.1 2x0 OK\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.1 2000 OK\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.1200 OK\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: -5\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 12abc\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length:\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n-5\r\nabc\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n+5\r\nabcde\r\n0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabcde\r\n0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + b"f" * 5000,
    ],
    ids=[
        "not-http",
        "html",
        "http2",
        "status-letters",
        "status-4-digits",
        "no-space",
        "negative-length",
        "length-letters",
        "empty-length",
        "chunk-size-letters",
        "negative-chunk",
        "signed-chunk",
        "chunk-overruns-size",
        "endless-chunk-size",
    ],
)
def test_malformed_answers_are_a_protocol_error(answer: bytes) -> None:
    with pytest.raises(ResponseError) as raised:
        answers(answer)

    assert raised.value.kind == PROTOCOL_ERROR


def test_an_error_in_the_answer_callback_is_not_mistaken_for_a_bad_answer() -> None:
    def on_answer(status: int, body: bytes, close: bool) -> None:
        raise KeyError("a bug in the client")

    with pytest.raises(KeyError, match="a bug in the client"):
        ResponseReader(on_answer).feed(JSON_ANSWER)


def test_the_id_is_captured_from_a_json_body() -> None:
    assert captured_id(b'{"name": "x", "id" : 1234}') == "1234"
    assert captured_id(b'{"name": "x"}') is None


# --- rendering ----------------------------------------------------------------------------


def render(*steps: Step, captured: dict[str, str] | None = None) -> list[bytes]:
    values = placeholder_values(DataSizes(users=5, products=3), 75, random.Random(1))
    requests = compile_scenario(steps, "127.0.0.1:8000", "/api", values)
    return [request.build(captured or {}) for request in requests]


def test_a_get_without_placeholders_is_rendered_once_with_its_host() -> None:
    values = placeholder_values(DataSizes(), 50, random.Random(1))
    (request,) = compile_scenario([Step("GET", "/health")], "db:8000", "", values)

    assert request.build({}) == b"GET /health HTTP/1.1\r\nHost: db:8000\r\n\r\n"
    assert request.build({}) is request.build({})


def test_placeholders_are_filled_within_the_data_sizes() -> None:
    values = placeholder_values(DataSizes(users=5), 75, random.Random(1))
    step = Step("GET", "/users/{user_id}?slow={slow_ms}")
    (request,) = compile_scenario([step], "127.0.0.1:8000", "/api", values)

    seen = {request.build({}) for _ in range(200)}

    assert seen == {
        b"GET /api/users/%d?slow=75 HTTP/1.1\r\nHost: 127.0.0.1:8000\r\n\r\n" % user
        for user in range(1, 6)
    }


def test_a_json_body_gets_its_content_type_and_byte_length() -> None:
    (request,) = render(Step("POST", "/orders", '{"product_id": {product_id}, "note": "été"}'))

    head, body = request.split(b"\r\n\r\n")
    assert head.startswith(b"POST /api/orders HTTP/1.1\r\nHost: 127.0.0.1:8000\r\n")
    assert b"\r\nContent-Type: application/json" in head
    assert head.endswith(b"\r\nContent-Length: %d" % len(body))
    assert len(body) == len(body.decode()) + 2  # "é" is two bytes
    assert body in {f'{{"product_id": {n}, "note": "été"}}'.encode() for n in (1, 2, 3)}


def test_unique_values_differ_on_every_request() -> None:
    step = Step("POST", "/users", '{"email": "{unique}@example.com"}')
    values = placeholder_values(DataSizes(), 50, random.Random(1))
    (request,) = compile_scenario([step], "h", "", values)

    bodies = {request.build({}) for _ in range(100)}

    assert len(bodies) == 100


def test_a_captured_id_fills_the_next_step() -> None:
    create = Step("POST", "/orders", '{"user_id": 1}', capture_id=True)
    read = Step("GET", "/orders/{id}")

    _, second = render(create, read, captured={"id": "987"})

    assert second.startswith(b"GET /api/orders/987 HTTP/1.1\r\n")


@pytest.mark.parametrize(
    "steps",
    [(Step("GET", "/orders/{id}"),), (Step("GET", "/x/{nope}"),)],
    ids=["id-before-capture", "unknown-name"],
)
def test_an_unknown_placeholder_is_refused_when_the_scenario_is_compiled(
    steps: tuple[Step, ...],
) -> None:
    with pytest.raises(ValueError, match="unknown placeholder"):
        render(*steps)


# --- what workload files add: headers, captures, Host, TLS ----------------------------------


def test_headers_and_captured_values_are_rendered_escaped_where_they_go() -> None:
    create = Step(
        "POST",
        "/carts/{cart}/items",
        '{"note": "for {who}"}',
        headers=(("Authorization", "Bearer {token}"), ("X-Api-Key", "k")),
        json_body=True,
    )
    captured = {"cart": "a b/c", "who": 'say "hi"', "token": "t0k"}

    (request,) = compile_scenario([create], "h", "", {}, known=captured)
    head, body = request.build(captured).split(b"\r\n\r\n")

    assert head.split(b"\r\n") == [
        b"POST /carts/a%20b%2Fc/items HTTP/1.1",
        b"Host: h",
        b"Authorization: Bearer t0k",
        b"X-Api-Key: k",
        b"Content-Type: application/json",
        b"Content-Length: %d" % len(body),
    ]
    assert body == b'{"note": "for say \\"hi\\""}'


def test_a_steps_own_host_and_content_type_replace_the_defaults() -> None:
    step = Step(
        "PUT", "/x", "a=1", headers=(("host", "api.example.com"), ("Content-Type", "text/plain"))
    )

    (request,) = compile_scenario([step], "127.0.0.1:8000", "", {})

    assert request.build({}) == (
        b"PUT /x HTTP/1.1\r\nhost: api.example.com\r\nContent-Type: text/plain\r\n"
        b"Content-Length: 3\r\n\r\na=1"
    )


def test_captures_follow_dotted_paths_and_a_missing_value_is_a_body_error() -> None:
    body = b'{"data": {"id": 7, "tags": ["a", "b"], "owner": {"name": "ann"}}, "ok": true}'
    paths = (("id", "data.id"), ("tag", "data.tags.1"), ("who", "data.owner.name"), ("ok", "ok"))

    assert json_capture(body, paths) == {"id": "7", "tag": "b", "who": "ann", "ok": "true"}
    assert json_capture(body, (("x", "data.missing"),)) is None
    assert json_capture(b"<html>", (("x", "id"),)) is None

    (request,) = compile_scenario([Step("POST", "/x", captures=paths[:1])], "h", "", {})
    assert request.check(200, body) == {"id": "7"}
    assert request.check(200, b'{"id": 7}') == "body"
    assert request.check(500, body) == "status_500"


def test_the_host_header_leaves_out_the_schemes_default_port() -> None:
    assert host_header("api.example.com", 443, tls=True) == "api.example.com"
    assert host_header("api.example.com", 80, tls=False) == "api.example.com"
    assert host_header("api.example.com", 8443, tls=True) == "api.example.com:8443"
    assert host_header("::1", 8000, tls=False) == "[::1]:8000"


def test_https_verifies_certificates_and_host_names() -> None:
    context = tls_context()

    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname
