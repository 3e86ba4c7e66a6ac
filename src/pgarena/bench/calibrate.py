"""How good is the load generator? Measure it against `wrk` on the same server.

For each concurrency level, `wrk` (C, one thread) and pgarena's generator (one process)
load the same endpoint of the same server, one after the other, for the same time, in
alternating order over a few rounds. The
generator is fit for purpose when it reaches at least 90% of wrk's throughput: below that,
it is the generator, not the server, that limits what is measured. The CPU each tool spends
per request is reported too, since on a small machine it is taken from the server.
"""

from __future__ import annotations

import re
import resource
import shutil
import statistics
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from pgarena.bench.loadgen import LoadGenerator, LoadJob, LoadResult
from pgarena.bench.workloads import Scenario, Step, Workload
from pgarena.errors import UserError

TARGET_RATIO = 0.90

_WRK_RATE = re.compile(r"Requests/sec:\s*([\d.]+)")
_WRK_TOTAL = re.compile(r"(\d+) requests in")
_WRK_ERRORS = re.compile(r"Non-2xx or 3xx responses:\s*(\d+)")


@dataclass(frozen=True)
class Calibration:
    """One concurrency level: both tools' throughput and CPU per request."""

    concurrency: int
    wrk_rps: float
    generator_rps: float
    wrk_cpu_us_per_request: float | None
    generator_cpu_us_per_request: float | None
    generator_errors: int
    wrk_errors: int
    rounds: int = 1
    # The lowest and highest ratio of one round's two runs: how far a single round strays.
    ratio_low: float | None = None
    ratio_high: float | None = None

    @property
    def ratio(self) -> float:
        """pgarena's throughput as a fraction of wrk's (medians over the rounds)."""
        return self.generator_rps / self.wrk_rps if self.wrk_rps else 0.0

    @property
    def passed(self) -> bool:
        """At least 90% of wrk's throughput."""
        return self.ratio >= TARGET_RATIO


def wrk_path() -> str:
    """The wrk binary, or a UserError saying how to get it."""
    path = shutil.which("wrk")
    if path is None:
        raise UserError(
            "wrk is not installed, so there is nothing to calibrate against "
            "(Debian/Ubuntu: apt-get install wrk)"
        )
    return path


def run_wrk(url: str, concurrency: int, duration_s: float) -> tuple[float, int, float, int]:
    """(requests/s, requests, CPU seconds, non-2xx responses) of one wrk run."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    completed = subprocess.run(
        [wrk_path(), "-t1", f"-c{concurrency}", f"-d{max(1, round(duration_s))}s", url],
        capture_output=True,
        text=True,
        timeout=duration_s + 60,
        check=False,
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    rate = _WRK_RATE.search(completed.stdout)
    total = _WRK_TOTAL.search(completed.stdout)
    if completed.returncode != 0 or rate is None or total is None:
        reason = (completed.stderr or completed.stdout).strip().splitlines()
        raise UserError(f"wrk failed: {reason[-1] if reason else completed.returncode}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    errors = _WRK_ERRORS.search(completed.stdout)
    return float(rate.group(1)), int(total.group(1)), cpu, int(errors.group(1)) if errors else 0


def calibrate(
    host: str,
    port: int,
    path: str,
    concurrency_levels: list[int],
    duration_s: float,
    rounds: int = 3,
) -> list[Calibration]:
    """Measure wrk and the generator on http://host:port/path at each concurrency level.

    Each level runs `rounds` rounds; a round runs both tools one after the other, and the
    order alternates between rounds so neither always meets a warmer server. The figures
    are the medians over the rounds (on a shared machine single runs swing by 2x), and the
    ratio comes with its range over the rounds, each round's two runs paired. wrk has
    no warmup, so the generator gets none either: both are measured from their first
    request, connections opened included, on a server warmed once by wrk before the first
    round.
    """
    wrk_path()  # fail before any load if it is missing
    scenario = Scenario(1, (Step("GET", path),))
    workload = Workload("calibration", f"GET {path}", "calibration", (scenario,))
    url = f"http://{host}:{port}{path}"
    results = []
    run_wrk(url, concurrency_levels[0], 1)  # the server's first second is not representative
    with LoadGenerator(1) as generator:
        for concurrency in concurrency_levels:
            job = LoadJob(host, port, workload, concurrency, duration_s=duration_s)
            wrk_runs: list[tuple[float, int, float, int]] = []
            generator_runs: list[LoadResult] = []
            for round_index in range(rounds):
                if round_index % 2 == 0:
                    wrk_runs.append(run_wrk(url, concurrency, duration_s))
                    generator_runs.append(generator.run(job))
                else:
                    generator_runs.append(generator.run(job))
                    wrk_runs.append(run_wrk(url, concurrency, duration_s))
            # A round's two runs follow each other: their ratio is the paired measurement.
            paired = [g.rps / w[0] for w, g in zip(wrk_runs, generator_runs, strict=True) if w[0]]
            wrk_requests = sum(run[1] for run in wrk_runs)
            generator_requests = sum(run.requests for run in generator_runs)
            generator_cpu = sum(run.generator_cpu_s for run in generator_runs)
            results.append(
                Calibration(
                    concurrency=concurrency,
                    wrk_rps=statistics.median(run[0] for run in wrk_runs),
                    generator_rps=statistics.median(run.rps for run in generator_runs),
                    wrk_cpu_us_per_request=sum(run[2] for run in wrk_runs) / wrk_requests * 1e6
                    if wrk_requests
                    else None,
                    generator_cpu_us_per_request=generator_cpu / generator_requests * 1e6
                    if generator_requests
                    else None,
                    generator_errors=sum(run.error_count for run in generator_runs),
                    wrk_errors=sum(run[3] for run in wrk_runs),
                    rounds=rounds,
                    ratio_low=min(paired, default=None),
                    ratio_high=max(paired, default=None),
                )
            )
    return results


def calibrate_against_wrk(
    stack: str,
    path: str,
    levels: list[int],
    duration_s: float,
    rounds: int,
    target: str | None = None,
) -> tuple[list[Calibration], str]:
    """`pgarena calibrate`: a server of `stack` on the arena database (or `target`), both
    tools against `path`; the results and a description of what was loaded."""
    from pgarena.bench.database import prepare_database
    from pgarena.bench.display import console
    from pgarena.bench.runner import Target
    from pgarena.bench.servers import ServerFailed, ServerOptions, ServerProcess

    wrk_path()
    if target:
        spec = Target.parse(target)
        with console.status(f"measuring wrk and pgarena on {spec.url}{path}"):
            results = calibrate(
                spec.host, spec.port, spec.path_prefix + path, levels, duration_s, rounds
            )
        return results, f"GET {spec.path_prefix + path}"
    database = prepare_database(console)
    log = Path(tempfile.gettempdir()) / f"calibrate-{stack}.log"
    try:
        server = ServerProcess(stack, database.url, ServerOptions(), log)
    except ServerFailed as failure:
        raise UserError(str(failure)) from None
    try:
        with console.status(f"measuring wrk and pgarena on {path}, {duration_s:g} s each"):
            results = calibrate(server.host, server.port, path, levels, duration_s, rounds)
    finally:
        server.stop()
    return results, f"GET {path} on stack {stack}"
