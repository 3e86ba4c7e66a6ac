"""Plans, presets and the run command's option parsers: no database, no server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pgarena.bench.cli import parse_counts, parse_names, parse_seconds
from pgarena.bench.plan import PRESETS, build_plan
from pgarena.errors import UserError
from pgarena.results.file import SCHEMA_VERSION, validate
from pgarena.results.model import Run

GOLDEN = Path(__file__).parent / "data" / "results-v1.json"

SIX = ["sync", "async", "sync-psycopg3", "async-psycopg3", "async-raw", "sync-raw"]


def test_repeats_are_interleaved_so_every_stack_runs_before_the_next_repeat() -> None:
    plan = build_plan("standard", ["a", "b"], workloads=["db"], concurrency=[1], repeats=2)
    assert [(cell.stack, cell.repeat) for cell in plan.cells()] == [
        ("a", 0), ("b", 0), ("a", 1), ("b", 1)
    ]  # fmt: skip


def test_one_server_per_stack_runs_all_of_that_stacks_cells_in_a_row() -> None:
    plan = build_plan("quick", ["a", "b"], server_lifetime="stack")
    cells = plan.cells()
    first_block = [cell.stack for cell in cells[: len(cells) // 4]]
    assert set(first_block) == {"a"}
    assert plan.server_starts() == 2 * plan.repeats


def test_servers_alive_through_a_repeat_let_the_stacks_take_turns_cell_by_cell() -> None:
    plan = build_plan("quick", ["a", "b", "c"])
    assert plan.server_lifetime == "repeat"
    cells = plan.cells()
    assert [cell.stack for cell in cells[:6]] == ["a", "b", "c", "a", "b", "c"]
    assert len({(c.workload.name, c.concurrency) for c in cells[:3]}) == 1
    assert plan.server_starts() == 3 * plan.repeats


def test_the_default_run_fits_in_five_minutes_with_two_repeats_on_every_stack() -> None:
    plan = build_plan("quick", SIX)
    assert plan.estimate_s() <= 5 * 60
    assert plan.repeats >= 2  # an interval between fresh servers on every row
    assert {w.name for w in plan.workloads} == {"standard", "slow-db"}
    assert min(plan.concurrency) <= 10 and max(plan.concurrency) >= 100


def test_options_override_the_preset_and_skip_its_budget() -> None:
    plan = build_plan("quick", SIX, duration_s=7.0, repeats=3)
    assert plan.duration_s == 7.0 and plan.repeats == 3


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"duration_s": 1.0, "requests": 10}, "not both"),
        ({"duration_s": -1.0}, "--duration"),
        ({"server_lifetime": "forever"}, "--server-lifetime"),
        ({"workloads": ["nope"]}, "unknown workload"),
    ],
)
def test_contradictory_or_unknown_options_are_user_errors(options: dict, message: str) -> None:
    with pytest.raises(UserError, match=message):
        build_plan("quick", SIX, **options)


def test_an_unknown_preset_names_the_known_ones() -> None:
    with pytest.raises(UserError, match=", ".join(PRESETS)):
        build_plan("fast", SIX)


@pytest.mark.parametrize(
    ("text", "seconds"), [("10s", 10), ("500ms", 0.5), ("2m", 120), ("1.5", 1.5), (" 3 min", 180)]
)
def test_durations_parse_with_units(text: str, seconds: float) -> None:
    assert parse_seconds(text, "--duration") == pytest.approx(seconds)


def test_bad_durations_and_counts_are_user_errors() -> None:
    with pytest.raises(UserError, match="--duration"):
        parse_seconds("soon", "--duration")
    with pytest.raises(UserError, match=">= 1"):
        parse_counts("0,10", "--concurrency")
    with pytest.raises(UserError, match="numbers"):
        parse_counts("ten", "--concurrency")


def test_names_are_split_and_trimmed() -> None:
    assert parse_names("a, b,,c ") == ["a", "b", "c"]


def test_the_plan_in_the_result_file_records_the_series_interval() -> None:
    plan = build_plan("quick", SIX).to_dict()
    assert plan["series_interval_s"] > 0
    assert plan["repeats"] == 2 and plan["preset"] == "quick"


@pytest.mark.parametrize("preset", list(PRESETS))
def test_every_presets_plan_is_valid_in_a_result_file(preset: str) -> None:
    run = Run(SCHEMA_VERSION, "running", "2026-01-01T00:00:00Z", None, {}, {})
    document = run.to_dict()
    document["plan"] = build_plan(preset, SIX).to_dict()
    document["metadata"] = json.loads(GOLDEN.read_text())["metadata"]
    validate(document)
