"""The claims catalogue: every quantitative claim of the seed documents, read and checked.

The claims live in `catalogue.toml` beside this module (package data), one `[[claim]]` each,
so that adding a claim is an edit to data, not to code. Everything is checked on load, before
an experiment runs: a mistake in an entry is a one-line `UserError` that names the entry and
the problem, e.g. `catalogue.toml: claim "seed001-table-10-ratio": unknown metric "rps_ratoi"`.
The conventions (what a ratio is the ratio of, what "about" means) are written at the top of
the TOML file, where the people who add claims read them.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path
from typing import Any

from pgarena.bench.workloads import WORKLOADS
from pgarena.errors import UserError
from pgarena.service.stacks import STACKS

# Ratios are the second stack of `compare` over the first; the rest measure one `stack`.
RATIO_METRICS = ("rps_ratio", "latency_ratio", "rss_ratio")
ABSOLUTE_METRICS = ("latency_ms", "rss_bytes", "rps", "error_rate")
METRICS = RATIO_METRICS + ABSOLUTE_METRICS
LATENCY_METRICS = ("latency_ratio", "latency_ms")
DIRECTIONS = ("higher", "lower", "about")
STATISTICS = ("p50", "p99", "mean")

# What a seed states or implies about the conditions of a claim, and the value's type.
CONDITION_FIELDS: dict[str, type] = {
    "concurrency": int,
    "db_latency_ms": float,
    "pool_size": int,
    "threads": int,
    "operation": str,
    "operations": int,  # seed 004's "operation count": requests in one run
}
# Experiment settings that a sweep may vary (each is also an Experiment field).
SWEEPABLE = ("concurrency", "slow_ms", "threads", "pool_size", "max_overflow")

_CLAIM_KEYS = {
    "id",
    "source",
    "quote",
    "metric",
    "statistic",
    "claimed",
    "claimed_low",
    "claimed_high",
    "direction",
    "compare",
    "stack",
    "per",
    "note",
    "condition",
    "experiment",
}
_EXPERIMENT_KEYS = {"workload", "concurrency", "slow_ms", "requests", "sweep"} | set(SWEEPABLE)
_ID = re.compile(r"seed(\d{3})-[a-z0-9]+(-[a-z0-9]+)*")
_SOURCE = re.compile(r"(\d{3})_[0-9a-f]{16}\.txt")


@dataclass(frozen=True)
class Experiment:
    """How pgarena tests a claim: one workload, at one load, on one server configuration.

    `None` leaves a server setting at `pgarena serve`'s default (AnyIO's 40 threads, the
    stack's pool), which is itself a condition worth testing as is."""

    workload: str
    concurrency: int
    slow_ms: int = 50  # slow-db's wait in PostgreSQL; other workloads ignore it
    threads: int | None = None
    pool_size: int | None = None
    max_overflow: int | None = None
    requests: int | None = None  # a fixed request count instead of a duration
    sweep: tuple[str, tuple[int, ...]] | None = None  # (setting, values)

    def points(self) -> tuple[Experiment, ...]:
        """The experiment at each swept value (itself alone when nothing is swept)."""
        if self.sweep is None:
            return (self,)
        name, values = self.sweep
        return tuple(replace(self, sweep=None, **{name: value}) for value in values)


@dataclass(frozen=True)
class Claim:
    """One quantitative claim, the conditions it holds under, and how to test it."""

    id: str
    source: str  # the seed's file name
    quote: str  # verbatim from the seed (up to whitespace)
    metric: str
    direction: str
    compare: tuple[str, str]  # (baseline, challenger): ratios are challenger / baseline
    low: float  # the claimed value, or the claimed range's ends
    high: float
    condition: Mapping[str, int | float | str]
    experiment: Experiment
    stack: str | None = None  # the stack an absolute metric is about
    statistic: str | None = None  # which latency: p50, p99 or mean
    per: str | None = None  # measure the metric's growth per unit of this swept setting
    note: str = ""

    @property
    def is_range(self) -> bool:
        return self.low != self.high

    @property
    def claimed_text(self) -> str:
        """The claimed value as a table shows it: "10", "0.5-0.7"."""
        if self.is_range:
            return f"{self.low:g}-{self.high:g}"
        return f"{self.low:g}"


def load_catalogue(path: Path | None = None) -> tuple[Claim, ...]:
    """Every claim of the catalogue (the packaged one unless `path` names another)."""
    if path is None:
        text = resources.files("pgarena.claims").joinpath("catalogue.toml").read_text("utf-8")
        return parse_catalogue(text, "catalogue.toml")
    try:
        text = path.read_text("utf-8")
    except OSError as error:
        raise UserError(f"{path}: cannot read the catalogue ({error.strerror})") from None
    return parse_catalogue(text, path.name)


def parse_catalogue(text: str, origin: str = "catalogue.toml") -> tuple[Claim, ...]:
    """The claims of a catalogue's text; any mistake is a one-line `UserError`."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise UserError(f"{origin}: not valid TOML: {error}") from None
    unknown = set(data) - {"claim"}
    if unknown:
        raise UserError(f"{origin}: unknown top-level key {sorted(unknown)[0]!r}")
    entries = data.get("claim")
    if not isinstance(entries, list) or not entries:
        raise UserError(f"{origin}: no [[claim]] entries")
    claims: list[Claim] = []
    seen: set[str] = set()
    for number, entry in enumerate(entries, 1):
        claim = _parse_claim(entry, f"{origin}: claim {number}", origin)
        if claim.id in seen:
            raise UserError(f"{origin}: claim {claim.id!r}: the id is used twice")
        seen.add(claim.id)
        claims.append(claim)
    return tuple(claims)


def _parse_claim(entry: dict[str, Any], where: str, origin: str) -> Claim:
    claim_id = entry.get("id")
    if not isinstance(claim_id, str) or not _ID.fullmatch(claim_id):
        raise UserError(f"{where}: id must look like 'seed001-100-concurrent', got {claim_id!r}")
    where = f"{origin}: claim {claim_id!r}"

    def fail(problem: str) -> UserError:
        return UserError(f"{where}: {problem}")

    unknown = set(entry) - _CLAIM_KEYS
    if unknown:
        raise fail(f"unknown key {sorted(unknown)[0]!r}")
    source = _required(entry, "source", str, fail)
    if not (match := _SOURCE.fullmatch(source)):
        raise fail(f"source must be a seed file name like '001_189641451686996e.txt': {source!r}")
    if match.group(1) != claim_id[4:7]:
        raise fail(f"the id names seed {claim_id[4:7]} but the source is seed {match.group(1)}")
    quote = _required(entry, "quote", str, fail).strip()
    if not quote:
        raise fail("quote is empty")
    metric = _choice(entry, "metric", METRICS, fail)
    direction = _choice(entry, "direction", DIRECTIONS, fail)
    low, high = _claimed(entry, fail)

    compare = entry.get("compare")
    if (
        not isinstance(compare, list)
        or len(compare) != 2
        or not all(isinstance(name, str) for name in compare)
        or compare[0] == compare[1]
    ):
        raise fail("compare must name two different stacks, e.g. ['sync', 'async']")
    for name in compare:
        if name not in STACKS:
            raise fail(f"unknown stack {name!r} in compare; choose from: {', '.join(STACKS)}")

    stack = entry.get("stack")
    if metric in ABSOLUTE_METRICS:
        if stack not in compare:
            raise fail(f"metric {metric!r} needs stack = one of {compare}, got {stack!r}")
    elif stack is not None:
        raise fail(f"stack is for absolute metrics; {metric!r} compares the two stacks")
    statistic = entry.get("statistic")
    if metric in LATENCY_METRICS:
        if statistic not in STATISTICS:
            raise fail(f"metric {metric!r} needs statistic = one of {', '.join(STATISTICS)}")
    elif statistic is not None:
        raise fail(f"statistic is only for latency metrics, not {metric!r}")

    condition = _condition(entry.get("condition", {}), fail)
    experiment = _experiment(entry.get("experiment"), fail)
    per = entry.get("per")
    if per is not None and (experiment.sweep is None or experiment.sweep[0] != per):
        raise fail(f"per = {per!r} needs the experiment to sweep {per!r}")
    note = entry.get("note", "")
    if not isinstance(note, str):
        raise fail("note must be text")
    return Claim(
        id=claim_id,
        source=source,
        quote=quote,
        metric=metric,
        direction=direction,
        compare=(compare[0], compare[1]),
        low=low,
        high=high,
        condition=condition,
        experiment=experiment,
        stack=stack,
        statistic=statistic,
        per=per,
        note=note,
    )


def _required(entry: dict[str, Any], key: str, kind: type, fail: Any) -> Any:
    value = entry.get(key)
    if value is None:
        raise fail(f"missing {key}")
    if not isinstance(value, kind):
        raise fail(f"{key} must be {kind.__name__}, got {value!r}")
    return value


def _choice(entry: dict[str, Any], key: str, choices: tuple[str, ...], fail: Any) -> str:
    value = entry.get(key)
    if value not in choices:
        raise fail(f"{key} must be one of {', '.join(choices)}, got {value!r}")
    return str(value)


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _claimed(entry: dict[str, Any], fail: Any) -> tuple[float, float]:
    """The claimed value as (low, high): a point is a range of width 0."""
    point, low, high = (entry.get(k) for k in ("claimed", "claimed_low", "claimed_high"))
    if point is not None:
        if low is not None or high is not None:
            raise fail("give claimed, or claimed_low and claimed_high, not both")
        if not _number(point):
            raise fail(f"claimed must be a number, got {point!r}")
        return float(point), float(point)
    if low is None or high is None:
        raise fail("missing claimed (or claimed_low and claimed_high)")
    if not (_number(low) and _number(high)):
        raise fail(f"claimed_low and claimed_high must be numbers, got {low!r}, {high!r}")
    if not low < high:
        raise fail(f"claimed_low ({low}) must be below claimed_high ({high})")
    return float(low), float(high)


def _condition(table: Any, fail: Any) -> dict[str, int | float | str]:
    if not isinstance(table, dict):
        raise fail("condition must be a table, e.g. { concurrency = 100 }")
    condition: dict[str, int | float | str] = {}
    for key, value in table.items():
        kind = CONDITION_FIELDS.get(key)
        if kind is None:
            raise fail(f"unknown condition {key!r}; choose from: {', '.join(CONDITION_FIELDS)}")
        fits = isinstance(value, str) if kind is str else _number(value) and value >= 0
        if kind is int:
            fits = fits and isinstance(value, int)
        if not fits:
            raise fail(f"condition {key} must be {kind.__name__}, got {value!r}")
        condition[key] = value
    return condition


def _experiment(table: Any, fail: Any) -> Experiment:
    if not isinstance(table, dict):
        raise fail("missing experiment (a table with workload and concurrency)")
    unknown = set(table) - _EXPERIMENT_KEYS
    if unknown:
        raise fail(f"unknown experiment key {sorted(unknown)[0]!r}")
    workload = table.get("workload")
    if workload not in WORKLOADS:
        raise fail(f"unknown workload {workload!r}; choose from: {', '.join(WORKLOADS)}")
    settings: dict[str, int] = {}
    for key in ("concurrency", "slow_ms", "threads", "pool_size", "max_overflow", "requests"):
        value = table.get(key)
        if value is None:
            continue
        smallest = 0 if key in ("slow_ms", "max_overflow") else 1
        if not isinstance(value, int) or isinstance(value, bool) or value < smallest:
            raise fail(f"experiment {key} must be a whole number >= {smallest}, got {value!r}")
        settings[key] = value
    if "concurrency" not in settings:
        raise fail("experiment needs concurrency")
    sweep = None
    if "sweep" in table:
        raw = table["sweep"]
        if not isinstance(raw, dict) or len(raw) != 1:
            raise fail("sweep must vary one setting, e.g. { threads = [1, 4, 40, 100] }")
        [(name, values)] = raw.items()
        if name not in SWEEPABLE:
            raise fail(f"cannot sweep {name!r}; choose from: {', '.join(SWEEPABLE)}")
        if (
            not isinstance(values, list)
            or len(values) < 2
            or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in values)
            or len(set(values)) != len(values)
        ):
            raise fail(f"sweep {name} needs two or more different whole numbers, got {values!r}")
        sweep = (name, tuple(values))
    return Experiment(workload=workload, sweep=sweep, **settings)
