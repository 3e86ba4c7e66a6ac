"""Two revisions of pgarena's service side by side: does a change make a stack faster?

    PGARENA_DATA_DIR=/tmp/pg-ab .venv/bin/python benchmarks/compare_revisions.py HEAD~1 \\
        -s async,sync-psycopg3 -w db -c 50 -r 4

Checks the old revision out into a temporary git worktree, starts each stack twice on one
database (the old revision's service and the working tree's), and loads the servers in turn
with `pgarena run --target`, repeat after repeat, rotating the order, so that the machine's
drift spreads over both. The load generator is the working tree's for both. Prints, per
stack, the geometric mean of the per-repeat throughput ratios new / old (the repeats are
paired: repeat r of both met the same machine) with each repeat's ratio, and the ratios of
p99. On a noisy machine only a ratio whose repeats agree says anything.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from statistics import geometric_mean

from compare_seed import PGARENA, database_url, free_port, wait_healthy  # beside this script

ROOT = Path(__file__).resolve().parent.parent


def start(stack: str, src: Path, url: str) -> tuple[str, subprocess.Popen[bytes]]:
    """`pgarena serve` for `stack` with the service code under `src`."""
    port = free_port()
    env = {**os.environ, "DATABASE_URL": url, "PYTHONPATH": str(src)}
    command = [*PGARENA, "serve", "--stack", stack, "--port", str(port)]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL)
    return f"http://127.0.0.1:{port}", process


def measure(stack: str, base: str, args: argparse.Namespace, out: Path) -> tuple[float, float]:
    """Requests/s and p99 (ms) of one server, one repeat."""
    command = [
        *PGARENA, "run", "--target", base, "--stacks", stack, "-w", args.workload,
        "-c", str(args.concurrency), "-r", "1", "-d", args.duration, "--warmup", "1s",
        "--out", str(out), "-q",
    ]  # fmt: skip
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    (cell,) = json.loads((out / "results.json").read_text())["cells"]
    if cell["status"] != "ok":
        raise SystemExit(f"{stack} at {base}: {cell['error']}")
    return cell["rps"], cell["latency_ms"]["p99"]


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
        results: dict[tuple[str, str], list[tuple[float, float]]] = {}
        try:
            for stack in stacks:
                for version, src in (("old", old / "src"), ("new", ROOT / "src")):
                    servers[stack, version] = start(stack, src, url)
                    results[stack, version] = []
            for base, process in servers.values():
                wait_healthy(f"{base}/health", process)
            names = list(servers)
            for repeat in range(args.repeats):
                # Interleaved, and rotated so that no server always goes first.
                order = names[repeat % len(names) :] + names[: repeat % len(names)]
                for stack, version in order:
                    out = args.out / f"{stack}-{version}-r{repeat}"
                    measured = measure(stack, servers[stack, version][0], args, out)
                    results[stack, version].append(measured)
                    print(f"repeat {repeat} {stack} {version}: {measured}", file=sys.stderr)
        finally:
            for _, process in servers.values():
                process.terminate()
                process.wait()
            subprocess.run([*git, "worktree", "remove", "--force", str(old)], check=False)
    print(f"{args.workload} at {args.concurrency} clients, {args.repeats} repeats, new / old:")
    for stack in stacks:
        pairs = list(zip(results[stack, "new"], results[stack, "old"], strict=True))
        throughput = [new[0] / old_[0] for new, old_ in pairs]
        p99 = [new[1] / old_[1] for new, old_ in pairs]
        print(
            f"  {stack:15} throughput {geometric_mean(throughput):.2f}x "
            f"({', '.join(f'{x:.2f}' for x in throughput)}), "
            f"p99 {geometric_mean(p99):.2f}x ({', '.join(f'{x:.2f}' for x in p99)})"
        )


if __name__ == "__main__":
    main()
