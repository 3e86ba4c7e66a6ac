"""`pgarena serve --server uvicorn|gunicorn|granian --workers 2`, as real processes over real
HTTP: every server answers the TechEmpower types with the required headers, the Prometheus
counters of two workers add up to exactly the requests sent, and SIGTERM stops the server and
all its workers cleanly."""

from __future__ import annotations

import http.client
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import psutil
import psycopg
import pytest
from helpers import free_port, run_pgarena, start_pgarena, wait_until_healthy
from prometheus_client.parser import text_string_to_metric_families

from pgarena.service.server import SERVERS
from pgarena.service.stacks import STACKS

WORKERS = 2
MAX_CONNECTIONS = 20  # pool 20, no overflow, per worker: the defaults
STARTUP_TIMEOUT_S = 60.0

# One stack per server in the quick run; every other pair only in the slow run.
QUICK = {("uvicorn", "async"), ("gunicorn", "sync"), ("granian", "async-raw")}
PAIRS = [
    pytest.param(server, stack, marks=() if (server, stack) in QUICK else pytest.mark.slow)
    for server in SERVERS
    for stack in STACKS
]

# The TechEmpower types, with what each answers.
REQUESTS = {
    "/json": "application/json",
    "/plaintext": "text/plain",
    "/db": "application/json",
    "/queries?queries=3": "application/json",
    "/updates?queries=2": "application/json",
    "/fortunes": "text/html; charset=utf-8",
}


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes


@dataclass
class Server:
    """A `pgarena serve` process, and how many HTTP responses the test has received from it."""

    process: subprocess.Popen[bytes]
    port: int
    responses: int = 0
    workers: list[psutil.Process] = field(default_factory=list)

    def get(self, path: str) -> Answer:
        """GET on a fresh connection (so the kernel spreads them over the workers)."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            connection.request("GET", path)
            response = connection.getresponse()
            answer = Answer(
                response.status,
                {name.lower(): value for name, value in response.getheaders()},
                response.read(),
            )
        finally:
            connection.close()
        self.responses += 1
        return answer

    def metrics(self) -> dict[str, float]:
        """Each metric of /metrics summed over its samples (so over every label set)."""
        answer = self.get("/metrics")
        assert answer.status == 200, answer.body[:200]
        text = answer.body.decode()
        totals: dict[str, float] = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                totals[sample.name] = totals.get(sample.name, 0.0) + sample.value
        return totals


@pytest.fixture
def serve(database_url: str) -> Iterator[Callable[..., Server]]:
    started: list[Server] = []

    def start(server: str, stack: str, workers: int = WORKERS) -> Server:
        port = free_port()
        process = start_pgarena(
            "serve", "--server", server, "--stack", stack,
            "--workers", str(workers), "--port", str(port),
            env={"DATABASE_URL": database_url, "PROMETHEUS_MULTIPROC_DIR": None},
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )  # fmt: skip
        running = Server(process, port)
        started.append(running)
        # Polled through `running.get`, so the health checks count among its responses.
        wait_until_healthy(process, lambda: running.get("/health").status == 200, STARTUP_TIMEOUT_S)
        return running

    yield start
    for running in started:
        if running.process.poll() is None:
            running.process.kill()
            running.process.wait()
        for worker in running.workers:
            if worker.is_running():
                worker.kill()


@pytest.mark.parametrize(("server", "stack"), PAIRS)
def test_two_workers_count_every_request_once_and_stop_on_sigterm(
    serve: Callable[..., Server], server: str, stack: str
) -> None:
    running = serve(server, stack)

    # Both workers have started their app: each reports its pool maximum, and the live
    # gauges of the two add up.
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while running.metrics().get("db_pool_max_connections") != WORKERS * MAX_CONNECTIONS:
        assert time.monotonic() < deadline, "the second worker never reported its pool"
        time.sleep(0.1)  # polling interval while the second worker starts
    # Every process the server started (workers, and any helper of the server's own).
    running.workers = psutil.Process(running.process.pid).children(recursive=True)
    assert len(running.workers) >= WORKERS

    paths = [path for path in REQUESTS for _ in range(10)]
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(running.get, paths))
    for path, answer in zip(paths, answers, strict=True):
        assert answer.status == 200, (path, answer.body[:200])
        assert answer.headers["content-type"].startswith(REQUESTS[path])
        assert answer.headers["server"]
        assert answer.headers["date"].endswith("GMT")
        assert int(answer.headers["content-length"]) == len(answer.body)

    # Every response received so far was counted once, by whichever worker answered it;
    # a scrape sees the earlier scrapes but not itself. A worker counts a request just
    # after sending it, so a scrape may come a moment early: look again, never accept more.
    deadline = time.monotonic() + 10
    while True:
        expected = running.responses  # before this scrape
        counted = running.metrics().get("http_requests_total", 0.0)
        assert counted <= expected
        if counted == expected:
            break
        assert time.monotonic() < deadline, f"counted {counted} of {expected} requests"
        time.sleep(0.05)  # the last increments land within microseconds
    assert expected >= len(paths) + 2

    # SIGTERM: the server and every worker exit, cleanly and in time.
    running.process.send_signal(signal.SIGTERM)
    output, _ = running.process.communicate(timeout=20)
    # (uvicorn with one worker re-raises SIGTERM after its graceful shutdown.)
    assert running.process.returncode in (0, -signal.SIGTERM), output.decode()[-2000:]
    _, alive = psutil.wait_procs(running.workers, timeout=5)
    assert not alive
    # The banner printed the defaults it runs with.
    banner = output.decode()
    assert f"{WORKERS} worker(s)" in banner
    assert "pool 20 + 0 overflow per worker" in banner
    assert "Traceback" not in banner


def test_serve_fills_empty_techempower_tables_and_keeps_other_rows(
    serve: Callable[..., Server], database_url: str
) -> None:
    with psycopg.connect(database_url) as connection:
        connection.execute("TRUNCATE world, fortune")
        connection.execute("INSERT INTO users (username, email) VALUES ('keep', 'k@example.com')")
    running = serve("uvicorn", "async-raw", workers=1)
    assert running.get("/db").status == 200
    with psycopg.connect(database_url) as connection:
        counts = connection.execute(
            "SELECT (SELECT count(*) FROM world), (SELECT count(*) FROM fortune),"
            " (SELECT array_agg(username) FROM users)"
        ).fetchone()
    assert counts == (10_000, 12, ["keep"])
    running.process.send_signal(signal.SIGTERM)
    running.process.communicate(timeout=20)


def test_unknown_server_is_a_one_line_error(database_url: str) -> None:
    result = run_pgarena(
        "serve", "--server", "tornado", "--port", "0",
        env={"DATABASE_URL": database_url}, timeout=60,
    )  # fmt: skip
    assert result.returncode == 2
    assert "unknown server 'tornado'" in result.stderr
    assert "Traceback" not in result.stderr
