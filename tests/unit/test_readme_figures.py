"""The README's account of the kept default run against that run's own file.

"What that run says" is written by hand from `docs/example-run/results.json`. Each figure it
quotes is recomputed here, by the code that writes the reports, so that the prose and the
run cannot drift apart: re-measure the example run, and this test names every sentence to
rewrite.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pgarena.results.file import load_run
from pgarena.results.model import CellKey, Run, Summary
from pgarena.results.stats import Comparison
from pgarena.results.verdicts import stack_comparisons

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def run() -> Run:
    return load_run(ROOT / "docs" / "example-run")


@pytest.fixture(scope="module")
def says() -> str:
    """The paragraph, on one line."""
    readme = (ROOT / "README.md").read_text()
    paragraph = readme.split("What that run says", 1)[1].split("\n\n", 1)[0]
    return " ".join(paragraph.split())


@pytest.fixture(scope="module")
def verdicts(run: Run) -> dict[CellKey, Comparison]:
    return {c.key: c.rps for c in stack_comparisons(run) if c.rps is not None}


def _summary(run: Run, stack: str, workload: str, level: int) -> Summary:
    summary = run.summary(CellKey(stack, workload, level))
    assert summary is not None, f"{stack}/{workload}@{level} is not in the kept run"
    return summary


def _factor(comparison: Comparison) -> str:
    return f"{comparison.ratio:.2f}x ({comparison.ci95_low:.2f}-{comparison.ci95_high:.2f})"


@pytest.mark.parametrize(
    ("stack", "quoted_as"),
    [
        ("async", "async SQLAlchemy served {}"),
        ("async-psycopg3", "async SQLAlchemy on psycopg 3 {}"),
        ("sync-raw", "raw psycopg 3 {}"),
        ("async-raw", "raw asyncpg {}"),
    ],
)
def test_the_ratios_at_concurrency_10_are_the_runs_and_called_faster(
    verdicts: dict[CellKey, Comparison], says: str, stack: str, quoted_as: str
) -> None:
    comparison = verdicts[CellKey(stack, "standard", 10)]
    assert quoted_as.format(_factor(comparison)) in says
    assert comparison.verdict == "faster"


def test_the_order_at_concurrency_100_and_its_tail(
    run: Run, verdicts: dict[CellKey, Comparison], says: str
) -> None:
    async_orm = verdicts[CellKey("async", "standard", 100)]
    raw = verdicts[CellKey("async-raw", "standard", 100)]
    assert f"(async {async_orm.ratio:.2f}x, raw asyncpg {raw.ratio:.2f}x)" in says
    assert async_orm.verdict == raw.verdict == "faster"
    p99 = {s: _summary(run, s, "standard", 100).latency_p99_ms.mean for s in ("async", "sync")}
    assert f"p99 was {p99['async']:.0f} ms against {p99['sync']:.0f} ms for sync" in says


def test_a_difference_inside_the_margin_is_quoted_as_within_noise(
    verdicts: dict[CellKey, Comparison], says: str
) -> None:
    comparison = verdicts[CellKey("sync-psycopg3", "standard", 100)]
    assert f"served {_factor(comparison)} psycopg2's requests at concurrency 100" in says
    assert comparison.ci95_high < 1 and comparison.verdict == "within noise"


def test_slow_db_is_within_noise_everywhere_at_the_quoted_rates(
    run: Run, verdicts: dict[CellKey, Comparison], says: str
) -> None:
    for level in (10, 100):
        called = [k.stack for k, c in verdicts.items() if k.workload == "slow-db"
                  and k.concurrency == level and c.verdict != "within noise"]  # fmt: skip
        assert called == [], f"slow-db at {level}: {called} called, the README says none"
        rates = [_summary(run, s, "slow-db", level).rps.mean for s in run.stacks]
        assert f"{min(rates):.0f}-{max(rates):.0f} requests/s" in says


def test_the_medians_quoted_against_the_seeds_claim(run: Run, says: str) -> None:
    medians = [_summary(run, s, "slow-db", 100).latency_p50_ms.mean for s in ("sync", "async")]
    assert f"the medians were {medians[0]:.0f} ms and {medians[1]:.0f} ms" in says


def test_the_flicker_the_margin_settles_is_within_noise_in_the_kept_run(
    verdicts: dict[CellKey, Comparison], says: str
) -> None:
    comparison = verdicts[CellKey("async-psycopg3", "slow-db", 100)]
    slower = round((1 - comparison.ratio) * 100)
    assert f"{slower}% slower than sync in the first run" in says
    assert comparison.ci95_high < 1 and comparison.verdict == "within noise"
