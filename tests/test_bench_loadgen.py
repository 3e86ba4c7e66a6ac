"""The load generator's accounting, checked against a server whose behaviour is known."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from bench_known_server import KnownServer

from pgarena.bench.loadgen import LoadGenerator, LoadJob, LoadResult, SeriesPoint
from pgarena.bench.workloads import Scenario, Step, Workload
from pgarena.processes import free_port
from pgarena.results.histograms import decode_histogram


def get(path: str, expect_body: bytes | None = b'"id"', capture: bool = False) -> Workload:
    step = Step("GET", path, expect_body=expect_body, capture_id=capture)
    return Workload("test", f"GET {path}", "test", (Scenario(1, (step,)),))


@pytest.fixture(scope="module")
def generator() -> Iterator[LoadGenerator]:
    with LoadGenerator(1) as started:
        yield started


def test_closed_loop_counts_every_answer_and_latency_includes_the_server_delay(
    generator: LoadGenerator,
) -> None:
    delay = 0.02
    with KnownServer(delay_s=delay) as server:
        job = LoadJob("127.0.0.1", server.port, get("/x"), 4, duration_s=1.5, warmup_s=0.3)
        result = generator.run(job)
        received = server.count

    assert result.mode == "closed"
    assert result.ok == result.requests > 0
    assert result.error_count == 0
    # The server saw the warmup, the measured requests, and at most one request per
    # connection still in flight when the window closed.
    counted = result.warmup_requests + result.requests
    assert counted <= received <= counted + job.connections
    assert result.warmup_requests > 0
    latency = result.latency_ms()
    assert latency["p50"] >= delay * 1000
    assert latency["max"] >= latency["p99"] >= latency["p50"]
    # 4 connections each waiting >= 20 ms cannot exceed 200 requests/s.
    assert result.rps <= job.connections / delay
    assert 1.4 <= result.duration_s <= 1.8
    # The encoded histogram decodes to the same distribution.
    decoded = decode_histogram(result.encoded_histogram())
    assert decoded.get_total_count() == result.ok


def test_requests_in_flight_when_the_window_closes_are_answered_not_abandoned(
    generator: LoadGenerator,
) -> None:
    # A connection closed under a request makes a real server cancel its work (and some
    # drivers close their connection), which the next cell on a kept server would pay for.
    with KnownServer(delay_s=0.1) as server:
        job = LoadJob("127.0.0.1", server.port, get("/x"), 8, duration_s=0.55, warmup_s=0)
        result = generator.run(job)
        server.wait_idle()
        abandoned, received = server.abandoned, server.count
    assert result.ok > 0 and result.error_count == 0
    assert abandoned == 0
    assert received > result.requests  # those in flight were answered, and not counted


def test_a_fixed_number_of_requests_is_sent_exactly(generator: LoadGenerator) -> None:
    with KnownServer(delay_s=0.002) as server:
        result = generator.run(LoadJob("127.0.0.1", server.port, get("/x"), 3, None, 250))
        received = server.count

    assert result.requests == result.ok == 250
    assert received == 250


def test_open_loop_latency_shows_a_stall_that_closed_loop_hides(
    generator: LoadGenerator,
) -> None:
    stall = 1.0

    def measure(rate: float | None) -> dict[str, float | None]:
        with KnownServer(delay_s=0.005) as server:

            def on_phase(phase: str) -> None:
                if phase == "measuring":
                    threading.Timer(0.5, server.stall, (stall,)).start()

            job = LoadJob("127.0.0.1", server.port, get("/x"), 4, 2.5, rate=rate)
            result = generator.run(job, on_phase=on_phase)
        assert result.error_count == 0
        return result.latency_ms()

    closed = measure(rate=None)
    opened = measure(rate=100)

    # Both saw the requests that were held for the whole stall.
    assert closed["max"] >= 0.9 * stall * 1000
    assert opened["max"] >= 0.9 * stall * 1000
    # Closed loop: only the 4 requests in flight waited, so the stall barely shows.
    assert closed["p90"] < 0.1 * stall * 1000
    # Open loop: the ~100 requests due during the stall count from their due time; they make
    # up ~40% of the window with latencies spread over 0..1 s, so the p90 is far up.
    assert opened["p90"] >= 0.4 * stall * 1000


def test_unexpected_statuses_and_bodies_are_errors_not_throughput(
    generator: LoadGenerator,
) -> None:
    with KnownServer() as server:
        failing = generator.run(LoadJob("127.0.0.1", server.port, get("/status/500"), 2, 0.5))
        wrong = generator.run(LoadJob("127.0.0.1", server.port, get("/wrong-body"), 2, 0.5))
        chunked = generator.run(LoadJob("127.0.0.1", server.port, get("/chunked", capture=True),
                                        2, 0.5))  # fmt: skip

    assert failing.ok == 0 and failing.rps == 0
    assert failing.errors["status_500"] == failing.requests > 0
    assert sum(point.errors for point in measured(failing)) == failing.requests
    assert failing.histogram.get_total_count() == 0
    assert wrong.ok == 0
    assert wrong.errors["body"] == wrong.requests > 0
    assert chunked.error_count == 0 and chunked.ok > 0


def test_a_server_that_is_not_there_gives_connect_errors(generator: LoadGenerator) -> None:
    port = free_port()
    result = generator.run(LoadJob("127.0.0.1", port, get("/x"), 2, 0.5))

    assert result.ok == 0
    assert result.errors["connect"] > 0


def test_slow_answers_past_the_timeout_are_counted_as_timeouts(
    generator: LoadGenerator,
) -> None:
    with KnownServer(delay_s=0.6) as server:
        result = generator.run(LoadJob("127.0.0.1", server.port, get("/x"), 2, 1.0, timeout_s=0.2))

    assert result.ok == 0
    assert result.errors["timeout"] >= 2


def test_two_generator_processes_share_the_connections_and_merge_histograms() -> None:
    with KnownServer(delay_s=0.01) as server, LoadGenerator(2) as pair:
        assert len(set(pair.pids)) == 2
        result = pair.run(LoadJob("127.0.0.1", server.port, get("/x"), 4, 1.0))
        received = server.count

    assert result.processes == 2
    assert result.ok > 0
    assert result.histogram.get_total_count() == result.ok
    # The two processes' series are merged interval by interval.
    assert 3 <= len(measured(result)) <= 5
    assert sum(point.ok for point in measured(result)) == result.ok
    assert result.requests <= received <= result.requests + 4
    assert result.latency_ms()["p50"] >= 10


def test_scenarios_send_their_steps_in_order_with_the_captured_id(
    generator: LoadGenerator,
) -> None:
    with KnownServer() as server:
        steps = (
            Step("POST", "/create", '{"name": "{unique}"}', expect_body=b'"id"', capture_id=True),
            Step("GET", "/things/{id}", expect_body=b'"id"'),
        )
        workload = Workload("flow", "create then read", "test", (Scenario(1, steps),))
        result = generator.run(LoadJob("127.0.0.1", server.port, workload, 2, None, 100))

    assert result.ok == result.requests == 100


def measured(result: LoadResult) -> list[SeriesPoint]:
    return [point for point in result.series if point.phase == "measure"]


def test_a_job_records_a_time_series_that_adds_up_to_its_totals(
    generator: LoadGenerator,
) -> None:
    before = time.monotonic()
    with KnownServer(delay_s=0.005) as server:
        job = LoadJob("127.0.0.1", server.port, get("/x"), 4, duration_s=2.0, warmup_s=0.5)
        result = generator.run(job)

    warmup = [point for point in result.series if point.phase == "warmup"]
    measure = measured(result)
    assert result.series == warmup + measure
    # 0.5 s of warmup and 2 s of measurement in intervals of 0.25 s.
    assert len(warmup) == 2
    assert len(measure) == 8
    assert [point.index for point in result.series] == list(range(10))
    # The job's start is a CLOCK_MONOTONIC stamp another process can compare with.
    assert before <= result.started_monotonic <= before + 1
    assert warmup[0].t < 0.1
    assert measure[0].t == pytest.approx(result.warmup_duration_s, abs=0.01)
    for earlier, later in zip(result.series, result.series[1:], strict=False):
        assert later.t == pytest.approx(earlier.t + earlier.duration_s, abs=1e-6)
    assert all(0.2 <= point.duration_s <= 0.3 for point in result.series)
    # The intervals add up to the totals of the window.
    assert sum(point.ok + point.errors for point in warmup) == result.warmup_requests
    assert sum(point.ok for point in measure) == result.ok
    assert sum(point.errors for point in measure) == result.error_count == 0
    counts = [decode_histogram(point.histogram).get_total_count() for point in measure]
    assert counts == [point.ok for point in measure]
    assert sum(counts) == result.histogram.get_total_count()
    assert sum(point.duration_s for point in measure) == pytest.approx(result.duration_s, 0.01)
    assert sum(point.generator_cpu_s for point in measure) == pytest.approx(
        result.generator_cpu_s, abs=0.02
    )
    # Each interval's latencies include the server's 5 ms.
    assert all(point.p50_ms is not None and point.p50_ms >= 5 for point in measure)
    assert set(measure[0].to_dict()) == {
        "t", "duration_s", "phase", "ok", "errors", "p50_ms", "p90_ms", "p99_ms", "max_ms",
        "generator_cpu_s", "histogram",
    }  # fmt: skip
