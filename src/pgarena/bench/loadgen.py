"""The load generator: raw HTTP/1.1 keep-alive on asyncio + uvloop, in its own processes.

Why not an HTTP client library: on a 2-core machine the generator competes with the server
for CPU, so every microsecond it spends per request is taken from the thing being measured.
Here a request is a pre-rendered byte string, a response is parsed just far enough to find
its status and body (Content-Length or chunked), and latencies go into a plain list that is
turned into an HDR histogram once the measurement window has closed.

Two ways to apply load:
- closed loop (`rate=None`): N connections, each sends its next request when the previous
  one has been answered (like `wrk -c N` or `ab -c N`);
- open loop (`rate=R`): requests are due at fixed times R per second, shared by the N
  connections; latency is measured from the time a request was *due*, not from when a free
  connection got round to sending it, so a server that stalls cannot hide the stall
  (coordinated omission).

`LoadGenerator` runs jobs in worker processes (spawned once, reused across cells) and merges
their histograms and counts; `run_job` runs one job in the current process.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import multiprocessing
import os
import random
import re
import secrets
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from multiprocessing.connection import Connection, wait
from typing import Any

import numpy as np
from hdrh.histogram import HdrHistogram

from pgarena.bench.workloads import DataSizes, Step, Workload
from pgarena.results.histograms import histogram_from_latencies, latency_summary_ms, new_histogram

# Error kinds always present in a result, so a zero is visible; `status_NNN` is added for
# each unexpected status seen.
ERROR_KINDS = ("connect", "timeout", "disconnect", "body")

WARMUP, MEASURE, DONE = 0, 1, 2


@dataclass(frozen=True)
class LoadJob:
    """Everything a generator needs to load one server for one cell."""

    host: str
    port: int
    workload: Workload
    connections: int
    duration_s: float | None = 10.0  # measured window; None when `requests` is set
    requests: int | None = None  # or: stop after this many measured requests
    warmup_s: float = 0.0  # load applied first, recorded but not counted
    rate: float | None = None  # open loop: requests due per second (all connections)
    data: DataSizes = field(default_factory=DataSizes)
    slow_ms: int = 50
    timeout_s: float = 10.0
    path_prefix: str = ""
    seed: int = 0
    progress_interval_s: float = 0.5

    @property
    def mode(self) -> str:
        """ "open" with a fixed arrival rate, else "closed"."""
        return "open" if self.rate else "closed"


@dataclass
class LoadResult:
    """What one job measured (merged across generator processes)."""

    mode: str
    duration_s: float
    requests: int  # answered or failed attempts within the window
    ok: int  # answered with the expected status and body
    errors: dict[str, int]
    histogram: HdrHistogram  # latency of the `ok` requests, microseconds
    warmup_duration_s: float
    warmup_requests: int
    generator_cpu_s: float
    processes: int = 1
    aborted: bool = False

    @property
    def rps(self) -> float:
        """Successful requests per second of measured time."""
        return self.ok / self.duration_s if self.duration_s > 0 else 0.0

    @property
    def error_count(self) -> int:
        """Failed requests of every kind."""
        return sum(self.errors.values())

    def latency_ms(self) -> dict[str, float | None]:
        """p50/p90/p99/p99.9/max/mean in milliseconds (None without a successful request)."""
        return latency_summary_ms(self.histogram)

    def encoded_histogram(self) -> str:
        """The histogram in HdrHistogram's compressed base64 form (mergeable elsewhere)."""
        return self.histogram.encode().decode("ascii")


@dataclass(frozen=True)
class Progress:
    """A live reading during a job, for the progress line."""

    phase: str  # "warmup" or "measure"
    elapsed_s: float  # in this phase
    rps: float  # successful requests/s over the last interval
    p99_ms: float | None  # over the last interval
    ok: int  # in this phase so far
    errors: int


# --- HTTP/1.1 -----------------------------------------------------------------------------

_FIELD = re.compile(r"\{([a-z_]+)\}")
_CONTENT_LENGTH = re.compile(rb"\r\ncontent-length:[ \t]*(\d+)", re.IGNORECASE)
_CHUNKED = re.compile(rb"\r\ntransfer-encoding:[^\r]*chunked", re.IGNORECASE)
_CONNECTION_CLOSE = re.compile(rb"\r\nconnection:[ \t]*close", re.IGNORECASE)
_JSON_ID = re.compile(rb'"id"\s*:\s*(\d+)')


class _Failure(Exception):
    """A request that got no usable answer; `kind` is its error kind."""

    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind


def _parse_response(buffer: bytes | bytearray) -> tuple[int, bytes, int, bool] | None:
    """(status, body, bytes consumed, server will close) or None while incomplete."""
    head_end = buffer.find(b"\r\n\r\n")
    if head_end < 0:
        return None
    if not buffer.startswith(b"HTTP/1."):
        raise _Failure("disconnect")
    status = int(buffer[9:12])
    # Searching the buffer in place (pos/endpos) avoids copying the head.
    close = _CONNECTION_CLOSE.search(buffer, 0, head_end) is not None
    body_start = head_end + 4
    match = _CONTENT_LENGTH.search(buffer, 0, head_end)
    if match is not None:
        end = body_start + int(match.group(1))
        if len(buffer) < end:
            return None
        return status, bytes(buffer[body_start:end]), end, close
    if _CHUNKED.search(buffer, 0, head_end) is not None:
        return _parse_chunked(buffer, body_start, status, close)
    if status in (204, 304) or status < 200:
        return status, b"", body_start, close
    # No length: the body ends when the server closes (rare; uvicorn always sends one).
    return None


def _parse_chunked(
    buffer: bytes | bytearray, position: int, status: int, close: bool
) -> tuple[int, bytes, int, bool] | None:
    chunks: list[bytes] = []
    while True:
        line_end = buffer.find(b"\r\n", position)
        if line_end < 0:
            return None
        size = int(bytes(buffer[position:line_end]).split(b";")[0], 16)
        data_start = line_end + 2
        if size == 0:
            trailer_end = buffer.find(b"\r\n\r\n", line_end)
            if trailer_end < 0:
                return None
            return status, b"".join(chunks), trailer_end + 4, close
        if len(buffer) < data_start + size + 2:
            return None
        chunks.append(bytes(buffer[data_start : data_start + size]))
        position = data_start + size + 2


class _Request:
    """A step compiled to bytes: constant when it has no placeholders."""

    def __init__(self, step: Step, host: str, prefix: str, values: dict[str, Callable[[], str]]):
        self.step = step
        self.values = values
        path = prefix + step.path
        self.head_template = f"{step.method} {path} HTTP/1.1\r\nHost: {host}\r\n"
        self.body_template = step.body
        self.has_fields = bool(_FIELD.search(path) or (step.body and _FIELD.search(step.body)))
        self.constant = None if self.has_fields else self._render({})

    def _fill(self, template: str, captured: dict[str, str]) -> str:
        def value(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in captured:
                return captured[name]
            return self.values[name]()

        return _FIELD.sub(value, template)

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
        return self.constant if self.constant is not None else self._render(captured)


def _placeholder_values(job: LoadJob, rng: random.Random) -> dict[str, Callable[[], str]]:
    data = job.data
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
        "slow_ms": lambda: str(job.slow_ms),
    }


# --- one job, in the current process ------------------------------------------------------


class _Run:
    """Shared state of the clients of one job."""

    def __init__(self, job: LoadJob, report: Callable[[str, Any], None]) -> None:
        self.job = job
        self.report = report
        self.loop = asyncio.get_running_loop()
        self.rng = random.Random(job.seed)
        values = _placeholder_values(job, self.rng)
        host = f"{job.host}:{job.port}"
        self.scenarios = [
            [_Request(step, host, job.path_prefix, values) for step in scenario.steps]
            for scenario in job.workload.scenarios
        ]
        self.weights = [scenario.weight for scenario in job.workload.scenarios]
        self.phase = WARMUP
        self.latencies: list[int] = []
        self.interval_latencies: list[int] = []
        self.ok = 0
        self.requests = 0
        self.errors: dict[str, int] = dict.fromkeys(ERROR_KINDS, 0)
        self.warmup_requests = 0
        self.warmup_ok = 0
        self.warmup_errors = 0
        self.remaining = job.requests  # requests mode: measured requests left to claim
        self.finished = asyncio.Event()
        # Open loop: request k is due at start + k / rate, whoever ends up sending it.
        self.interval_ns = int(1e9 / job.rate) if job.rate else 0
        self.schedule_start = time.perf_counter_ns()
        self.next_slot = 0
        self.phase_started = time.perf_counter()
        self.measure_started = self.phase_started
        self.measure_ended: float | None = None
        self.cpu_started = time.process_time()
        self.cpu_used = 0.0
        self.warmup_duration = 0.0

    # -- phases --

    def start_measuring(self) -> None:
        """End the warmup: from now on answers are counted."""
        if self.phase != WARMUP:
            return
        now = time.perf_counter()
        self.warmup_duration = now - self.phase_started if self.job.warmup_s > 0 else 0.0
        self.phase = MEASURE
        self.phase_started = self.measure_started = now
        self.cpu_started = time.process_time()
        self.interval_latencies = []
        self.report("phase", "measuring")
        if self.job.duration_s is not None:
            self.loop.call_later(self.job.duration_s, self.stop)

    def stop(self) -> None:
        """Close the measured window (idempotent)."""
        if self.phase == DONE:
            return
        if self.phase == WARMUP:  # stopped during warmup: an empty measurement
            self.start_measuring()
        self.measure_ended = time.perf_counter()
        self.cpu_used = time.process_time() - self.cpu_started
        self.phase = DONE
        self.report("phase", "measured")
        self.finished.set()

    # -- accounting (the hot path: keep it lean) --

    def pick(self) -> list[_Request]:
        if len(self.scenarios) == 1:
            return self.scenarios[0]
        return self.rng.choices(self.scenarios, self.weights)[0]

    def claim(self) -> int | None:
        """Permission to send one more request: its due time (ns), 0 when requests are
        not scheduled (closed loop), None when the job has nothing more to send."""
        if self.phase == DONE:
            return None
        if self.remaining is not None and self.phase == MEASURE:
            if self.remaining <= 0:
                return None
            self.remaining -= 1
        if not self.interval_ns:
            return 0
        due = self.schedule_start + self.next_slot * self.interval_ns
        self.next_slot += 1
        return due

    def count_error(self, kind: str) -> None:
        if self.phase == MEASURE:
            self.requests += 1
            self.errors[kind] = self.errors.get(kind, 0) + 1
            self._maybe_finish()
        elif self.phase == WARMUP:
            self.warmup_requests += 1
            self.warmup_errors += 1

    def count_answer(self, step: Step, status: int, body: bytes, latency_ns: int) -> bool:
        """Check one answer and count it in the current phase; True when it was correct."""
        body_ok = (step.expect_body is None or step.expect_body in body) and (
            not step.capture_id or _JSON_ID.search(body) is not None
        )
        if status != step.expect_status:
            kind = f"status_{status}"
        elif not body_ok:
            kind = "body"
        else:
            if self.phase == MEASURE:
                self.requests += 1
                self.ok += 1
                latency_us = latency_ns // 1000
                self.latencies.append(latency_us)
                self.interval_latencies.append(latency_us)
                self._maybe_finish()
            elif self.phase == WARMUP:
                self.warmup_requests += 1
                self.warmup_ok += 1
            return True
        self.count_error(kind)
        return False

    def _maybe_finish(self) -> None:
        if self.job.requests is not None and self.requests >= self.job.requests:
            self.stop()

    async def watchdog(self, clients: list[_Client]) -> None:
        """Fail requests older than the timeout; cheaper than one timer per request."""
        step = min(0.1, self.job.timeout_s / 4)
        timeout_ns = int(self.job.timeout_s * 1e9)
        while self.phase != DONE:
            await asyncio.sleep(step)
            limit = time.perf_counter_ns() - timeout_ns
            for client in clients:
                if client.waiting and client.sent < limit:
                    client.fail("timeout")

    async def clock(self) -> None:
        """Report progress every interval while the job runs."""
        interval = self.job.progress_interval_s
        phase, last_ok, last_time = self.phase, 0, time.perf_counter()
        while self.phase != DONE:
            await asyncio.sleep(interval)
            now = time.perf_counter()
            if self.phase != phase:  # counters restart with each phase
                phase, last_ok, last_time = self.phase, 0, self.phase_started
            if phase == DONE:
                return
            measuring = phase == MEASURE
            ok = self.ok if measuring else self.warmup_ok
            recent, self.interval_latencies = self.interval_latencies, []
            self.report(
                "progress",
                {
                    "phase": "measure" if measuring else "warmup",
                    "elapsed_s": now - self.phase_started,
                    "rps": (ok - last_ok) / (now - last_time) if now > last_time else 0.0,
                    "p99_ms": float(np.percentile(recent, 99)) / 1000 if recent else None,
                    "ok": ok,
                    "errors": sum(self.errors.values()) if measuring else self.warmup_errors,
                },
            )
            last_ok, last_time = ok, now


class _Client(asyncio.Protocol):
    """One connection slot: sends a request, and from the callback that receives the answer,
    the next one. No future and no task switch per request: the answer's bytes arrive in
    `data_received`, which counts them and writes the next request right away (as wrk does).
    A lost connection is re-opened; the slot lives for the whole job."""

    def __init__(self, run: _Run) -> None:
        self.run = run
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.scenario: list[_Request] = []
        self.step = 0
        self.captured: dict[str, str] = {}
        self.waiting = False  # a request is in flight
        self.sent = 0  # when it was sent, or due (open loop), perf_counter_ns
        self.timer: asyncio.TimerHandle | None = None
        self.stopped = False

    # -- connection --

    def open(self) -> None:
        if not self.stopped and self.run.phase != DONE:
            self.run.loop.create_task(self._connect())

    async def _connect(self) -> None:
        run = self.run
        try:
            await asyncio.wait_for(
                run.loop.create_connection(lambda: self, run.job.host, run.job.port),
                run.job.timeout_s,
            )
        except (TimeoutError, OSError):
            run.count_error("connect")
            # A refused connect returns at once: wait a little instead of spinning.
            self.timer = run.loop.call_later(0.05, self.open)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports do not subclass asyncio.Transport, hence no isinstance check.
        self.transport = transport  # type: ignore[assignment]
        if self.stopped:  # the job ended while this connection was being opened
            transport.abort()  # type: ignore[attr-defined]
            return
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buffer.clear()
        self.step = len(self.scenario)  # a new connection starts a new scenario
        self.next()

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        if self.waiting:
            self.waiting = False
            self.run.count_error("disconnect")
        self.open()

    def fail(self, kind: str) -> None:
        """Give up on the request in flight (timeout, garbage) and reconnect."""
        if self.waiting:
            self.waiting = False
            self.run.count_error(kind)
        if self.transport is not None:
            self.transport.abort()  # connection_lost re-opens

    def stop(self) -> None:
        self.stopped = True
        if self.timer is not None:
            self.timer.cancel()
        if self.transport is not None:
            self.transport.abort()

    # -- requests --

    def next(self) -> None:
        """Send the next request of the scenario (a new scenario after the last step)."""
        run = self.run
        if self.stopped or self.transport is None:
            return
        if self.step >= len(self.scenario):
            self.scenario = run.pick()
            self.step = 0
            self.captured = {}
        due = run.claim()
        if due is None:
            return
        if due:
            delay = due - time.perf_counter_ns()
            if delay > 0:
                self.timer = run.loop.call_later(delay / 1e9, self.send, due)
                return
        self.send(due)

    def send(self, due: int = 0) -> None:
        if self.stopped or self.transport is None:
            return
        payload = self.scenario[self.step].build(self.captured)
        # Open loop: latency counts from when the request was due, not from when it went.
        self.sent = due or time.perf_counter_ns()
        self.waiting = True
        self.transport.write(payload)

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer
        if not self.waiting:
            buffer += data
            return
        try:
            if buffer:
                buffer += data
                parsed = _parse_response(buffer)
                if parsed is None:
                    return
                del buffer[: parsed[2]]
            else:
                # The usual case, a whole answer in one read: parse it without copying.
                parsed = _parse_response(data)
                if parsed is None:
                    buffer += data
                    return
                if parsed[2] < len(data):
                    buffer += data[parsed[2] :]
        except (_Failure, ValueError):
            self.fail("disconnect")
            return
        status, body, _, close = parsed
        self.waiting = False
        request = self.scenario[self.step]
        step = request.step
        if self.run.count_answer(step, status, body, time.perf_counter_ns() - self.sent):
            if step.capture_id:
                match = _JSON_ID.search(body)
                assert match is not None  # checked by count_answer
                self.captured["id"] = match.group(1).decode()
            self.step += 1
        else:
            self.step = len(self.scenario)  # a failed step abandons its scenario
        if close:
            assert self.transport is not None
            self.transport.close()  # connection_lost re-opens
            return
        self.next()


async def drive(
    job: LoadJob,
    report: Callable[[str, Any], None] = lambda kind, value: None,
    stop_event: asyncio.Event | None = None,
) -> dict[str, Any]:
    """Run one job on the running event loop; returns the raw result of this process.

    `report(kind, value)` receives ("phase", "measuring"|"measured") and ("progress", dict).
    Setting `stop_event` ends the measurement early (the result is marked aborted).
    """
    if job.connections < 1:
        raise ValueError("connections must be >= 1")
    if (job.duration_s is None) == (job.requests is None):
        raise ValueError("give exactly one of duration_s and requests")
    # No cyclic garbage collection while loading: the hot path makes no cycles, and a
    # collection pass over a growing latency list is a pause the server would not cause.
    collecting = gc.isenabled()
    gc.disable()
    try:
        return await _drive(job, report, stop_event)
    finally:
        if collecting:
            gc.enable()


async def _drive(
    job: LoadJob, report: Callable[[str, Any], None], stop_event: asyncio.Event | None
) -> dict[str, Any]:
    run = _Run(job, report)
    if job.warmup_s > 0:
        run.loop.call_later(job.warmup_s, run.start_measuring)
    else:
        run.start_measuring()
    clients = [_Client(run) for _ in range(job.connections)]
    for client in clients:
        client.open()
    helpers = [
        asyncio.ensure_future(run.watchdog(clients)),
        asyncio.ensure_future(run.clock()),
    ]
    finished = asyncio.ensure_future(run.finished.wait())
    waiters: set[asyncio.Future[Any]] = {finished}
    stopper = asyncio.ensure_future(stop_event.wait()) if stop_event is not None else None
    if stopper is not None:
        waiters.add(stopper)
    await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    aborted = stopper is not None and stopper.done()
    run.stop()
    for client in clients:
        client.stop()
    for task in (*helpers, finished):
        task.cancel()
    if stopper is not None:
        stopper.cancel()
    await asyncio.gather(*helpers, finished, return_exceptions=True)
    assert run.measure_ended is not None
    return {
        "mode": job.mode,
        "duration_s": run.measure_ended - run.measure_started,
        "requests": run.requests,
        "ok": run.ok,
        "errors": run.errors,
        "histogram": histogram_from_latencies(run.latencies).encode().decode("ascii"),
        "warmup_duration_s": run.warmup_duration,
        "warmup_requests": run.warmup_requests,
        "generator_cpu_s": run.cpu_used,
        "aborted": aborted,
    }


def _new_event_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop ships with uvicorn[standard]
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def run_job(job: LoadJob) -> LoadResult:
    """Run one job in this process (no live progress); for calibration and small tools."""
    loop = _new_event_loop()
    try:
        raw = loop.run_until_complete(drive(job))
    finally:
        loop.close()
    return merge_results([raw])


def merge_results(raws: list[dict[str, Any]]) -> LoadResult:
    """Add up the results of the processes that shared one job."""
    histogram = new_histogram()
    errors: dict[str, int] = dict.fromkeys(ERROR_KINDS, 0)
    for raw in raws:
        if raw["histogram"]:
            histogram.decode_and_add(raw["histogram"].encode("ascii"))
        for kind, count in raw["errors"].items():
            errors[kind] = errors.get(kind, 0) + count
    return LoadResult(
        mode=raws[0]["mode"],
        duration_s=max(raw["duration_s"] for raw in raws),
        requests=sum(raw["requests"] for raw in raws),
        ok=sum(raw["ok"] for raw in raws),
        errors=errors,
        histogram=histogram,
        warmup_duration_s=max(raw["warmup_duration_s"] for raw in raws),
        warmup_requests=sum(raw["warmup_requests"] for raw in raws),
        generator_cpu_s=sum(raw["generator_cpu_s"] for raw in raws),
        processes=len(raws),
        aborted=any(raw["aborted"] for raw in raws),
    )


def split_job(job: LoadJob, parts: int) -> list[LoadJob]:
    """Share one job between `parts` processes: connections, rate and requests divided."""
    parts = max(1, min(parts, job.connections))
    jobs = []
    for index in range(parts):
        connections = job.connections // parts + (1 if index < job.connections % parts else 0)
        requests = None
        if job.requests is not None:
            requests = job.requests // parts + (1 if index < job.requests % parts else 0)
        jobs.append(
            replace(
                job,
                connections=connections,
                requests=requests,
                rate=job.rate / parts if job.rate else None,
                seed=job.seed * 1000 + index,
            )
        )
    return jobs


# --- worker processes ---------------------------------------------------------------------


def _worker_main(control: Connection) -> None:
    """A generator process: run jobs sent over `control` until told to exit."""
    loop = _new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        while True:
            message = control.recv()
            if message[0] == "exit":
                return
            job: LoadJob = message[1]
            stop_event = asyncio.Event()

            def on_control(event: asyncio.Event = stop_event) -> None:
                # Only "stop" can arrive while a job runs. The loop made the descriptor
                # non-blocking; a whole message is there, but recv wants blocking reads.
                os.set_blocking(control.fileno(), True)
                with contextlib.suppress(EOFError, OSError):
                    control.recv()
                os.set_blocking(control.fileno(), False)
                event.set()

            loop.add_reader(control.fileno(), on_control)
            try:
                raw = loop.run_until_complete(
                    drive(job, lambda kind, value: control.send((kind, value)), stop_event)
                )
            except Exception as error:  # reported to the parent, which records the cell
                control.send(("error", f"{type(error).__name__}: {error}"))
                continue
            finally:
                loop.remove_reader(control.fileno())
                os.set_blocking(control.fileno(), True)
            control.send(("result", raw))
    except (EOFError, KeyboardInterrupt):
        return
    finally:
        loop.close()


class LoadGenerator:
    """Generator worker processes, started once and reused for every cell of a run.

    The parent process only orchestrates: it never sends a request itself.
    """

    def __init__(self, processes: int = 1) -> None:
        if processes < 1:
            raise ValueError("processes must be >= 1")
        self._context = multiprocessing.get_context("spawn")
        self._workers = [self._spawn() for _ in range(processes)]

    def _spawn(self) -> tuple[multiprocessing.process.BaseProcess, Connection]:
        parent_end, child_end = self._context.Pipe()
        process = self._context.Process(
            target=_worker_main, args=(child_end,), name="pgarena-loadgen", daemon=True
        )
        process.start()
        child_end.close()
        return process, parent_end

    def _replace_dead_workers(self) -> None:
        """A worker that died (killed, crashed) is replaced, so one bad cell stays one."""
        for index, (process, control) in enumerate(self._workers):
            if not process.is_alive():
                control.close()
                self._workers[index] = self._spawn()

    @property
    def pids(self) -> list[int]:
        """Process ids of the generator processes (for resource accounting)."""
        return [process.pid for process, _ in self._workers if process.pid is not None]

    def run(
        self,
        job: LoadJob,
        on_progress: Callable[[Progress], None] | None = None,
        on_phase: Callable[[str], None] | None = None,
        should_abort: Callable[[], bool] | None = None,
    ) -> LoadResult:
        """Run `job` split across the worker processes and merge what they measured.

        `on_phase("measuring"|"measured")` is called when every process has entered/left
        the measured window (the runner snapshots resources there). `should_abort` is polled
        a few times a second; when it returns True the processes stop early.
        """
        self._replace_dead_workers()
        jobs = split_job(job, len(self._workers))
        workers = self._workers[: len(jobs)]
        try:
            for (_, control), part in zip(workers, jobs, strict=True):
                control.send(("job", part))
        except OSError as error:
            raise RuntimeError(f"load generator process unreachable: {error}") from None
        pending = {control: index for index, (_, control) in enumerate(workers)}
        results: dict[int, dict[str, Any]] = {}
        failures: list[str] = []
        phases: dict[str, int] = {}
        latest: dict[int, dict[str, Any]] = {}
        aborted = False
        while pending:
            ready = wait(list(pending), timeout=0.25)
            if should_abort is not None and not aborted and should_abort():
                aborted = True
                for control in pending:
                    with contextlib.suppress(OSError):
                        control.send(("stop",))
            for control in ready:
                index = pending[control]
                try:
                    kind, value = control.recv()
                except (EOFError, OSError):
                    failures.append("load generator process died")
                    del pending[control]
                    continue
                if kind == "result":
                    results[index] = value
                    del pending[control]
                elif kind == "error":
                    failures.append(value)
                    del pending[control]
                elif kind == "phase":
                    phases[value] = phases.get(value, 0) + 1
                    if phases[value] == len(workers) and on_phase is not None:
                        on_phase(value)
                elif kind == "progress":
                    latest[index] = value
                    if on_progress is not None and len(latest) == len(workers):
                        on_progress(_merge_progress(list(latest.values())))
                        latest.clear()
        if failures:
            raise RuntimeError(failures[0])
        merged = merge_results([results[index] for index in sorted(results)])
        merged.aborted = merged.aborted or aborted
        return merged

    def close(self) -> None:
        """Ask the processes to exit; kill any that do not."""
        for process, control in self._workers:
            with contextlib.suppress(OSError, BrokenPipeError):
                control.send(("exit",))
            process.join(timeout=2)
            if process.is_alive():
                process.kill()
                process.join(timeout=2)
            control.close()
        self._workers = []

    def __enter__(self) -> LoadGenerator:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _merge_progress(readings: list[dict[str, Any]]) -> Progress:
    p99s = [reading["p99_ms"] for reading in readings if reading["p99_ms"] is not None]
    return Progress(
        phase=readings[0]["phase"],
        elapsed_s=max(reading["elapsed_s"] for reading in readings),
        rps=sum(reading["rps"] for reading in readings),
        # The worst process's p99 is an upper bound of the merged p99; good enough live.
        p99_ms=max(p99s) if p99s else None,
        ok=sum(reading["ok"] for reading in readings),
        errors=sum(reading["errors"] for reading in readings),
    )


def cpu_count() -> int:
    """CPUs this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
