"""The machine's speed, between cells: a fixed piece of Python work timed in CPU time.

The busy-machine warning counts the CPU other processes take. It cannot see a machine that
runs the same instructions more slowly: a neighbour on a shared host taking cache and memory
bandwidth, a CPU changing its clock, a throttled virtual machine. On this project's own
2-core VM the server's CPU per request once moved 2x between repeats while CPU steal stayed
at 1.5% and no other process was busy.

So before each cell, with its load not yet started, the orchestrator times this probe: the
kind of work a Python web server does (objects built, JSON written and read, a sort) in this
thread's CPU time, the fastest of `ROUNDS` rounds: a round that a preemption or a moment's
hiccup hit does not count, a machine slow for the whole probe (about 50 ms) does. On an idle
2-core VM the fastest of 15 varied by 2-12% between the 10th and 90th percentile of 30
probes, where the median of 7 varied by 26-61%. What the run does with it is in
`results.host`.
"""

from __future__ import annotations

import json
import time

ROUNDS = 15


def _work() -> int:
    rows = [{"id": i, "name": f"user{i}", "score": i * 7 % 101} for i in range(2000)]
    text = json.dumps(rows)
    back = json.loads(text)
    back.sort(key=lambda row: (row["score"], row["id"]))
    return sum(row["score"] for row in back) + len(text)


def probe_ms() -> float:
    """CPU milliseconds one round of the fixed work takes on this machine now (a few ms)."""
    rounds = []
    for _ in range(ROUNDS):
        start = time.thread_time_ns()
        _work()
        rounds.append((time.thread_time_ns() - start) / 1e6)
    return min(rounds)
