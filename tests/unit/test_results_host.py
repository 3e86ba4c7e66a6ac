"""The machine's speed through a run and between runs: probes in, warnings out."""

from __future__ import annotations

import pytest

from pgarena.bench.probe import probe_ms
from pgarena.report.compare import setting_warnings
from pgarena.report.figures import build_figures
from pgarena.report.findings import findings
from pgarena.report.tables import metadata_rows
from pgarena.results.host import CHANGE_WARNING, change_warning, drift_warning, host_speed
from pgarena.results.model import Cell, CellKey, Run
from pgarena.results.summary import summarize_run


def _run(probes: list[float | None]) -> Run:
    cells = tuple(
        Cell(CellKey("async", "db", 10), repeat, "ok", None, "", rps=1e3, probe_ms=probe)
        for repeat, probe in enumerate(probes)
    )
    plan = {"stacks": ["async"], "workloads": ["db"]}
    return Run(
        2, "complete", "2026-01-01T00:00:00Z", None, {}, plan, cells, tuple(summarize_run(cells))
    )


def test_the_speed_is_the_spread_of_the_probes_that_were_recorded() -> None:
    speed = host_speed(_run([5.0, None, 6.0, 5.5, 5.2]).cells)
    assert speed is not None
    assert speed.probes == (5.0, 5.2, 5.5, 6.0) and speed.median_ms == pytest.approx(5.35)
    assert speed.quartiles_ms == pytest.approx((5.15, 5.625))
    assert speed.drift == pytest.approx(5.625 / 5.15 - 1)
    assert host_speed(_run([5.0, 9.0, 5.0]).cells).drift is None  # too few to tell
    assert host_speed(_run([None, None]).cells) is None  # older files, --target runs


def test_a_run_whose_machine_slowed_down_says_so_in_its_findings_and_metadata() -> None:
    steady = _run([5.0, 5.1, 5.2, 5.0, 5.1])
    moment = _run([5.0, 5.0, 5.1, 5.0, 5.1, 9.0])  # one slow moment: not the run's speed
    drifting = _run([5.0, 5.0, 5.0, 6.0, 6.0, 6.0])  # half the run 20% slower
    assert drift_warning(host_speed(steady.cells)) is None
    assert drift_warning(host_speed(moment.cells)) is None
    warning = drift_warning(host_speed(drifting.cells))
    assert warning is not None and "moved 20%" in warning and "5.00-6.00 ms" in warning
    said = findings(build_figures(drifting))
    assert any(sentence.startswith("The machine's speed moved 20%") for sentence in said)
    assert not any("speed moved" in sentence for sentence in findings(build_figures(steady)))
    rows = dict(metadata_rows(build_figures(steady)))
    assert rows["Machine speed"].startswith("5.10 ms median, 5.00-5.20 ms over 5 cells")


def test_compare_warns_when_the_two_runs_had_machines_of_different_speeds() -> None:
    base = _run([5.0, 5.0, 5.0])
    slower = _run([5.0 * (1 + CHANGE_WARNING) + 0.2] * 3)
    faster = _run([4.0] * 3)
    same = _run([5.2, 5.3, 5.1])
    assert not any("machine ran" in w for w in setting_warnings(base, same))
    [warning] = [w for w in setting_warnings(base, slower) if "machine ran" in w]
    assert warning.startswith("the machine ran slower in NEW: a fixed piece of CPU work took 1.14x")
    assert change_warning(host_speed(base.cells), host_speed(faster.cells)).startswith(
        "the machine ran faster in NEW"
    )
    assert change_warning(host_speed(base.cells), None) is None


def test_the_probe_is_cpu_time_of_a_few_milliseconds() -> None:
    values = [probe_ms() for _ in range(3)]
    assert all(0.1 < value < 200 for value in values)


def test_a_cell_keeps_its_probe_in_the_result_file() -> None:
    [cell] = _run([4.25]).cells
    assert Cell.from_dict(cell.to_dict()).probe_ms == 4.25
    older = {key: value for key, value in cell.to_dict().items() if key != "probe_ms"}
    assert Cell.from_dict(older).probe_ms is None
