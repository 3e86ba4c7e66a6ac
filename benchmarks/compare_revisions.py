"""Two revisions of pgarena's service side by side: does a change make a stack faster?

    PGARENA_DATA_DIR=/tmp/pg-ab .venv/bin/python benchmarks/compare_revisions.py HEAD~1 \\
        -s async,sync-psycopg3 -w db -c 50 -r 4

Checks the old revision out into a temporary git worktree, starts each stack twice on one
database (the old revision's service and the working tree's), and measures each pair in one
A/B run, `pgarena run --target old=URL --target new=URL`: the two servers' cells alternate,
so that the machine's drift spreads over both, and pgarena prints each figure with its 95%
interval and its verdict, new against old, PostgreSQL's figures included (`--target-database`:
statements per request, new connections per second, its CPU). The load generator is the
working tree's for both. Results and reports go to `--out`/STACK.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from compare_seed import PGARENA, database_url, free_port, wait_healthy  # beside this script

ROOT = Path(__file__).resolve().parent.parent


def start(stack: str, src: Path, url: str) -> tuple[str, subprocess.Popen[bytes]]:
    """`pgarena serve` for `stack` with the service code under `src`."""
    port = free_port()
    env = {**os.environ, "DATABASE_URL": url, "PYTHONPATH": str(src)}
    command = [*PGARENA, "serve", "--stack", stack, "--port", str(port)]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL)
    return f"http://127.0.0.1:{port}", process


def measure(stack: str, old: str, new: str, url: str, args: argparse.Namespace) -> None:
    """One A/B run of the old and the new server of `stack`; pgarena prints its table."""
    command = [
        *PGARENA, "run", "--target", f"old-{stack}={old}", "--target", f"new-{stack}={new}",
        "--target-database", url,
        "-w", args.workload, "-c", str(args.concurrency), "-r", str(args.repeats),
        "-d", args.duration, "--warmup", "1s", "--out", str(args.out / stack),
    ]  # fmt: skip
    subprocess.run(command, check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("old", help="the revision to compare the working tree with")
    parser.add_argument("-s", "--stacks", default="async")
    parser.add_argument("-w", "--workload", default="db")
    parser.add_argument("-c", "--concurrency", type=int, default=50)
    parser.add_argument("-r", "--repeats", type=int, default=4)
    parser.add_argument("-d", "--duration", default="3s")
    parser.add_argument("--out", type=Path, default=Path("revision-compare"))
    args = parser.parse_args()
    # A kill ends the script through its `finally`, which stops the servers it started.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    stacks = args.stacks.split(",")
    url = database_url()
    with tempfile.TemporaryDirectory(prefix="pgarena-old-") as directory:
        old = Path(directory) / "tree"
        git = ["git", "-C", str(ROOT)]
        subprocess.run([*git, "worktree", "add", "--detach", str(old), args.old], check=True)
        servers: dict[tuple[str, str], tuple[str, subprocess.Popen[bytes]]] = {}
        try:
            for stack in stacks:
                for version, src in (("old", old / "src"), ("new", ROOT / "src")):
                    servers[stack, version] = start(stack, src, url)
            for base, process in servers.values():
                wait_healthy(f"{base}/health", process)
            for stack in stacks:
                measure(stack, servers[stack, "old"][0], servers[stack, "new"][0], url, args)
        finally:
            for _, process in servers.values():
                process.terminate()
                process.wait()
            subprocess.run([*git, "worktree", "remove", "--force", str(old)], check=False)


if __name__ == "__main__":
    main()
