"""pgarena's ORM stacks against the seed-style app (`seed_app.py`) on GET /users/{id}.

    PGARENA_DATA_DIR=/tmp/pg-seed .venv/bin/python benchmarks/compare_seed.py -c 10,50 -r 3

Starts four servers side by side on one database (pgarena's `sync` and `async` stacks with
their defaults, the seed app sync and async with theirs), then loads each in turn with
`pgarena run --target` and `users-get.toml`, repeat after repeat, so that the machine's drift
spreads over all four. Prints, per concurrency, each server's throughput (mean of repeats)
and each stack's ratio to its seed twin: the geometric mean of the per-repeat ratios (the
repeats are paired: repeat r of both met the same machine), with their range.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from statistics import geometric_mean

HERE = Path(__file__).resolve().parent
PGARENA = [sys.executable, "-m", "pgarena"]
PAIRS = (("sync", "seed-sync"), ("async", "seed-async"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_healthy(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"server for {url} exited with {process.returncode}")
        with contextlib.suppress(OSError):
            urllib.request.urlopen(url, timeout=1).close()
            return
        time.sleep(0.2)
    raise SystemExit(f"{url} did not answer within 60 s")


def database_url() -> str:
    """The embedded (or DATABASE_URL) database, migrated and seeded as pgarena does."""
    # The sizes `pgarena run` seeds, which the workload's {user_id} is drawn from.
    seed = ["db", "seed", "--users", "10000", "--products", "1000", "--orders", "10000"]
    for command in (["db", "start"], ["db", "upgrade"], seed):
        subprocess.run([*PGARENA, *command], check=True, stdout=subprocess.DEVNULL)
    return subprocess.run(
        [*PGARENA, "db", "url"], check=True, capture_output=True, text=True
    ).stdout.strip()


def start_servers(url: str) -> dict[str, tuple[str, subprocess.Popen[bytes]]]:
    servers = {}
    env = {**os.environ, "DATABASE_URL": url}
    for name in ("sync", "async", "seed-sync", "seed-async"):
        port = free_port()
        if name.startswith("seed-"):
            command = [
                sys.executable, "-m", "uvicorn", "--factory", "seed_app:create_app",
                "--app-dir", str(HERE), "--port", str(port), "--loop", "uvloop",
                "--http", "httptools", "--no-access-log", "--log-level", "warning",
            ]  # fmt: skip
            server_env = {**env, "SEED_STYLE": name.removeprefix("seed-")}
        else:
            command = [*PGARENA, "serve", "--stack", name, "--port", str(port)]
            server_env = env
        process = subprocess.Popen(command, env=server_env, stdout=subprocess.DEVNULL)
        servers[name] = (f"http://127.0.0.1:{port}", process)
    for base, process in servers.values():
        wait_healthy(f"{base}/users/1", process)
    return servers


def measure(name: str, base: str, args: argparse.Namespace, out: Path) -> dict[int, float]:
    """Requests/s per concurrency of one server, one repeat."""
    command = [
        *PGARENA, "run", "--target", base, "--stacks", name,
        "--workload-file", str(HERE / "users-get.toml"), "-c", args.concurrency,
        "-r", "1", "-d", args.duration, "--warmup", "1s", "--out", str(out), "-q",
    ]  # fmt: skip
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    cells = json.loads((out / "results.json").read_text())["cells"]
    return {cell["concurrency"]: cell["rps"] for cell in cells if cell["status"] == "ok"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-c", "--concurrency", default="10,50")
    parser.add_argument("-r", "--repeats", type=int, default=3)
    parser.add_argument("-d", "--duration", default="3s")
    parser.add_argument("--out", type=Path, default=Path("seed-compare"))
    args = parser.parse_args()
    # A kill ends the script through its `finally`, which stops the servers it started.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    url = database_url()
    servers = start_servers(url)
    rps: dict[str, list[dict[int, float]]] = {name: [] for name in servers}
    try:
        names = list(servers)
        for repeat in range(args.repeats):
            # Interleaved, and rotated so that no server always goes first.
            order = names[repeat % len(names) :] + names[: repeat % len(names)]
            for name in order:
                out = args.out / f"{name}-r{repeat}"
                rps[name].append(measure(name, servers[name][0], args, out))
                print(f"repeat {repeat} {name}: {rps[name][-1]}", file=sys.stderr)
    finally:
        for _, process in servers.values():
            process.terminate()
            process.wait()
    for concurrency in (int(c) for c in args.concurrency.split(",")):
        print(f"GET /users/{{id}}, concurrency {concurrency}, {args.repeats} repeats")
        for name in servers:
            values = [r[concurrency] for r in rps[name] if concurrency in r]
            print(f"  {name:11} {sum(values) / len(values):8.0f} req/s  {values}")
        for stack, seed in PAIRS:
            ratios = [
                a[concurrency] / b[concurrency]
                for a, b in zip(rps[stack], rps[seed], strict=True)
                if concurrency in a and concurrency in b
            ]
            mean = geometric_mean(ratios)
            print(f"  {stack} / {seed}: {mean:.2f}x (repeats {min(ratios):.2f}-{max(ratios):.2f})")


if __name__ == "__main__":
    main()
