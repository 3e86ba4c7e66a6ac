"""The verdict table: one row per claim, computed from the claims' result file alone.

Every row carries what was measured. Where a cell failed the row says so, in words, next to
whatever the other repeats measured; a claim whose every cell failed shows the failure as its
measurement and is "not measured", never given a value it did not have.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Any

from pgarena.claims.catalogue import Claim, Experiment
from pgarena.claims.measure import keys_of, measure, measure_slope
from pgarena.claims.plan import points_of
from pgarena.claims.verdict import Interval, sweep_verdict, verdict
from pgarena.results.model import Run

NOT_MEASURED = "not measured"


@dataclass(frozen=True)
class Row:
    """One claim's line in the table."""

    claim: Claim
    measured: str  # the figure with its interval, or what happened instead
    verdict: str
    holds_when: str = ""
    failures: str = ""  # failed cells, in words
    interval: Interval | None = None  # the single point's figure (no sweep)
    sweep: dict[int, Interval | None] = field(default_factory=dict)  # swept value -> figure
    sweep_verdicts: dict[int, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The row in `claims.json`."""

        def interval(value: Interval | None) -> dict[str, float] | None:
            if value is None:
                return None
            return {"low": value.low, "mean": value.mean, "high": value.high}

        claim = self.claim
        return {
            "id": claim.id,
            "source": claim.source,
            "quote": claim.quote,
            "condition": dict(claim.condition),
            "claimed": describe_claim(claim),
            "claimed_low": claim.low,
            "claimed_high": claim.high,
            "measured": self.measured,
            "interval": interval(self.interval),
            "verdict": self.verdict,
            "holds_only_when": self.holds_when,
            "failures": self.failures,
            "sweep": (
                {
                    "setting": claim.experiment.sweep[0],
                    "points": [
                        {
                            "value": value,
                            "interval": interval(found),
                            "verdict": self.sweep_verdicts.get(value),
                        }
                        for value, found in self.sweep.items()
                    ],
                }
                if claim.experiment.sweep and not claim.per
                else None
            ),
            "note": claim.note,
        }


def judge_claim(claim: Claim, run: Run, quick: bool) -> Row:
    """Measure and judge one claim from the claims' result file."""
    points = points_of(claim, quick)
    failures = _failures(claim, run, points)
    sweep = claim.experiment.sweep
    if claim.per and sweep:
        interval = measure_slope(claim, run, points)
        if interval is None:
            return _unmeasured(claim, failures or "too few finished repeats for a slope")
        unit = claim.per.removesuffix("s")
        shown = f"{_interval(interval, claim)} per {unit}"
        return Row(claim, shown, verdict(claim, interval), failures=failures, interval=interval)
    measured = {p: measure(claim, run, p) for p in points}
    if all(value is None for value in measured.values()):
        return _unmeasured(claim, failures or "no finished repeat with an interval")
    if sweep is None:
        [interval] = measured.values()
        return Row(
            claim,
            _interval(interval, claim),
            verdict(claim, interval),
            failures=failures,
            interval=interval,
        )
    by_value = {getattr(p, sweep[0]): interval for p, interval in measured.items()}
    result = sweep_verdict(claim, by_value)
    shown = "; ".join(
        f"{_setting(sweep[0], v)}: {_interval(i, claim)}" for v, i in by_value.items()
    )
    row = Row(
        claim,
        shown,
        result.summary,
        failures=failures,
        sweep=by_value,
        sweep_verdicts=dict(result.points),
    )
    for opening in ("holds only when", "holds when"):
        if result.summary.startswith(opening + " "):
            condition = result.summary.removeprefix(opening + " ")
            return replace(row, verdict=opening, holds_when=condition)
    return row


def _unmeasured(claim: Claim, why: str) -> Row:
    return Row(claim, f"failed: {why}", NOT_MEASURED, failures=why)


def _failures(claim: Claim, run: Run, points: tuple[Experiment, ...]) -> str:
    """The failed cells the claim reads, in words: '2 of 2 sync cells at c1000 failed
    (1520 requests: timeout 100%): no correct answer in ...'. Empty when none failed."""
    parts = []
    for point in points:
        for key in keys_of(claim, point):
            cells = run.cells_of(key)
            failed = [cell for cell in cells if not cell.measured]
            if not cells:
                parts.append(f"{key.stack} at c{key.concurrency}: did not run")
                continue
            if not failed:
                continue
            kinds: Counter[str] = Counter()
            for cell in failed:
                kinds.update({kind: count for kind, count in cell.errors.items() if count})
            total = sum(kinds.values())
            mix = ", ".join(f"{kind} {count / total:.0%}" for kind, count in kinds.most_common())
            reason = (failed[0].error or "failed").split(":")[0]
            parts.append(
                f"{len(failed)} of {len(cells)} {key.stack} cells at c{key.concurrency} failed"
                f" ({reason}{'; errors: ' + mix if mix else ''})"
            )
    return "; ".join(dict.fromkeys(parts))


def _setting(name: str, value: int) -> str:
    return {"slow_ms": f"{value} ms", "pool_size": f"pool {value}"}.get(name, f"{name} {value}")


def _interval(interval: Interval | None, claim: Claim) -> str:
    if interval is None:
        return NOT_MEASURED
    low, mean, high = (_number(x, claim) for x in (interval.low, interval.mean, interval.high))
    return f"{mean} ({low}-{high})"


def _number(value: float, claim: Claim) -> str:
    """3 significant digits; bytes as MB, latencies as whole ms from 1000 on."""
    if claim.metric == "rss_bytes":
        return f"{value / 1e6:.3g} MB"
    if abs(value) >= 1000:
        return f"{value:.0f}"
    return f"{value:.3g}"


def describe_condition(claim: Claim) -> str:
    """What the seed states, then the server it ran on when not serve's defaults:
    'concurrency 100, db_latency_ms 50; server: pool 100+0, threads swept'."""
    stated = ", ".join(f"{key} {value}" for key, value in claim.condition.items())
    experiment = claim.experiment
    swept = experiment.sweep[0] if experiment.sweep else None
    server = []
    if experiment.pool_size is not None or swept == "pool_size":
        pool = "swept" if swept == "pool_size" else experiment.pool_size
        overflow = "" if experiment.max_overflow is None else f"+{experiment.max_overflow}"
        server.append(f"pool {pool}{overflow}")
    if experiment.threads is not None or swept == "threads":
        server.append(f"threads {'swept' if swept == 'threads' else experiment.threads}")
    ran = f"server: {', '.join(server)}" if server else ""
    return "; ".join(part for part in (stated or "none stated", ran) if part)


def describe_claim(claim: Claim) -> str:
    """'async/sync rps_ratio >= 10', 'sync latency_ms mean ~ 45-55'."""
    sign = {"higher": ">= ", "lower": "<= ", "about": "~ "}[claim.direction]
    who = f"{claim.stack} " if claim.stack else f"{claim.compare[1]}/{claim.compare[0]} "
    stat = f" {claim.statistic}" if claim.statistic else ""
    per = f" per {claim.per.removesuffix('s')}" if claim.per else ""
    value = claim.claimed_text
    if claim.metric == "rss_bytes":
        value = "-".join(dict.fromkeys(f"{x / 1e6:g}" for x in (claim.low, claim.high))) + " MB"
    return f"{who}{claim.metric}{stat}{per} {sign}{value}"


def judge_all(claims: tuple[Claim, ...], run: Run, quick: bool) -> list[Row]:
    """Every claim's row, in catalogue order."""
    return [judge_claim(claim, run, quick) for claim in claims]
