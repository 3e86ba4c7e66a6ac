"""The Locust processes of one `pgarena locust`: a master and its local workers.

The master is a subprocess driven through JSON lines (`master.py`); local workers are
subprocesses too, and workers on other machines join the same master. Their output goes to
log files in the run's directory. Closing the cluster quits the master, which tells every
worker (remote ones too) to quit; stragglers are killed, and a killed `pgarena locust` takes
its local master and workers with it.
"""

from __future__ import annotations

import contextlib
import json
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from pgarena.processes import die_with_parent

STOP_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class ClusterOptions:
    """Where the master listens, how many workers, and what the workers run."""

    workloads: str
    workload_file: str | None
    slow_ms: int
    timeout_s: float
    local_workers: int = 1
    expect_workers: int = 1  # local + remote
    master_host: str = "127.0.0.1"  # address workers connect to (the master binds to it)
    master_port: int = 5557
    wait_workers_s: float = 60.0

    def worker_arguments(self) -> list[str]:
        """The options every worker takes, local or remote."""
        arguments = ["--master-host", self.master_host, "--master-port", str(self.master_port)]
        arguments += ["--workloads", self.workloads, "--slow-ms", str(self.slow_ms)]
        arguments += ["--timeout", f"{self.timeout_s:g}"]
        if self.workload_file:
            arguments += ["--workload-file", self.workload_file]
        return arguments

    def remote_command(self) -> str:
        """What to run on another machine (with pgarena[locust] installed) to join."""
        return shlex.join(["pgarena", "locust", "--worker", *self.worker_arguments()])


class ClusterFailed(Exception):
    """The master or its workers could not start or answer; the message says why."""


class LocustCluster:
    """A running master with its workers; `run_cell` measures one cell through them."""

    def __init__(self, options: ClusterOptions, log_dir: Path) -> None:
        self.options = options
        log_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir = log_dir
        config = {
            "workloads": options.workloads,
            "workload_file": options.workload_file,
            "slow_ms": options.slow_ms,
            "timeout_s": options.timeout_s,
            "bind_host": options.master_host,
            "bind_port": options.master_port,
            "expect_workers": options.expect_workers,
            "wait_workers_s": options.wait_workers_s,
        }
        self.master = self._spawn(
            [sys.executable, "-m", "pgarena.bench.locust.master", json.dumps(config)],
            "master",
            pipes=True,
        )
        self.workers = [
            self._spawn(
                [sys.executable, "-m", "pgarena.bench.locust.worker", *options.worker_arguments()],
                f"worker-{index + 1}",
            )
            for index in range(options.local_workers)
        ]
        try:
            self.worker_ids = self._expect("ready")["workers"]
        except BaseException:
            self.close()
            raise

    def _spawn(self, command: list[str], name: str, pipes: bool = False) -> subprocess.Popen:
        log = (self.log_dir / f"locust-{name}.log").open("wb")
        with log:
            return subprocess.Popen(
                command,
                stdin=subprocess.PIPE if pipes else subprocess.DEVNULL,
                stdout=subprocess.PIPE if pipes else log,
                stderr=log,
                text=pipes,
                start_new_session=True,  # a Ctrl-C reaches pgarena, which stops them
                preexec_fn=die_with_parent(),
            )

    def _expect(self, wanted: str) -> dict[str, Any]:
        """The master's next line, which must be event `wanted`."""
        assert self.master.stdout is not None
        line = self.master.stdout.readline()
        if not line:
            raise ClusterFailed(self._exited())
        message = json.loads(line)
        if message["event"] == "error":
            raise ClusterFailed(message["message"])
        if message["event"] != wanted:
            raise ClusterFailed(f"the Locust master said {message['event']!r}, not {wanted!r}")
        return message

    def _exited(self) -> str:
        try:
            code = self.master.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            code = None
        return f"the Locust master exited with code {code}: {self._last_log_line()}"

    def _last_log_line(self) -> str:
        with contextlib.suppress(OSError):
            text = (self.log_dir / "locust-master.log").read_text(errors="replace")
            lines = [line for line in text.splitlines() if line.strip()]
            if lines:
                return lines[-1][:300]
        return "(no output)"

    def processes(self) -> list[psutil.Process]:
        """The local Locust processes (master and workers), for their CPU time."""
        found = []
        for process in (self.master, *self.workers):
            with contextlib.suppress(psutil.Error):
                found.append(psutil.Process(process.pid))
        return found

    def run_cell(
        self, host: str, workload: str, users: int, warmup_s: float, duration_s: float,
        on_phase: Any,
    ) -> dict[str, Any]:  # fmt: skip
        """Measure one cell; `on_phase("measuring" | "measured")` marks the window."""
        assert self.master.stdin is not None
        command = {"workload": workload, "host": host, "users": users}
        command |= {"warmup_s": warmup_s, "duration_s": duration_s}
        try:
            self.master.stdin.write(json.dumps({"run": command}) + "\n")
            self.master.stdin.flush()
        except OSError:  # the master is gone: every cell from now on fails with the reason
            raise ClusterFailed(self._exited()) from None
        self._expect("measuring")
        on_phase("measuring")
        self._expect("measured")
        on_phase("measured")
        return self._expect("result")

    def close(self) -> None:
        """Quit the master (it quits its workers), then make sure every local one is gone."""
        with contextlib.suppress(OSError, ValueError):
            assert self.master.stdin is not None
            self.master.stdin.write(json.dumps({"quit": True}) + "\n")
            self.master.stdin.close()
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for process in (self.master, *self.workers):
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        with contextlib.suppress(OSError):
            if self.master.stdout is not None:
                self.master.stdout.close()
