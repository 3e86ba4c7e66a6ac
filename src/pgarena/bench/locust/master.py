"""The Locust master of `pgarena locust`: `python -m pgarena.bench.locust.master CONFIG`.

It waits for its workers, then runs cells one at a time as the `pgarena locust` process
asks, on JSON lines: `{"run": {...}}` on its stdin, `{"event": ...}` lines on its stdout
("ready", "measuring", "measured", "result", "error"). A cell is:

1. start `users` users of the workload's class on the workers, spread by Locust;
2. after the warmup, ask every worker to report what it has and acknowledge
   (`pgarena_measure`): the reports before a worker's acknowledgement are its warmup,
   the ones after are measured;
3. after the duration, ask for the last report of the window (`pgarena_flush`): what a
   worker records after it is not counted; then stop the users.

Every report is Locust's own (`worker_report`: counts, failures and errors of the interval)
plus the per-second answers and histograms of `protocol.py`, added up per worker and phase.
The result says how many requests each worker sent, so the total can be checked against it.
"""

import json
import sys
import time
from typing import Any

import gevent
from gevent.fileobject import FileObjectThread
from locust import events  # patches the standard library for gevent, before pgarena loads
from locust.env import Environment
from locust.log import setup_logging

from pgarena.bench.locust.protocol import class_name, error_kind, merge, serialize
from pgarena.bench.locust.users import user_classes

ACK_TIMEOUT_S = 30.0


def emit(event: str, **data: Any) -> None:
    sys.stdout.write(json.dumps({"event": event, **data}) + "\n")
    sys.stdout.flush()


class Phases:
    """What each worker reported, by phase: its Locust totals and its seconds."""

    def __init__(self) -> None:
        self.phase: dict[str, str] = {}  # worker id -> "warmup" | "measure" | "done"
        self.requests: dict[str, dict[str, int]] = {}  # phase -> worker -> requests
        self.failures: dict[str, dict[str, int]] = {}
        self.errors: dict[str, dict[str, int]] = {}  # phase -> error kind -> count
        self.seconds: dict[str, dict[int, list[Any]]] = {}
        self.acknowledged: set[str] = set()

    def begin(self, workers: list[str]) -> None:
        self.phase = dict.fromkeys(workers, "warmup")
        self.requests = {"warmup": {}, "measure": {}}
        self.failures = {"warmup": {}, "measure": {}}
        self.errors = {"warmup": {}, "measure": {}}
        self.seconds = {"warmup": {}, "measure": {}}

    def on_report(self, client_id: str, data: dict[str, Any], **_: Any) -> None:
        phase = self.phase.get(client_id)
        if phase not in ("warmup", "measure"):
            return  # between cells, or a worker that joined late
        total = data.get("stats_total") or {}
        requests = self.requests[phase]
        requests[client_id] = requests.get(client_id, 0) + int(total.get("num_requests", 0))
        failures = self.failures[phase]
        failures[client_id] = failures.get(client_id, 0) + int(total.get("num_failures", 0))
        for error in (data.get("errors") or {}).values():
            kind = error_kind(str(error["error"]))
            self.errors[phase][kind] = self.errors[phase].get(kind, 0) + error["occurrences"]
        merge(self.seconds[phase], data.get("pgarena_seconds") or {})

    def acknowledge(self, next_phase: str):
        def handler(environment: Environment, msg: Any, **_: Any) -> None:
            self.phase[msg.node_id] = next_phase
            self.acknowledged.add(msg.node_id)

        return handler

    def ask(self, runner: Any, message: str, workers: list[str]) -> None:
        """Send `message` to every worker and wait for all their acknowledgements."""
        self.acknowledged = set()
        for worker in workers:
            runner.send_message(message, None, worker)
        deadline = time.monotonic() + ACK_TIMEOUT_S
        while not self.acknowledged >= set(workers):
            if time.monotonic() > deadline:
                missing = ", ".join(sorted(set(workers) - self.acknowledged))
                raise RuntimeError(f"workers did not answer {message}: {missing}")
            gevent.sleep(0.005)

    def result(self, phase: str) -> dict[str, Any]:
        return {
            "requests": sum(self.requests[phase].values()),
            "failures": sum(self.failures[phase].values()),
            "by_worker": self.requests[phase],
            "errors": self.errors[phase],
            "seconds": serialize(self.seconds[phase]),
        }


def run_cell(runner: Any, phases: Phases, cell: dict[str, Any]) -> None:
    workers = sorted(runner.clients.keys())
    phases.begin(workers)
    runner.environment.host = cell["host"]
    user_class = next(c for c in runner.user_classes if c.__name__ == class_name(cell["workload"]))
    started = time.time()
    runner.start(cell["users"], spawn_rate=max(cell["users"], 1), user_classes=[user_class])
    gevent.sleep(cell["warmup_s"])
    # Each worker's window opens and closes as it receives these messages: the times they
    # are sent bound the window (transit delays at both ends cancel out).
    measure_started = time.time()
    phases.ask(runner, "pgarena_measure", workers)
    emit("measuring")
    gevent.sleep(max(0.0, measure_started + cell["duration_s"] - time.time()))
    measure_ended = time.time()
    phases.ask(runner, "pgarena_flush", workers)
    emit("measured")
    runner.stop()
    emit(
        "result",
        started=started,
        measure_started=measure_started,
        measure_ended=measure_ended,
        workers=workers,
        warmup=phases.result("warmup"),
        measure=phases.result("measure"),
    )


def main(config: dict[str, Any]) -> int:
    setup_logging("INFO")  # to stderr: the log file `pgarena locust` keeps
    classes = user_classes(
        config["workloads"], config["workload_file"], config["slow_ms"], config["timeout_s"]
    )
    environment = Environment(user_classes=classes, events=events)
    runner = environment.create_master_runner(config["bind_host"], config["bind_port"])
    phases = Phases()
    events.worker_report.add_listener(phases.on_report)
    runner.register_message("pgarena_measuring", phases.acknowledge("measure"))
    runner.register_message("pgarena_flushed", phases.acknowledge("done"))
    deadline = time.monotonic() + config["wait_workers_s"]
    while len(runner.clients.ready) < config["expect_workers"]:
        if time.monotonic() > deadline:
            joined, wanted = len(runner.clients.ready), config["expect_workers"]
            emit("error", message=f"only {joined} of {wanted} workers joined in time")
            runner.quit()
            return 1
        gevent.sleep(0.1)
    emit("ready", workers=sorted(runner.clients.keys()))
    commands = FileObjectThread(sys.stdin, "r")
    for line in commands:
        command = json.loads(line)
        if "run" not in command:
            break
        try:
            run_cell(runner, phases, command["run"])
        except Exception as error:  # the cell fails, the run goes on
            runner.stop()
            emit("error", message=str(error))
    runner.quit()
    return 0


if __name__ == "__main__":
    sys.exit(main(json.loads(sys.argv[1])))
