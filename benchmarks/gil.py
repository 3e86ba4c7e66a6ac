"""GIL releases and context switches per request of one route, per stack, under wrk: what a
sync stack pays to hand the GIL around its threads, which instruction counts do not show.

    PGARENA_DATA_DIR=/tmp/pg-gil .venv/bin/python benchmarks/gil.py -s sync,sync-raw /db

A thread that lets go of the GIL (a driver around a libpq call, uvloop around libuv) must
take it back, and under a sync stack's 20 threads another one usually holds it by then: the
thread sleeps on a futex until it is handed over. `instructions.py` counts the Python path and
misses this; here each stack's server (`pgarena serve`) runs under `wrk -c50` while `perf
stat` counts, through a uprobe, the calls of CPython's `PyEval_SaveThread` (every release of
the GIL, uncontended or not) in the server's process, and the context switches of all its
threads are read from /proc before and after. Both are counts per request, which a noisy
machine barely moves: in the eleventh session `sync` on `/db` read 12.7 releases and 24.7
switches per request in two runs, and 8.6 and 14.8 after a change, in two runs as well.

The event loop's thread is counted too: uvloop runs libuv without the GIL and takes it for
each callback into Python. Needs root, `perf` with uprobes, `wrk`, and a CPython built with
`--enable-shared` or a `python` binary with its symbols.
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import os
import re
import subprocess
import sys
import sysconfig
from pathlib import Path

from compare_seed import PGARENA, database_url, free_port, wait_healthy  # beside this script

EVENT = "probe_gil:PyEval_SaveThread"


def libpython() -> str:
    """The file that holds PyEval_SaveThread: libpython if shared, else the interpreter."""
    shared = Path(sysconfig.get_config_var("LIBDIR") or "") / (
        sysconfig.get_config_var("LDLIBRARY") or ""
    )
    return str(shared) if shared.suffix.startswith(".so") and shared.exists() else sys.executable


def switches(pid: int) -> int:
    """Voluntary and involuntary context switches of every thread of `pid` so far."""
    total = 0
    for status in glob.glob(f"/proc/{pid}/task/*/status"):
        with contextlib.suppress(FileNotFoundError):  # a thread that just ended
            for line in Path(status).read_text().splitlines():
                if "ctxt_switches" in line:
                    total += int(line.split()[1])
    return total


def measure(pid: int, url: str, args: argparse.Namespace) -> tuple[int, int, int]:
    """Requests, GIL releases and context switches of one wrk run against `url`."""
    before = switches(pid)
    wrk = ["wrk", "-t1", f"-c{args.connections}", f"-d{args.duration}s", url]
    command = ["perf", "stat", "-x,", "-e", EVENT, "-p", str(pid), "--", *wrk]
    finished = subprocess.run(command, capture_output=True, text=True, check=True)
    after = switches(pid)
    requests = re.search(r"(\d+) requests in", finished.stdout)
    releases = re.search(rf"^(\d+),,{re.escape(EVENT)}", finished.stderr, re.MULTILINE)
    if requests is None or releases is None:
        raise SystemExit(f"could not read wrk's or perf's output:\n{finished.stderr[-500:]}")
    return int(requests.group(1)), int(releases.group(1)), after - before


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("route", help="e.g. /db or '/queries?queries=20'")
    parser.add_argument("-s", "--stacks", default="sync,sync-psycopg3,sync-raw,async-raw")
    parser.add_argument("-c", "--connections", type=int, default=50)
    parser.add_argument("-d", "--duration", type=int, default=5, help="seconds per round")
    parser.add_argument("-r", "--rounds", type=int, default=2)
    args = parser.parse_args()
    probe = ["perf", "probe", "-q", "-x", libpython(), "-a", f"{EVENT}=PyEval_SaveThread"]
    subprocess.run(["perf", "probe", "-q", "-d", EVENT], capture_output=True)  # a killed run's
    added = subprocess.run(probe, capture_output=True, text=True)
    if added.returncode != 0:
        raise SystemExit(f"perf could not add the uprobe (root? uprobes?): {added.stderr.strip()}")
    env = {**os.environ, "DATABASE_URL": database_url()}
    servers: dict[str, tuple[str, subprocess.Popen[bytes]]] = {}
    try:
        for stack in args.stacks.split(","):
            port = free_port()
            command = [*PGARENA, "serve", "--stack", stack, "--port", str(port)]
            process = subprocess.Popen(
                command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            servers[stack] = (f"http://127.0.0.1:{port}{args.route}", process)
        for url, process in servers.values():
            wait_healthy(url, process)
            subprocess.run(["wrk", "-t1", f"-c{args.connections}", "-d2s", url], check=True,
                           stdout=subprocess.DEVNULL)  # fmt: skip
        print(f"{'stack':16} {'req/s':>8} {'GIL releases/req':>17} {'switches/req':>13}")
        for _ in range(args.rounds):  # the stacks take turns
            for stack, (url, process) in servers.items():
                requests, releases, switched = measure(process.pid, url, args)
                print(
                    f"{stack:16} {requests / args.duration:8,.0f} {releases / requests:17.1f} "
                    f"{switched / requests:13.1f}"
                )
    finally:
        for _, process in servers.values():
            process.terminate()
            process.wait()
        subprocess.run(["perf", "probe", "-q", "-d", EVENT], check=False)


if __name__ == "__main__":
    main()
