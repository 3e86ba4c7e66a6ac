"""pgarena's ORM stacks against the seed-style app (`seed_app.py`) on GET /users/{id}.

    PGARENA_DATA_DIR=/tmp/pg-seed .venv/bin/python benchmarks/compare_seed.py -c 10,50 -r 3

Starts four servers side by side on one database (pgarena's `sync` and `async` stacks with
their defaults, the seed app sync and async with theirs), then measures each stack against
its seed twin in one A/B run, `pgarena run --target seed-sync=URL --target sync=URL` with
`users-get.toml`: the two servers' cells alternate, so that the machine's drift spreads over
both, and pgarena prints each figure with its 95% interval and its verdict against the seed
app. With `--target-database` pgarena also reads the database the four share, so each cell
has its new PostgreSQL connections per second (the seed's pools churn) and its statements
per request. Results and reports go to `--out`/STACK.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
PGARENA = [sys.executable, "-m", "pgarena"]
PAIRS = (("sync", "seed-sync"), ("async", "seed-async"))
Servers = dict[str, tuple[str, subprocess.Popen[bytes]]]  # name -> (base URL, process)


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


def start_servers(url: str) -> Servers:
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


def measure(stack: str, seed: str, args: argparse.Namespace, url: str, servers: Servers) -> None:
    """One A/B run of the seed app (the baseline) and `stack`; pgarena prints its table."""
    command = [
        *PGARENA, "run", "--target", f"{seed}={servers[seed][0]}",
        "--target", f"{stack}={servers[stack][0]}", "--target-database", url,
        "--workload-file", str(HERE / "users-get.toml"),
        "-c", args.concurrency, "-r", str(args.repeats), "-d", args.duration, "--warmup", "1s",
        "--out", str(args.out / stack),
    ]  # fmt: skip
    subprocess.run(command, check=True)


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
    try:
        for stack, seed in PAIRS:
            measure(stack, seed, args, url, servers)
    finally:
        for _, process in servers.values():
            process.terminate()
            process.wait()


if __name__ == "__main__":
    main()
