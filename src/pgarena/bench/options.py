"""The options of `pgarena run` and `pgarena calibrate`: declared once here, parsed and
checked while the command line is read, so that a bad value is a one-line error before any
server or database starts. `cli.py` names them in its signatures.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from pgarena.bench.plan import describe_presets
from pgarena.bench.workloads import WORKLOADS
from pgarena.errors import UserError
from pgarena.settings import Settings

__all__ = [
    "at_least",
    "available_stacks",
    "parse_counts",
    "parse_names",
    "parse_seconds",
    "positive_duration",
    "server_default",
]


def parse_seconds(text: str, option: str) -> float:
    """'10s', '500ms', '2m', '1.5' (seconds) -> seconds."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m|min)?\s*", text)
    if match is None:
        raise UserError(f"{option}: expected a duration like 10s, 500ms or 2m, got {text!r}")
    value = float(match.group(1))
    unit = match.group(2) or "s"
    return value / 1000 if unit == "ms" else value * 60 if unit in ("m", "min") else value


def parse_names(text: str) -> list[str]:
    """'a,b, c' -> ['a', 'b', 'c']."""
    return [name.strip() for name in text.split(",") if name.strip()]


def parse_counts(text: str, option: str) -> list[int]:
    """'1,10,100' -> [1, 10, 100], each >= 1."""
    try:
        counts = [int(part) for part in parse_names(text)]
    except ValueError:
        raise UserError(f"{option}: expected numbers like 1,10,100, got {text!r}") from None
    if not counts or min(counts) < 1:
        raise UserError(f"{option}: every value must be >= 1")
    return counts


Callback = Callable[[typer.Context, typer.CallbackParam, Any], Any]


def _option_name(parameter: typer.CallbackParam) -> str:
    return max(parameter.opts, key=len)  # '--repeats', not '-r'


def at_least(minimum: float) -> Callback:
    """A typer callback refusing values below `minimum` with a one-line error. Used instead
    of typer's `min=`, whose `<int range> [x>=1]` label clutters every help."""

    def check(context: typer.Context, parameter: typer.CallbackParam, value: Any) -> Any:
        if value is not None and value < minimum:
            raise UserError(f"{_option_name(parameter)}: must be >= {minimum:g}, got {value}")
        return value

    return check


def positive_duration(context: typer.Context, parameter: typer.CallbackParam, value: str) -> str:
    """Refuse a duration of zero or less while parsing, before any work starts."""
    option = _option_name(parameter)
    if parse_seconds(value, option) <= 0:
        raise UserError(f"{option}: must be > 0, got {value!r}")
    return value


def server_default(name: str) -> str:
    """The default `pgarena serve` uses for a setting, for the help text."""
    return str(Settings.model_fields[name].default)


def available_stacks() -> list[str]:
    """Every stack `pgarena serve` knows, in its order."""
    from pgarena.service.stacks import STACKS

    return list(STACKS)


# --- `pgarena run` ---------------------------------------------------------------------------

Stacks = Annotated[
    str | None,
    typer.Option(
        "--stacks",
        "-s",
        metavar="NAME[,NAME...]",
        help="Comma-separated stacks (see `pgarena stacks`).",
        show_default="all",
    ),
]

Workloads = Annotated[
    str | None,
    typer.Option(
        "--workloads",
        "-w",
        metavar="NAME[,NAME...]",
        help="Comma-separated workloads or groups (advanced, queries, updates, techempower, "
        f"all). Workloads: {', '.join(WORKLOADS)}.",
        show_default="the preset's",
    ),
]

Concurrency = Annotated[
    str | None,
    typer.Option(
        "--concurrency",
        "-c",
        metavar="N[,N...]",
        help="Comma-separated connection counts, e.g. 1,10,100.",
        show_default="the preset's",
    ),
]

Duration = Annotated[
    str | None,
    typer.Option(
        "--duration",
        "-d",
        metavar="TIME",
        help="Measured time per cell, e.g. 10s, 500ms, 2m.",
        show_default="the preset's",
    ),
]

Requests = Annotated[
    int | None,
    typer.Option(
        metavar="N",
        callback=at_least(1),
        help="Measure this many requests per cell instead of a duration.",
        show_default="none",
    ),
]

Rate = Annotated[
    float | None,
    typer.Option(
        metavar="RPS",
        callback=at_least(0.001),
        help="Open loop: requests per second due (latency from due time).",
        show_default="closed loop",
    ),
]

Repeats = Annotated[
    int | None,
    typer.Option(
        "--repeats",
        "-r",
        metavar="N",
        callback=at_least(1),
        help="Repeats of every cell.",
        show_default="the preset's",
    ),
]

Warmup = Annotated[
    str | None,
    typer.Option(
        metavar="TIME",
        help="Load before measuring, not counted.",
        show_default="the preset's",
    ),
]

Preset = Annotated[
    str,
    typer.Option("--preset", "-p", metavar="NAME", help=describe_presets(available_stacks())),
]

Workers = Annotated[
    int | None,
    typer.Option(
        metavar="N",
        callback=at_least(1),
        envvar="PGARENA_WORKERS",
        help="Server worker processes.",
        show_default=server_default("workers"),
    ),
]

Threads = Annotated[
    int | None,
    typer.Option(
        metavar="N",
        callback=at_least(1),
        envvar="PGARENA_THREADS",
        help="Threads for sync endpoints: how many requests overlap in PostgreSQL (fewer "
        "contend less for the GIL on quick queries).",
        show_default="pool size + overflow",
    ),
]

PoolSize = Annotated[
    int | None,
    typer.Option(
        metavar="N",
        callback=at_least(1),
        envvar="PGARENA_POOL_SIZE",
        help="Database pool per worker.",
        show_default=server_default("pool_size"),
    ),
]

MaxOverflow = Annotated[
    int | None,
    typer.Option(
        metavar="N",
        callback=at_least(0),
        envvar="PGARENA_MAX_OVERFLOW",
        help="Connections beyond the pool.",
        show_default=server_default("max_overflow"),
    ),
]

Server = Annotated[
    str | None,
    typer.Option(
        metavar="NAME",
        help="ASGI server: uvicorn, gunicorn or granian.",
        show_default="uvicorn",
    ),
]

ServerLifetime = Annotated[
    str | None,
    typer.Option(
        metavar="cell|stack|repeat",
        help="cell: a fresh server per cell; stack: one per stack and repeat; repeat: "
        "every stack's server alive through a repeat, the stacks taking turns cell by cell.",
        show_default="the preset's",
    ),
]

SlowMs = Annotated[
    int,
    typer.Option(
        metavar="MS",
        callback=at_least(0),
        help="How long each slow-db request waits in PostgreSQL.",
    ),
]

Slo = Annotated[
    list[str] | None,
    typer.Option(
        metavar="SLO",
        help="A threshold every cell must meet, k6-style: 'p99<100ms', 'errors<1%', "
        "'rps>500', optionally scoped 'STACK:WORKLOAD:p99<20ms'. Repeatable; a failure "
        "makes the run exit 1.",
        show_default="none",
    ),
]

Out = Annotated[
    Path | None,
    typer.Option(
        "--out",
        "-o",
        metavar="DIR",
        help="Output directory.",
        show_default="./arena-results/<UTC time>",
    ),
]

Target = Annotated[
    list[str] | None,
    typer.Option(
        metavar="[NAME=]URL",
        help="Measure a running service at this http:// or https:// URL. Repeatable, each "
        "named, for an A/B run: --target old=URL --target new=URL alternates their cells "
        "and compares each to the first.",
        show_default="start pgarena's servers",
    ),
]

TargetDatabase = Annotated[
    str | None,
    typer.Option(
        metavar="POSTGRES_URL",
        help="With --target: the PostgreSQL the targets use, only read, for its CPU, new "
        "connections per second and statements per request.",
        show_default="not measured",
    ),
]

Pooler = Annotated[
    str | None,
    typer.Option(
        metavar="NAME",
        help="Put a connection pooler between the servers and PostgreSQL: pgbouncer "
        "(the system's, transaction mode).",
        show_default="none",
    ),
]

AllowWrites = Annotated[bool, typer.Option(help="With --target: allow workloads that write.")]

Generators = Annotated[
    int, typer.Option(metavar="N", callback=at_least(1), help="Load generator processes.")
]

WorkloadFile = Annotated[
    Path | None,
    typer.Option(
        metavar="FILE",
        help="A TOML workload file (README: 'Your own service and workload'); runs it "
        "instead of --workloads, or beside the ones --workloads names.",
    ),
]

Timeout = Annotated[
    str, typer.Option(metavar="TIME", callback=positive_duration, help="Per-request timeout.")
]

Quiet = Annotated[
    bool,
    typer.Option("--quiet", "-q", help="No progress on stderr; warnings and the result only."),
]

Profile = Annotated[
    bool,
    typer.Option(
        "--profile",
        help="Record a py-spy flame graph of one cell per stack, linked from the HTML report "
        "(needs pgarena[profile]).",
    ),
]

JsonOutput = Annotated[
    bool,
    typer.Option(
        "--json",
        help="Print one JSON document on stdout (summaries, verdicts, SLO results) "
        "instead of the table.",
    ),
]


# --- `pgarena calibrate` ---------------------------------------------------------------------

CalibrateStack = Annotated[
    str, typer.Option("--stack", "-s", metavar="NAME", help="Stack of the server to load.")
]

CalibratePath = Annotated[str, typer.Option(help="Endpoint both tools request.")]

CalibrateConcurrency = Annotated[
    str,
    typer.Option(
        "--concurrency",
        "-c",
        metavar="N[,N...]",
        help="Comma-separated connection counts (the presets' levels).",
    ),
]

CalibrateDuration = Annotated[
    str,
    typer.Option(
        "--duration", "-d", metavar="TIME", help="Measured time per tool, level and round."
    ),
]

CalibrateRounds = Annotated[
    int,
    typer.Option(metavar="N", callback=at_least(1), help="Rounds per level (medians compared)."),
]

CalibrateTarget = Annotated[
    str | None,
    typer.Option(
        metavar="URL",
        help="Load a running service at this http:// URL instead.",
        show_default="start a server",
    ),
]
