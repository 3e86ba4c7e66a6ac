"""The client engine: one job's connections on the running event loop of one process.

`_Run` holds what the connections share (the phase, the counters, the list every latency
goes into, the open-loop schedule, the series marks); `_Client` is one connection slot, an
asyncio protocol that sends the next request from the very callback that received the
previous answer. `drive` runs a job and returns what this process measured.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import heapq
import random
import socket
import ssl
import time
from collections.abc import Callable

import numpy as np

from pgarena.bench.loadgen.http import (
    Request,
    ResponseError,
    ResponseReader,
    compile_scenario,
    host_header,
    placeholder_values,
    tls_context,
)
from pgarena.bench.loadgen.job import (
    ERROR_KINDS,
    LoadJob,
    PhaseChanged,
    ProcessResult,
    Progress,
)
from pgarena.bench.loadgen.series import SeriesRecorder
from pgarena.results.histograms import encode_histogram, histogram_from_latencies

WARMUP, MEASURE, DONE = 0, 1, 2

# After the window, how long the requests still in flight get to be answered before their
# connections are closed (see `_drain`).
DRAIN_S = 1.0

Report = Callable[[PhaseChanged | Progress], None]


class _Run:
    """Shared state of the clients of one job."""

    def __init__(self, job: LoadJob, report: Report) -> None:
        self.job = job
        self.report = report
        self.loop = asyncio.get_running_loop()
        self.rng = random.Random(job.seed)
        values = placeholder_values(job.data, job.slow_ms, self.rng)
        host = host_header(job.host, job.port, job.tls)
        self.ssl = tls_context() if job.tls else None
        # Sent once per connection slot before its scenarios; what it captures they use.
        self.setup = compile_scenario(job.workload.setup, host, job.path_prefix, values)
        setup_names = [name for step in job.workload.setup for name, _ in step.captures]
        self.scenarios = [
            compile_scenario(
                scenario.steps,
                host,
                job.path_prefix,
                values,
                scenario.think_time_s,
                known=setup_names,
            )
            for scenario in job.workload.scenarios
        ]
        self.weights = [scenario.weight for scenario in job.workload.scenarios]
        self.phase = WARMUP
        # Latencies (us) of every correct answer, warmup first: the series cuts it into
        # intervals and the result's histogram is its part from `measure_from` on.
        self.latencies: list[int] = []
        self.measure_from = 0
        self.ok = 0
        self.requests = 0
        self.errors: dict[str, int] = dict.fromkeys(ERROR_KINDS, 0)
        self.warmup_requests = 0
        self.warmup_errors = 0
        self.remaining = job.requests  # requests mode: measured requests left to claim
        self.finished = asyncio.Event()
        # Open loop: request k is due at start + k / rate, whoever ends up sending it.
        self.interval_ns = int(1e9 / job.rate) if job.rate else 0
        self.schedule_start = time.perf_counter_ns()
        self.next_slot = 0
        self.started = self.phase_started = self.measure_started = time.perf_counter()
        self.started_monotonic = time.monotonic()
        self.measure_ended: float | None = None
        self.cpu_started = time.process_time()
        self.cpu_used = 0.0
        self.warmup_duration = 0.0
        self.series = SeriesRecorder(self.loop, job.series_interval_s, self._counters)

    # -- phases --

    def begin(self) -> None:
        """Start the job: the warmup, or the measured window straight away."""
        if self.job.warmup_s > 0:
            self.series.begin_phase("warmup", self.job.warmup_s)
            self.loop.call_later(self.job.warmup_s, self.start_measuring)
        else:
            self.start_measuring()

    def start_measuring(self) -> None:
        """End the warmup: from now on answers are counted."""
        if self.phase != WARMUP:
            return
        now = time.perf_counter()
        self.warmup_duration = now - self.phase_started if self.job.warmup_s > 0 else 0.0
        self.phase = MEASURE
        self.phase_started = self.measure_started = now
        self.cpu_started = time.process_time()
        self.measure_from = len(self.latencies)
        self.series.begin_phase("measure", self.job.duration_s)
        self.report(PhaseChanged("measuring"))
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
        self.series.end()
        self.report(PhaseChanged("measured"))
        self.finished.set()

    def _counters(self) -> tuple[int, int]:
        """Correct answers and failed requests so far, both phases (read by the series at
        each interval boundary, so the hot path keeps no per-interval counter)."""
        return len(self.latencies), self.warmup_errors + self.requests - self.ok

    # -- accounting (the hot path: keep it lean) --

    def pick(self) -> list[Request]:
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

    def count_answer(self, error: str | None, latency_ns: int) -> bool:
        """Count one checked answer in the current phase; True when it was correct."""
        if error is None:
            if self.phase == MEASURE:
                self.requests += 1
                self.ok += 1
                self.latencies.append(latency_ns // 1000)
                self._maybe_finish()
            elif self.phase == WARMUP:
                self.warmup_requests += 1
                self.latencies.append(latency_ns // 1000)
            return True
        self.count_error(error)
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
        phase, last_answered, last_time = self.phase, 0, time.perf_counter()
        while self.phase != DONE:
            await asyncio.sleep(interval)
            now = time.perf_counter()
            if self.phase != phase:  # rates restart with each phase
                phase, last_answered, last_time = self.phase, self.measure_from, self.phase_started
            if phase == DONE:
                return
            measuring = phase == MEASURE
            answered = len(self.latencies)
            recent = self.latencies[last_answered:]
            self.report(
                Progress(
                    phase="measure" if measuring else "warmup",
                    elapsed_s=now - self.phase_started,
                    rps=len(recent) / (now - last_time) if now > last_time else 0.0,
                    p99_ms=live_p99_ms(recent),
                    ok=self.ok if measuring else answered,
                    errors=self.requests - self.ok if measuring else self.warmup_errors,
                )
            )
            last_answered, last_time = answered, now

    def result(self, aborted: bool) -> ProcessResult:
        """What this process measured; the histograms are built here, after the window."""
        assert self.measure_ended is not None
        latencies = np.asarray(self.latencies, dtype=np.int64)
        return ProcessResult(
            mode=self.job.mode,
            duration_s=self.measure_ended - self.measure_started,
            requests=self.requests,
            ok=self.ok,
            errors=self.errors,
            histogram=encode_histogram(histogram_from_latencies(latencies[self.measure_from :])),
            warmup_duration_s=self.warmup_duration,
            warmup_requests=self.warmup_requests,
            generator_cpu_s=self.cpu_used,
            aborted=aborted,
            started_monotonic=self.started_monotonic,
            series=self.series.points(latencies, self.started),
        )


def live_p99_ms(latencies_us: list[int]) -> float | None:
    """The p99 of a progress reading, in ms: by nearest rank, the smallest of the slowest 1%.

    It is computed in the event loop while the load runs, so without numpy: `np.percentile`
    imports `numpy.ma` on its first call, which paused the first job of each generator
    process for 16-30 ms, inside the measured window when the warmup was shorter than the
    first reading (0.5 s).
    """
    if not latencies_us:
        return None
    count = len(latencies_us)
    rank = (99 * count + 99) // 100  # ceil(0.99 * count), in integers
    return min(heapq.nlargest(count - rank + 1, latencies_us)) / 1000


class _Client(asyncio.Protocol):
    """One connection slot: sends a request, and from the callback that receives the answer,
    the next one. No future and no task switch per request: the answer's bytes arrive in
    `data_received`, which counts them and writes the next request right away (as wrk does).
    A lost connection is re-opened; the slot lives for the whole job."""

    def __init__(self, run: _Run) -> None:
        self.run = run
        self.transport: asyncio.Transport | None = None
        self.reader = ResponseReader(self.on_answer)
        self.scenario: list[Request] = []
        self.step = 0
        self.captured: dict[str, str] = {}
        self.setup_values: dict[str, str] | None = None  # None until the setup succeeded
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
                run.loop.create_connection(lambda: self, run.job.host, run.job.port, ssl=run.ssl),
                run.job.timeout_s,
            )
        except (TimeoutError, OSError) as error:
            # A failed handshake (no TLS there, an untrusted certificate) is its own kind.
            run.count_error("tls" if isinstance(error, ssl.SSLError) else "connect")
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
        self.reader = ResponseReader(self.on_answer)  # no state from the last connection
        self.step = len(self.scenario)  # a new connection starts a new scenario
        if self.setup_values is None and self.run.setup:
            self.scenario, self.step, self.captured = self.run.setup, 0, {}
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
        if self.setup_values is None and self.scenario is run.setup and self.step < len(run.setup):
            if run.phase != DONE:
                self.send()  # setup requests are not load: no claim, no schedule
            return
        if self.step >= len(self.scenario):
            if self.scenario is run.setup:
                self.setup_values = self.captured
            self.scenario = run.pick()
            self.step = 0
            self.captured = dict(self.setup_values or {})
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
        try:
            self.reader.feed(data)  # calls on_answer for each complete answer
        except ResponseError as error:
            self.fail(error.kind)

    def on_answer(self, status: int, body: bytes, close: bool) -> None:
        """Count the answer to the request in flight, then send the next request."""
        if not self.waiting:  # nothing was asked: not an answer to count
            return
        self.waiting = False
        request = self.scenario[self.step]
        checked = request.check(status, body)
        error = checked if isinstance(checked, str) else None
        pause = request.think_s
        if self.scenario is self.run.setup and self.setup_values is None:
            # Setup answers are not measured; a failed one is an error and starts it over.
            if error is not None:
                self.run.count_error("setup")
                self.step, self.captured, pause = 0, {}, 0.2
        elif not self.run.count_answer(error, time.perf_counter_ns() - self.sent):
            self.step = len(self.scenario)  # a failed step abandons its scenario
        if error is None:
            self.captured.update(checked)  # type: ignore[arg-type]
            self.step += 1
        if close:
            assert self.transport is not None
            self.transport.close()  # connection_lost re-opens
            return
        if pause:
            # Think time: this client is idle, so its requests are partly open loop.
            self.timer = self.run.loop.call_later(pause, self.next)
            return
        self.next()


async def drive(
    job: LoadJob, report: Report, stop_event: asyncio.Event | None = None
) -> ProcessResult:
    """Run one job on the running event loop; returns what this process measured.

    `report` receives `PhaseChanged("measuring"|"measured")` and a `Progress` reading every
    `progress_interval_s`. Setting `stop_event` ends the measurement early (aborted).
    """
    if job.connections < 1:
        raise ValueError("connections must be >= 1")
    if (job.duration_s is None) == (job.requests is None):
        raise ValueError("give exactly one of duration_s and requests")
    if job.series_interval_s <= 0:
        raise ValueError("series_interval_s must be > 0")
    # No cyclic garbage collection while loading: the hot path makes no cycles, and a
    # collection pass over a growing latency list is a pause the server would not cause.
    collecting = gc.isenabled()
    gc.disable()
    try:
        return await _drive(job, report, stop_event)
    finally:
        if collecting:
            gc.enable()


async def _drive(job: LoadJob, report: Report, stop_event: asyncio.Event | None) -> ProcessResult:
    run = _Run(job, report)
    run.begin()
    clients = [_Client(run) for _ in range(job.connections)]
    for client in clients:
        client.open()
    helpers = [
        asyncio.ensure_future(run.watchdog(clients)),
        asyncio.ensure_future(run.clock()),
    ]
    finished = asyncio.ensure_future(run.finished.wait())
    waiters: set[asyncio.Future[object]] = {finished}
    stopper = asyncio.ensure_future(stop_event.wait()) if stop_event is not None else None
    if stopper is not None:
        waiters.add(stopper)
    await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    aborted = stopper is not None and stopper.done()
    run.stop()
    if not aborted:
        await _drain(clients, DRAIN_S)
    for client in clients:
        client.stop()
    for task in (*helpers, finished):
        task.cancel()
    if stopper is not None:
        stopper.cancel()
    await asyncio.gather(*helpers, finished, return_exceptions=True)
    return run.result(aborted)


async def _drain(clients: list[_Client], limit_s: float) -> None:
    """Let the requests in flight be answered (uncounted, the window is closed), up to
    `limit_s`, before the connections close.

    A connection closed under a request makes the server stop that request's work: the
    service cancels its statement in PostgreSQL, and a driver interrupted mid-statement
    closes its connection (psycopg 3 logs "query cancellation interrupted"). With servers
    kept from one cell to the next, the next cell paid for that: at 100 clients, 5-8 pooled
    connections closed and reopened inside its window, reported as churn. Nothing new is
    sent meanwhile: `claim` refuses once the window is closed, and scheduled sends are
    cancelled here.
    """
    for client in clients:
        if client.timer is not None:
            client.timer.cancel()
    deadline = time.perf_counter() + limit_s
    while any(client.waiting for client in clients) and time.perf_counter() < deadline:
        await asyncio.sleep(0.005)  # polls the answers the event loop is receiving
