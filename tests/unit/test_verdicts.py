"""Paired verdicts between stacks: known repeats in, known ratios, intervals and calls out."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from rich.console import Console
from scipy import stats as scipy_stats

from pgarena.bench.display import print_summary
from pgarena.results.model import Cell, CellKey, Run
from pgarena.results.stats import Estimate
from pgarena.results.summary import summarize_run
from pgarena.results.verdicts import MIN_EFFECT, paired_comparison, stack_comparisons


def test_a_paired_interval_comes_from_the_per_repeat_log_ratios() -> None:
    base, new = Estimate.from_values([100.0, 200.0]), Estimate.from_values([150.0, 290.0])
    ratios = [math.log(1.5), math.log(1.45)]
    result = paired_comparison(base, new, ratios, pooled=None)
    assert result is not None
    assert result.ratio == pytest.approx(440 / 300)  # the ratio of the means shown in tables
    half = scipy_stats.t.ppf(0.975, 1) * abs(ratios[0] - ratios[1]) / math.sqrt(2) / math.sqrt(2)
    assert result.ci95_low == pytest.approx(result.ratio * math.exp(-half))
    assert result.ci95_high == pytest.approx(result.ratio * math.exp(half))
    assert result.df == 1


def test_pooling_borrows_degrees_of_freedom_from_the_workloads_other_comparisons() -> None:
    base, new = Estimate.from_values([100.0, 200.0]), Estimate.from_values([150.0, 290.0])
    ratios = [math.log(1.5), math.log(1.45)]
    alone = paired_comparison(base, new, ratios, pooled=None)
    pooled = paired_comparison(base, new, ratios, pooled=(0.0005, 20.0))
    assert alone is not None and pooled is not None
    assert pooled.df == 21
    assert pooled.ci95_high - pooled.ci95_low < alone.ci95_high - alone.ci95_low
    assert pooled.verdict == "faster"


def test_no_pairs_and_no_pool_means_no_paired_interval() -> None:
    base, new = Estimate.from_values([100.0]), Estimate.from_values([150.0])
    assert paired_comparison(base, new, [math.log(1.5)], pooled=None) is None
    assert paired_comparison(base, new, [], pooled=(0.01, 10.0)) is None


def _run(values: dict[str, list[float]]) -> Run:
    """A run of one workload whose stacks measured these throughputs, repeat by repeat."""
    cells = tuple(
        Cell(CellKey(stack, "db", 10), repeat, "ok", None, "2026-01-01T00:00:00Z", rps=rps)
        for repeat in range(3)
        for stack, series in values.items()
        for rps in [series[repeat]]
    )
    plan = {"stacks": list(values), "workloads": ["db"]}
    return Run(
        2, "complete", "2026-01-01T00:00:00Z", None, {}, plan, cells, tuple(summarize_run(cells))
    )


def test_drift_that_moves_both_stacks_does_not_hide_a_steady_ratio() -> None:
    # The machine's speed swings 2x between repeats; the second stack is 1.3x the first in
    # every one of them. Unpaired, the swing would swamp the difference; paired, it cancels.
    run = _run({"a": [500.0, 1000.0, 700.0], "b": [650.0, 1300.0, 910.0]})
    [comparison] = stack_comparisons(run)
    assert comparison.rps is not None
    assert comparison.rps.ratio == pytest.approx(1.3)
    assert comparison.rps.verdict == "faster"
    assert comparison.rps.ci95_low == pytest.approx(1.3, rel=1e-6)  # no spread in the ratio


def test_verdicts_are_holm_corrected_over_the_table() -> None:
    # Five stacks each a little and noisily faster than the first: individually some would
    # be called, but not after correcting for five comparisons.
    noisy = {
        "base": [100.0, 100.0, 100.0],
        **{f"s{i}": [104.0 + i, 99.0, 108.0] for i in range(5)},
    }
    comparisons = stack_comparisons(_run(noisy))
    assert len(comparisons) == 5
    assert all(c.rps is not None and c.rps.verdict == "within noise" for c in comparisons)


def test_a_steady_difference_smaller_than_the_minimum_effect_is_not_a_winner() -> None:
    # Both stacks at a shared ceiling: b is 3% ahead in every repeat, so tightly that the
    # interval excludes 1, but a 3% lead at a ceiling is what the next run calls a tie.
    run = _run({"a": [400.0, 390.0, 395.0], "b": [412.0, 402.0, 407.0]})
    [comparison] = stack_comparisons(run)
    assert comparison.rps is not None
    assert comparison.rps.ci95_low is not None and comparison.rps.ci95_low > 1
    assert comparison.rps.verdict == "within noise"
    assert comparison.rps.p_better is not None and comparison.rps.p_better > 0.5


def test_a_difference_whose_whole_interval_clears_the_minimum_effect_is_called() -> None:
    run = _run({"a": [400.0, 390.0, 395.0], "b": [360.0, 353.0, 356.0]})
    [comparison] = stack_comparisons(run)
    assert comparison.rps is not None
    assert comparison.rps.ci95_high is not None and comparison.rps.ci95_high < 1 - MIN_EFFECT
    assert comparison.rps.verdict == "slower"
    assert comparison.rps.p_worse is not None and comparison.rps.p_worse < 0.01


def _run_with_tails(rps: dict[str, list[float]], p99: dict[str, list[float]]) -> Run:
    """`_run`, each repeat also with its p99 latency in ms."""
    cells = tuple(
        Cell(
            CellKey(stack, "db", 10), repeat, "ok", None, "2026-01-01T00:00:00Z",
            rps=rps[stack][repeat], latency_ms={"p50": 1.0, "p99": p99[stack][repeat]},
        )
        for repeat in range(3)
        for stack in rps
    )  # fmt: skip
    plan = {"stacks": list(rps), "workloads": ["db"]}
    return Run(
        2, "complete", "2026-01-01T00:00:00Z", None, {}, plan, cells, tuple(summarize_run(cells))
    )


def test_a_shorter_tail_is_called_faster_on_p99_while_throughput_is_a_tie() -> None:
    # The same throughput; b's p99 is 0.6x a's in every repeat, however the machine moved.
    run = _run_with_tails(
        {"a": [500.0, 1000.0, 700.0], "b": [505.0, 995.0, 700.0]},
        {"a": [20.0, 10.0, 14.0], "b": [12.0, 6.1, 8.3]},
    )
    [comparison] = stack_comparisons(run)
    assert comparison.rps is not None and comparison.rps.verdict == "within noise"
    tail = comparison.latency_p99_ms
    assert tail is not None and not tail.higher_is_better
    assert tail.ratio == pytest.approx(26.4 / 44.0)  # the ratio of the mean p99s
    assert tail.ci95_high is not None and tail.ci95_high < 1 - MIN_EFFECT
    assert tail.verdict == "faster"
    assert tail.p_better is not None and tail.p_better < 0.01


def test_a_longer_tail_is_called_slower_on_p99() -> None:
    run = _run_with_tails(
        {"a": [500.0, 510.0, 505.0], "b": [500.0, 510.0, 505.0]},
        {"a": [10.0, 11.0, 10.5], "b": [15.0, 16.6, 15.6]},
    )
    [comparison] = stack_comparisons(run)
    tail = comparison.latency_p99_ms
    assert tail is not None and tail.ci95_low is not None and tail.ci95_low > 1 + MIN_EFFECT
    assert tail.verdict == "slower"
    assert tail.p_worse is not None and tail.p_worse < 0.01


def test_the_terminal_table_shows_a_called_p99_ratio_and_says_what_it_is(tmp_path: Path) -> None:
    run = _run_with_tails(
        {"a": [500.0, 1000.0, 700.0], "b": [505.0, 995.0, 700.0], "c": [500.0, 990.0, 705.0]},
        {"a": [20.0, 10.0, 14.0], "b": [12.0, 6.1, 8.3], "c": [19.0, 10.5, 14.2]},
    )
    console = Console(record=True, width=200)
    print_summary(run, tmp_path / "results.json", console)
    text = console.export_text()
    rows = {line.split("│")[3].strip(): line for line in text.splitlines() if line.startswith("│")}
    assert "(0.6x)" in rows["b"]  # called: b's p99 is 0.6x a's
    assert "x)" not in rows["a"] and "x)" not in rows["c"]  # the base; within noise
    assert "p99 (Nx): the p99's ratio to a's" in " ".join(text.split())


def test_on_an_80_column_terminal_each_stack_keeps_its_figures_on_one_line(
    tmp_path: Path,
) -> None:
    names = ["async-psycopg3", "async-raw", "async"]  # cut to 5 letters they would all match
    run = _run_with_tails(
        {name: [500.0, 510.0, 505.0] for name in names},
        {name: [10.0, 11.0, 10.5] for name in names},
    )
    console = Console(record=True, width=80)
    print_summary(run, tmp_path / "results.json", console)
    lines = console.export_text().splitlines()
    assert "db, c=10" in [line.strip() for line in lines]  # the cells' workload and clients
    header = next(line for line in lines if line.startswith("stack"))
    assert header.split() == [
        "stack",
        "req/s",
        "vs",
        "async-psycopg3",
        "p99",
        "ms",
        "req/CPU-s",
        "!",
    ]
    for name in names:
        [row] = [line for line in lines if line.split(" ")[0] == name]  # the whole name
        assert row.count("±") == 2  # req/s and p99
        assert ("-" if name == names[0] else "within noise") in row  # the verdict
    assert any("CPU shares" in line for line in lines)  # where the column left out is


def test_on_a_wide_terminal_the_summary_is_one_table_with_the_cpu_shares(tmp_path: Path) -> None:
    run = _run_with_tails({"a": [500.0, 510.0, 505.0]}, {"a": [10.0, 11.0, 10.5]})
    console = Console(record=True, width=200)
    print_summary(run, tmp_path / "results.json", console)
    [header] = [line for line in console.export_text().splitlines() if "workload" in line]
    assert [cell.strip() for cell in header.strip("┃").split("┃")][-2:] == ["CPU srv/pg/gen", "!"]


def test_a_noisy_run_on_80_columns_leaves_out_requests_per_cpu_second_not_its_rows(
    tmp_path: Path,
) -> None:
    # Wide intervals ("5,150 ± 1,371") on every figure, a verdict within noise and a called
    # p99 ratio: even without the CPU shares the table needs more than 80 columns, and rich
    # would fold every row in two.
    noisy = {"sync": (1650.0, 80.0), "async-psycopg3": (1700.0, 78.0), "async-raw": (5150.0, 30.0)}
    cells = tuple(
        Cell(
            CellKey(stack, "db", 100), repeat, "ok", None, "2026-01-01T00:00:00Z",
            rps=rps * swing, latency_ms={"p50": 1.0, "p99": p99 / swing},
            requests_per_server_cpu_s=rps * 1.1 * swing,
        )
        for repeat, swing in enumerate((0.8, 1.2, 1.0))
        for stack, (rps, p99) in noisy.items()
    )  # fmt: skip
    plan = {"stacks": list(noisy), "workloads": ["db"]}
    summaries = tuple(summarize_run(cells))
    run = Run(2, "complete", "2026-01-01T00:00:00Z", None, {}, plan, cells, summaries)
    console = Console(record=True, width=80)
    print_summary(run, tmp_path / "results.json", console)
    lines = console.export_text().splitlines()
    header = next(line for line in lines if line.startswith("stack"))
    assert "req/CPU-s" not in header and "p99 ms" in header
    for name in noisy:
        [row] = [line for line in lines if line.split(" ")[0] == name]  # the whole name
        assert row.count("±") == 2  # req/s and p99, each on the stack's one line
    assert "within noise" in " ".join(lines) and "(0.37x)" in " ".join(lines)
    note = " ".join(" ".join(lines).split())
    assert "CPU shares (server/PostgreSQL/generator) and requests per server CPU-second" in note
