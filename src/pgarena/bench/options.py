"""Option values of `pgarena run` and `pgarena calibrate`, parsed and checked while the
command line is read: a bad value is a one-line error before any server or database starts.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import typer

from pgarena.errors import UserError
from pgarena.settings import Settings

__all__ = [
    "at_least",
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
