"""`pgarena claims`: run each catalogued claim's experiment and write a verdict table.

Each distinct experiment point (a workload at one load on one server configuration) is one
ordinary pgarena run with its own `results.json` under `<out>/runs/`, so every figure in the
table can be re-read, re-reported and compared with the usual commands. Claims that share a
point share its run. The table (`<out>/claims.md`) is computed from those runs only: a claim
whose experiment did not produce a figure is listed as not measured, with the reason.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path

from pgarena.claims.catalogue import Claim, Experiment, load_catalogue
from pgarena.claims.measure import measure, measure_slope
from pgarena.claims.verdict import Interval, sweep_verdict, verdict
from pgarena.errors import UserError
from pgarena.results.model import Run

# --quick: enough to put an interval on each figure, not to make it narrow.
QUICK = {"repeats": 2, "duration_s": 2.0, "warmup_s": 1.0}
FULL = {"repeats": 3, "duration_s": 10.0, "warmup_s": 2.0}
TABLE_NAME = "claims.md"


@dataclass
class Outcome:
    """What the runs gave: each point's run, or why it has none."""

    runs: dict[Experiment, Run]
    failures: dict[Experiment, str]


def run_claims(quick: bool, only: str | None, out: Path) -> Path:
    """Run the experiments of the selected claims, write the verdict table, return its path."""
    claims = select(load_catalogue(), only)
    points = experiment_points(claims, quick)
    outcome = run_points(points, out, quick)
    table = out / TABLE_NAME
    table.write_text(render_table(claims, outcome, quick), "utf-8")
    return table


def select(claims: tuple[Claim, ...], only: str | None) -> tuple[Claim, ...]:
    """The claims `--only` names (all without it); an unknown id is a one-line error."""
    if only is None:
        return claims
    wanted = [name.strip() for name in only.split(",") if name.strip()]
    known = {claim.id for claim in claims}
    unknown = [name for name in wanted if name not in known]
    if unknown or not wanted:
        raise UserError(f"--only: unknown claim {(unknown or [only])[0]!r}; see catalogue.toml")
    return tuple(claim for claim in claims if claim.id in wanted)


def points_of(claim: Claim, quick: bool) -> tuple[Experiment, ...]:
    """The experiment points of one claim. --quick measures for a fixed time instead of the
    seed's request count (seed 004's 100,000 requests would not fit)."""
    points = claim.experiment.points()
    return tuple(replace(p, requests=None) for p in points) if quick else points


def experiment_points(claims: tuple[Claim, ...], quick: bool) -> dict[Experiment, list[str]]:
    """Every point the claims need, with the stacks to run there (in first-named order)."""
    points: dict[Experiment, list[str]] = {}
    for claim in claims:
        for point in points_of(claim, quick):
            stacks = points.setdefault(point, [])
            stacks += [stack for stack in claim.compare if stack not in stacks]
    return points


def point_name(point: Experiment) -> str:
    """A directory name for a point: 'slow-db-c100-ms50-threads1-pool100'."""
    parts = [point.workload, f"c{point.concurrency}"]
    if point.workload == "slow-db":
        parts.append(f"ms{point.slow_ms}")
    for label, value in (
        ("threads", point.threads),
        ("pool", point.pool_size),
        ("overflow", point.max_overflow),
        ("n", point.requests),
    ):
        if value is not None:
            parts.append(f"{label}{value}")
    return re.sub(r"[^a-z0-9.-]", "-", "-".join(parts))


def run_points(points: dict[Experiment, list[str]], out: Path, quick: bool) -> Outcome:
    """One pgarena run per point, on one prepared database; say how long before starting."""
    from rich.console import Console

    from pgarena.bench.database import arena_database
    from pgarena.bench.plan import Plan, format_duration
    from pgarena.bench.runner import RunConfig, check_writable, run_plan
    from pgarena.bench.servers import ServerOptions
    from pgarena.bench.workloads import WORKLOADS

    check_writable(out)
    timing = QUICK if quick else FULL
    plans = {
        point: Plan(
            stacks=tuple(stacks),
            workloads=(WORKLOADS[point.workload],),
            concurrency=(point.concurrency,),
            repeats=int(timing["repeats"]),
            duration_s=None if point.requests else timing["duration_s"],
            requests=point.requests,
            warmup_s=timing["warmup_s"],
            rate=None,
            preset=None,
            slow_ms=point.slow_ms,
        )
        for point, stacks in points.items()
    }
    estimate = sum(plan.estimate_s() for plan in plans.values())
    console = Console(stderr=True)
    console.print(f"{len(plans)} experiments; estimated {format_duration(estimate)}")
    outcome = Outcome({}, {})
    with arena_database(console, purpose="pgarena claims") as database:
        for index, (point, plan) in enumerate(plans.items(), 1):
            name = point_name(point)
            console.print(f"[{index}/{len(plans)}] {name}", highlight=False)
            options = ServerOptions(
                threads=point.threads, pool_size=point.pool_size, max_overflow=point.max_overflow
            )
            config = RunConfig(plan, out / "runs" / name, server_options=options)
            try:
                writer = run_plan(replace(config, database=database))
            except UserError as error:
                outcome.failures[point] = str(error)
                continue
            outcome.runs[point] = writer.run
    return outcome


@dataclass(frozen=True)
class Row:
    """One claim's line in the table; `measured` is None when nothing was measured."""

    claim: Claim
    measured: str | None
    verdict: str
    holds_when: str = ""
    reason: str = ""


def judge_claim(claim: Claim, outcome: Outcome, quick: bool) -> Row:
    """Measure and judge one claim from the runs of its points."""
    points = points_of(claim, quick)
    missing = [p for p in points if p not in outcome.runs]
    if len(missing) == len(points):
        reasons = {outcome.failures.get(p, "did not run") for p in missing}
        return Row(claim, None, "", reason="; ".join(sorted(reasons)))
    sweep = claim.experiment.sweep
    if claim.per and sweep:
        runs = {
            getattr(p, sweep[0]): (outcome.runs[p], p.workload, p.concurrency)
            for p in points
            if p in outcome.runs
        }
        interval = measure_slope(claim, runs)
        if interval is None:
            return Row(claim, None, "", reason="too few finished repeats for a slope")
        return Row(claim, f"{_interval(interval)} per {claim.per[:-1]}", verdict(claim, interval))
    measured = {
        p: measure(claim, outcome.runs[p], p.workload, p.concurrency) if p in outcome.runs else None
        for p in points
    }
    if all(value is None for value in measured.values()):
        return Row(claim, None, "", reason="no finished repeats with an interval")
    if sweep is None:
        [interval] = measured.values()
        return Row(claim, _interval(interval), verdict(claim, interval))
    by_value = {getattr(p, sweep[0]): interval for p, interval in measured.items()}
    result = sweep_verdict(claim, by_value)
    shown = "; ".join(
        f"{sweep[0]} {value}: {_interval(interval) if interval else 'not measured'}"
        for value, interval in by_value.items()
    )
    for opening in ("holds only when", "holds when"):
        if result.summary.startswith(opening + " "):
            return Row(claim, shown, opening, result.summary.removeprefix(opening + " "))
    return Row(claim, shown, result.summary)


def _interval(interval: Interval | None) -> str:
    if interval is None:
        return "not measured"
    return f"{interval.mean:.3g} ({interval.low:.3g}-{interval.high:.3g})"


def _condition(claim: Claim) -> str:
    return ", ".join(f"{key} {value}" for key, value in claim.condition.items()) or "none stated"


def _claimed(claim: Claim) -> str:
    sign = {"higher": ">= ", "lower": "<= ", "about": "~ "}[claim.direction]
    who = f"{claim.stack} " if claim.stack else f"{claim.compare[1]}/{claim.compare[0]} "
    stat = f" {claim.statistic}" if claim.statistic else ""
    return f"{who}{claim.metric}{stat} {sign}{claim.claimed_text}"


def render_table(claims: tuple[Claim, ...], outcome: Outcome, quick: bool) -> str:
    """The verdict table in Markdown, then the claims that were not measured and why."""
    rows = [judge_claim(claim, outcome, quick) for claim in claims]
    mode = "--quick (2 repeats of 2 s)" if quick else "3 repeats of 10 s"
    lines = [
        "# Claims tested",
        "",
        f"Measured with `pgarena claims` ({mode}); intervals are 95%. Runs: `runs/*/`.",
        "",
        "| claim | source | condition | claimed | measured | verdict | holds only when |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        if row.measured is None:
            continue
        cells = (
            row.claim.id,
            row.claim.source[:3],
            _condition(row.claim),
            _claimed(row.claim),
            row.measured,
            row.verdict,
            row.holds_when,
        )
        lines.append("| " + " | ".join(cell.replace("|", "/") for cell in cells) + " |")
    unmeasured = [row for row in rows if row.measured is None]
    if unmeasured:
        lines += ["", "## Not measured", ""]
        lines += [f"- {row.claim.id}: {row.reason}" for row in unmeasured]
    return "\n".join(lines) + "\n"
