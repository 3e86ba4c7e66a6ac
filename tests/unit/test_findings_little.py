"""'p99 follows throughput': the report says when a closed loop's p99 ratio is the throughput's.

Known repeats in (throughput, mean latency and p99 that obey Little's law or not), the
sentence out. The figures are made up so that each reading is certain.
"""

from __future__ import annotations

from pgarena.report.figures import build_figures
from pgarena.report.findings import findings
from pgarena.results.model import Cell, CellKey, Run
from pgarena.results.summary import summarize_run

CLIENTS = 50
JITTER = (1.0, 1.02, 0.98)  # three repeats a little apart, differently for each stack


def _cell(stack: int, name: str, repeat: int, rps: float, tail: float, mean: float | None) -> Cell:
    """A repeat serving `rps`, whose p99 is `tail` times its mean latency; the mean (ms) is
    the clients over the throughput (a closed loop) unless given."""
    rps *= JITTER[(repeat + stack) % 3]
    mean = mean if mean is not None else 1000 * CLIENTS / rps
    latency = {"p50": mean, "p90": mean, "p99": mean * tail, "p99_9": mean * tail, "max": None}
    return Cell(
        CellKey(name, "db", CLIENTS), repeat, "ok", None, "2026-01-01T00:00:00Z",
        mode="closed", rps=rps, latency_ms={**latency, "mean": mean},
    )  # fmt: skip


def _sentence(stacks: dict[str, tuple[float, float, float | None]]) -> str | None:
    """The Little's-law finding of a run of these stacks: (throughput, p99 / mean, mean)."""
    cells = tuple(
        _cell(index, name, repeat, *figures)
        for repeat in range(3)
        for index, (name, figures) in enumerate(stacks.items())
    )
    plan = {"stacks": list(stacks), "workloads": ["db"], "concurrency": [CLIENTS]}
    summaries = tuple(summarize_run(cells))
    run = Run(2, "complete", "2026-01-01T00:00:00Z", None, {}, plan, cells, summaries)
    return next((s for s in findings(build_figures(run)) if "Little's law" in s), None)


def test_a_p99_ratio_that_is_the_inverse_of_the_throughput_ratio_is_said_to_be_its() -> None:
    sentence = _sentence({"async-raw": (8000, 1.4, None), "sync": (2000, 1.4, None)})
    assert sentence is not None
    expected = (
        "p99 ratio to async-raw's is what the throughput predicts for sync at concurrency 50."
    )
    assert expected in sentence
    assert "run with --rate" in sentence


def test_a_tail_beyond_the_throughput_and_a_tighter_one_are_named() -> None:
    # async: 6x async-raw's p99 at half its throughput (2x the latency); sync: 2.86x at a
    # quarter of it (4x the latency).
    sentence = _sentence(
        {"async-raw": (8000, 1.4, None), "async": (4000, 4.2, None), "sync": (2000, 1.0, None)}
    )
    assert sentence is not None
    assert "longer, a tail of its own, for async at concurrency 50 (6.00x," in sentence
    assert "shorter, a tighter tail, for sync at concurrency 50 (2.86x," in sentence
    assert "what the throughput predicts" not in sentence


def test_nothing_is_said_where_the_law_does_not_hold() -> None:
    # Mean latencies far from clients / throughput: an open loop, or clients that think.
    assert _sentence({"async-raw": (8000, 1.4, 2.0), "sync": (2000, 1.4, 8.0)}) is None
