"""SLO thresholds: every spelling a user may write, the mistakes they may make, the verdicts."""

from __future__ import annotations

import json

import pytest

from pgarena.errors import UserError
from pgarena.results.slo import Slo, SloResult, parse_slo


@pytest.mark.parametrize(
    ("text", "metric", "op", "threshold"),
    [
        ("p99<100ms", "p99", "<", 100.0),
        ("p50<=20ms", "p50", "<=", 20.0),
        ("p90<0.5s", "p90", "<", 500.0),
        ("p99.9<1s", "p99_9", "<", 1000.0),
        ("max<2s", "max", "<", 2000.0),
        ("mean<10ms", "mean", "<", 10.0),
        ("p99<250us", "p99", "<", 0.25),
        ("errors<1%", "error_rate", "<", 0.01),
        ("errors<=0", "error_rate", "<=", 0.0),
        ("errors<0.5%", "error_rate", "<", 0.005),
        ("rps>500", "rps", ">", 500.0),
        ("rps>=1e3", "rps", ">=", 1000.0),
        ("cpu_efficiency>1000", "cpu_efficiency", ">", 1000.0),
        # k6's own spellings
        ("p(99) < 200ms", "p99", "<", 200.0),
        ("avg<5ms", "mean", "<", 5.0),
        ("med<5ms", "p50", "<", 5.0),
    ],
)
def test_every_documented_form_parses(text: str, metric: str, op: str, threshold: float) -> None:
    slo = parse_slo(text)

    assert (slo.metric, slo.op) == (metric, op)
    assert slo.threshold == pytest.approx(threshold)
    assert (slo.stack, slo.workload) == (None, None)
    assert slo.text == text


@pytest.mark.parametrize(
    ("text", "stack", "workload"),
    [
        ("async-raw:db:p99<20ms", "async-raw", "db"),
        ("sync::errors<1%", "sync", None),
        (":fortunes:rps>100", None, "fortunes"),
        ("*:db:p99<50ms", None, "db"),
        ("async:*:rps>1", "async", None),
        ("::rps>1", None, None),
    ],
)
def test_a_scope_limits_the_slo_to_a_stack_and_or_workload(
    text: str, stack: str | None, workload: str | None
) -> None:
    slo = parse_slo(text)

    assert (slo.stack, slo.workload) == (stack, workload)
    assert slo.applies_to(stack or "sync-raw", workload or "json")
    assert slo.applies_to("other-stack", "other") == (stack is None and workload is None)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "expected METRIC<VALUE"),
        ("p99", "expected METRIC<VALUE"),
        ("p99=100ms", "expected METRIC<VALUE"),
        ("p99<<100ms", "expected METRIC<VALUE"),
        ("p99<-1ms", "expected METRIC<VALUE"),
        ("p99<ms", "expected METRIC<VALUE"),
        ("p99<100", "needs a unit"),
        ("p99<100h", "needs a unit"),
        ("latency<100ms", "unknown metric 'latency'"),
        ("p(95)<200ms", "unknown metric 'p95'"),  # not a recorded figure: refused, not unmet
        ("errors<5", "write a percentage"),
        ("errors<1ms", "write a percentage"),
        ("errors<150%", "cannot exceed 100%"),
        ("rps>500/s", "expected METRIC<VALUE"),
        ("rps>500ms", "plain number"),
        ("cpu_efficiency>10%", "plain number"),
        ("db:p99<20ms", "STACK:WORKLOAD:"),
        ("a:b:c:p99<20ms", "STACK:WORKLOAD:"),
    ],
)
def test_a_malformed_slo_is_a_one_line_user_error_that_names_it(text: str, reason: str) -> None:
    with pytest.raises(UserError) as caught:
        parse_slo(text)

    message = str(caught.value)
    assert message.startswith(f"invalid SLO {text!r}: ")
    assert reason in message
    assert "p99<100ms" in message  # an example of what works
    assert "\n" not in message


def test_the_users_spelling_is_kept_for_display() -> None:
    assert parse_slo("  async-raw:db: p99 < 20ms ").text == "async-raw:db: p99 < 20ms"


FIGURES = {
    "p50": 4.0,
    "p90": 9.0,
    "p99": 19.0,
    "p99_9": 40.0,
    "max": 120.0,
    "mean": 5.5,
    "rps": 2400.0,
    "error_rate": 0.002,
    "cpu_efficiency": 1800.0,
}


@pytest.mark.parametrize(
    ("text", "passed"),
    [
        ("p99<20ms", True),
        ("p99<19ms", False),  # strict
        ("p99<=19ms", True),
        ("p99.9<0.04s", False),
        ("max<1s", True),
        ("mean<5ms", False),
        ("errors<1%", True),
        ("errors<0.1%", False),
        ("errors<=0", False),
        ("rps>500", True),
        ("rps>=2400", True),
        ("rps>2400", False),
        ("cpu_efficiency>2000", False),
    ],
)
def test_an_slo_passes_or_fails_on_the_cells_figures(text: str, passed: bool) -> None:
    result = parse_slo(text).evaluate(FIGURES, stack="async", workload="db", concurrency=64)

    assert result.passed is passed
    assert result.observed == FIGURES[result.metric]
    assert (result.slo, result.stack, result.workload, result.concurrency) == (
        text,
        "async",
        "db",
        64,
    )
    assert result.reason is None


def test_no_errors_at_all_meets_errors_at_most_zero() -> None:
    assert parse_slo("errors<=0").evaluate({"error_rate": 0.0}).passed


@pytest.mark.parametrize("figures", [{}, {"p99": None}, {"p99": float("nan")}])
def test_a_figure_nobody_measured_fails_the_slo_and_says_why(figures: dict) -> None:
    result = parse_slo("p99<100ms").evaluate(figures)

    assert result.passed is False
    assert result.observed is None
    assert result.reason == "not measured"


def test_slos_and_their_results_survive_json() -> None:
    slo = parse_slo("async-raw:db:p99<20ms")
    result = slo.evaluate(FIGURES, stack="async-raw", workload="db", concurrency=8)

    assert Slo.from_dict(json.loads(json.dumps(slo.to_dict()))) == slo
    assert SloResult.from_dict(json.loads(json.dumps(result.to_dict()))) == result
    assert result.to_dict()["passed"] is True
