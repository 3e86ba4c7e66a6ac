"""A Locust worker running pgarena's workloads: `python -m pgarena.bench.locust.worker`.

Started by `pgarena locust` on this machine (`--workers N`), or by hand on another one with
the command line `pgarena locust` prints (`pgarena locust --worker --master-host ...`).
Besides Locust's own messages it answers two of the master's, which make the measured
window exact: on `pgarena_measure` (the warmup is over) and on `pgarena_flush` (the users
have stopped) it sends everything it recorded so far as one last report of the phase, and
then acknowledges. Messages from one worker arrive in order, so the master knows which
phase every report belongs to.
"""

import argparse
import sys

import locust.runners
from locust import events  # patches the standard library for gevent, before pgarena loads
from locust.env import Environment
from locust.log import setup_logging

from pgarena.bench.locust.protocol import Seconds
from pgarena.bench.locust.users import user_classes
from pgarena.errors import UserError

# Report every half second instead of 3 s: the master's view is never far behind.
REPORT_INTERVAL_S = 0.5


def arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="pgarena locust --worker")
    parser.add_argument("--master-host", default="127.0.0.1")
    parser.add_argument("--master-port", type=int, default=5557)
    parser.add_argument("--workloads", default="")
    parser.add_argument("--workload-file", default=None)
    parser.add_argument("--slow-ms", type=int, default=50)
    parser.add_argument("--timeout", type=float, default=10.0)
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    options = arguments(argv)
    locust.runners.WORKER_REPORT_INTERVAL = REPORT_INTERVAL_S
    setup_logging("INFO")  # to stderr: the log file `pgarena locust` keeps
    try:
        classes = user_classes(
            options.workloads, options.workload_file, options.slow_ms, options.timeout
        )
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    environment = Environment(user_classes=classes, events=events)
    seconds = Seconds()

    @events.request.add_listener
    def on_request(response_time: float, exception: object = None, **_: object) -> None:
        seconds.record(exception is None, response_time)

    @events.report_to_master.add_listener
    def on_report(client_id: str, data: dict) -> None:
        data["pgarena_seconds"] = seconds.report()

    runner = environment.create_worker_runner(options.master_host, options.master_port)

    def report_then(acknowledgement: str):
        def handler(environment: Environment, msg: object, **_: object) -> None:
            data: dict = {}
            events.report_to_master.fire(client_id=runner.client_id, data=data)
            runner.send_message("stats", data)
            runner.send_message(acknowledgement)

        return handler

    runner.register_message("pgarena_measure", report_then("pgarena_measuring"))
    runner.register_message("pgarena_flush", report_then("pgarena_flushed"))
    runner.greenlet.join()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
