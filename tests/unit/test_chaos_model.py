"""The chaos judgements on hand-made request records: windows, recovery, the issue's rules."""

from __future__ import annotations

import json
from types import SimpleNamespace

from pgarena.chaos.model import (
    Bounds,
    FaultResult,
    Sample,
    count_by_status,
    every_request_answered,
    judge_outage,
    recovery_seconds,
    split_windows,
)
from pgarena.chaos.report import markdown


def test_requests_started_before_the_window_ends_count_as_during() -> None:
    samples = [Sample(0.0, 0.1, "200"), Sample(0.9, 3.0, "503"), Sample(1.0, 1.1, "200")]
    during, after = split_windows(samples, window_end=1.0)
    assert during == samples[:2] and after == samples[2:]
    assert count_by_status(samples) == {"200": 2, "503": 1}


def test_recovery_is_the_first_200_ending_after_the_window() -> None:
    samples = [
        Sample(0.0, 0.5, "200"),  # before: does not count
        Sample(1.0, 1.2, "503"),
        Sample(1.1, 1.9, "200"),
        Sample(1.3, 1.6, "200"),
    ]
    assert abs(recovery_seconds(samples, window_end=1.0) - 0.6) < 1e-9  # type: ignore[operator]
    assert recovery_seconds(samples[:2], window_end=1.0) is None  # never recovered


def test_bounds_follow_the_service_deadline_and_fall_back_to_the_pool_timeout() -> None:
    assert (
        Bounds.from_settings(SimpleNamespace(request_deadline=3.0, pool_timeout=30)).longest_s == 4
    )
    assert Bounds.from_settings(SimpleNamespace(request_deadline=0, pool_timeout=2)).deadline_s == 2
    # Before the setting exists the issue's default (5 s) applies.
    assert Bounds.from_settings(SimpleNamespace(pool_timeout=30)).longest_s == 6


def _checks(result: FaultResult) -> dict[str, bool]:
    return {check.name: check.passed for check in result.checks}


def test_a_graceful_restart_passes() -> None:
    samples = [
        Sample(0.0, 0.01, "200"),
        Sample(1.0, 1.5, "503", retry_after=True),
        Sample(2.05, 2.3, "200"),
    ]
    result = judge_outage(FaultResult("async", "restart"), samples, 2.0, Bounds(5.0))
    assert result.passed, result.checks
    assert result.during == {"200": 1, "503": 1} and result.after == {"200": 1}
    assert result.longest_s == 0.5 and abs(result.recovery_s - 0.3) < 1e-9  # type: ignore[operator]


def test_each_rule_of_the_issue_fails_on_its_own() -> None:
    def judge(samples: list[Sample]) -> dict[str, bool]:
        return _checks(judge_outage(FaultResult("s", "f"), samples, 2.0, Bounds(5.0)))

    ok = Sample(2.1, 2.2, "200")
    assert not judge([Sample(1.0, 1.1, "500"), ok])["no 5xx but 503"]
    assert not judge([Sample(0.0, 6.5, "200"), ok])["longest request"]  # 6.5 s > 5 + 1
    assert not judge([Sample(1.0, 1.1, "503"), ok])["503 carries Retry-After"]
    assert not judge([Sample(2.1, 4.5, "200")])["time to first 200"]  # 2.5 s > 2 s
    assert not judge([Sample(1.0, 1.1, "503", True)])["time to first 200"]  # never
    assert judge([Sample(1.0, 1.1, "503", True), ok]) == dict.fromkeys(judge([ok]), True)


def test_a_timeout_or_a_reset_is_an_unanswered_request() -> None:
    samples = [Sample(0, 1, "200"), Sample(0, 20, "timeout"), Sample(0, 0, "error (ReadError)")]
    check = every_request_answered(samples)
    assert not check.passed and check.measured == "2 unanswered"


def test_the_report_shows_figures_and_every_failed_check() -> None:
    failed = judge_outage(FaultResult("sync", "freeze"), [Sample(0, 9.0, "200")], 8.0, Bounds(5.0))
    skipped = FaultResult("sync", "schemathesis", notes=["skipped: not installed"])
    document = {
        "started_at": "2026-01-01T00:00:00Z", "status": "complete", "quick": True,
        "bounds": {"request_deadline_s": 5.0, "longest_request_s": 6.0},
        "stacks": ["sync"], "passed": False,
        "results": [failed.to_json(), skipped.to_json()],
    }  # fmt: skip
    text = markdown(document)
    assert "## sync" in text and "| freeze | 1 x 200 | - | 9.00 s |" in text
    assert "freeze: longest request: 9.00 s (bound <= 6 s)" in text
    assert "| schemathesis |" in text and "skipped |" in text
    assert "**Some checks failed.**" in text


def test_the_result_file_keeps_every_fault_measured_before_a_crash(tmp_path) -> None:
    from pgarena.chaos.runner import ChaosConfig, ChaosWriter

    writer = ChaosWriter(ChaosConfig(stacks=["sync"], out_dir=tmp_path))
    writer.add(judge_outage(FaultResult("sync", "restart"), [Sample(0, 1, "200")], 0.5, Bounds()))
    # No finish(): the run died here. The file is whole and holds the fault measured.
    document = json.loads((tmp_path / "chaos.json").read_text())
    assert document["status"] == "running" and document["schema_version"] == 1
    assert [r["fault"] for r in document["results"]] == ["restart"]
    assert not list(tmp_path.glob(".results-*"))  # no temporary file left beside it
    writer.finish("complete")
    assert json.loads((tmp_path / "chaos.json").read_text())["passed"] is True


def test_the_html_report_has_the_same_rows_and_escapes_what_it_shows() -> None:
    from pgarena.chaos.report import html

    failed = judge_outage(FaultResult("sync", "freeze"), [Sample(0, 9.0, "200")], 8.0, Bounds())
    failed.notes.append("<script>alert(1)</script>")
    document = {
        "started_at": "2026-01-01T00:00:00Z", "status": "complete", "quick": False,
        "bounds": {"request_deadline_s": 5.0, "longest_request_s": 6.0},
        "stacks": ["sync", "async"], "passed": False, "results": [failed.to_json()],
    }  # fmt: skip
    page = html(document)
    assert "<h2>sync</h2>" in page and "<h2>async</h2>" not in page  # no empty section
    assert "9.00 s" in page and "longest request: 9.00 s (bound &lt;= 6 s)" in page
    assert "<script>" not in page and "&lt;script&gt;" in page
