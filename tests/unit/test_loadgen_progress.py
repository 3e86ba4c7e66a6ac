"""The live progress reading's p99, which the generator computes while the load runs."""

from __future__ import annotations

from pgarena.bench.loadgen.client import live_p99_ms


def test_the_live_p99_is_the_nearest_rank_in_ms() -> None:
    # 1..100 us: the 99th smallest is 99 us; 1..1000: the 990th; 101 values: the 100th.
    assert live_p99_ms(list(range(1, 101))) == 0.099
    assert live_p99_ms(list(range(1000, 0, -1))) == 0.990
    assert live_p99_ms(list(range(1, 102))) == 0.100
    assert live_p99_ms([7_000]) == 7.0


def test_no_answer_yet_has_no_p99() -> None:
    assert live_p99_ms([]) is None
