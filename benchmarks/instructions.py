"""Instructions per request of one route on one stack, counted by valgrind: a cost that a
noisy machine does not move.

    PGARENA_DATA_DIR=/tmp/pg-count .venv/bin/python benchmarks/instructions.py -s async-raw /db

On a shared machine the CPU time of a request moves by 10-30% between runs, so a change worth
5% cannot be seen in `pgarena run` until it has been repeated many times. The number of
instructions the server's process executes for a request barely moves: this script runs the
app in-process (no uvicorn, no load generator, the real database), `CONCURRENCY` requests at
a time, under cachegrind twice, with `--requests` and three times as many, and divides the
difference by the extra requests, so that start-up and warm-up cancel out. What it does not
count: the kernel's work (system calls, here the socket I/O with PostgreSQL) and PostgreSQL's
own, and what caches and branch predictors make of the instructions. So it ranks changes to
the Python path; `pgarena run` remains the measure of throughput.

The request limits' watch for a departed client starts after 50 ms; under valgrind, which
runs 50 times slower, every request would reach it, so it is pushed out of reach here and the
count is that of a request answered within 50 ms. `--watched` counts the other kind, common
under load on the ORM stacks: the watch starts at once, and the client's `receive` wakes when
the answer is complete, as uvicorn's does. `--exempt` counts the route without the request
limits. `-s seed-sync` and `-s seed-async` count the seed-style app (`seed_app.py`) instead
of a stack. Needs valgrind (`apt-get install valgrind`).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import subprocess
import sys

import seed_app  # beside this script
from compare_seed import database_url

CONCURRENCY = 50
WARMUP = 200


def scope_for(target: str) -> dict:
    path, _, query = target.partition("?")
    return {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
        "scheme": "http", "path": path, "raw_path": path.encode(), "root_path": "",
        "query_string": query.encode(), "headers": [(b"host", b"localhost")],
        "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80), "state": {},
    }  # fmt: skip


async def serve(stack: str, target: str, requests: int, exempt: bool, watched: bool) -> None:
    """`requests` GETs of `target` (after a warm-up), CONCURRENCY at a time, in this process."""
    from pgarena.service import limits
    from pgarena.service.app import create_app
    from pgarena.settings import Settings

    limits.WATCH_AFTER_S = 0 if watched else 1e6  # see the module docstring
    if stack.startswith("seed-"):
        os.environ["SEED_STYLE"] = stack.removeprefix("seed-")
        app = seed_app.create_app()
    else:
        app = create_app(Settings(stack=stack, database_url=os.environ["DATABASE_URL"]))
    if exempt:
        for middleware in app.user_middleware:
            if "exempt" in middleware.kwargs:
                middleware.kwargs["exempt"] = {*middleware.kwargs["exempt"], target.split("?")[0]}
    never = asyncio.Event()

    async def one() -> None:
        messages = [{"type": "http.request", "body": b"", "more_body": False}]
        answered = asyncio.Event() if watched else never

        async def receive() -> dict:
            if messages:
                return messages.pop()
            await answered.wait()  # the client never leaves; --watched: woken by the answer
            return {"type": "http.disconnect"}

        statuses = []

        async def send(message: dict) -> None:
            if message["type"] == "http.response.start":
                statuses.append(message["status"])
            elif watched and not message.get("more_body"):
                answered.set()

        await app(scope_for(target), receive, send)
        if statuses != [200]:
            raise SystemExit(f"{target} answered {statuses}")

    async def client(count: int) -> None:
        for _ in range(count):
            await one()

    async with app.router.lifespan_context(app):
        for count in (WARMUP, requests):
            await asyncio.gather(*(client(count // CONCURRENCY) for _ in range(CONCURRENCY)))


def count(args: argparse.Namespace, requests: int) -> int:
    """Instructions of one whole run of `serve` under cachegrind."""
    command = [
        "valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null",
        sys.executable, __file__, "--serve", str(requests), "-s", args.stack, args.target,
        *(["--exempt"] if args.exempt else []), *(["--watched"] if args.watched else []),
    ]  # fmt: skip
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    finished = subprocess.run(command, env=env, capture_output=True, text=True)
    found = re.search(r"I\s+refs:\s+([\d,]+)", finished.stderr)
    if finished.returncode != 0 or found is None:
        raise SystemExit(finished.stderr[-2000:])
    return int(found.group(1).replace(",", ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("target", help="the route, e.g. /db or '/queries?queries=20'")
    parser.add_argument("-s", "--stack", default="async-raw", help="or seed-sync, seed-async")
    parser.add_argument("-n", "--requests", type=int, default=500)
    parser.add_argument("--exempt", action="store_true", help="without the request limits")
    parser.add_argument("--watched", action="store_true", help="with the disconnect watch")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)  # the counted child
    args = parser.parse_args()
    if args.serve is not None:
        import uvloop

        uvloop.run(serve(args.stack, args.target, args.serve, args.exempt, args.watched))
        return
    # The embedded PostgreSQL, migrated and seeded as for a run, unless DATABASE_URL is set.
    os.environ["DATABASE_URL"] = os.environ.get("DATABASE_URL") or database_url()
    short, long = count(args, args.requests), count(args, 3 * args.requests)
    per_request = (long - short) / (2 * args.requests)
    print(f"{args.stack} GET {args.target}: {per_request:,.0f} instructions per request")


if __name__ == "__main__":
    main()
