"""Workload files: a workload written as TOML, read and checked before any load is sent.

pgarena's own workloads ship in this format (package data, `bench/workloads/*.toml`) and a
user's file (`pgarena run --workload-file my.toml`) is read by the same code, so there is
one workload language. A file is checked as a whole here, before a server starts: every
mistake (an unknown key, a wrong type, a bad method, a placeholder nothing fills) is a
`UserError` of one line that names the file and where in it, e.g.
`my.toml: scenario 2, request 1 (line 14): unknown key "jsn"`.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pgarena.errors import UserError


@dataclass(frozen=True)
class Step:
    """One HTTP request and what a correct answer looks like."""

    method: str
    path: str  # template: {placeholders} are filled per request
    body: str | None = None  # template
    expect_status: int = 200
    expect_body: bytes | None = None  # must occur in the response body
    capture_id: bool = False  # remember the answer's "id" as {id} (Python-built steps)
    headers: tuple[tuple[str, str], ...] = ()  # values are templates
    captures: tuple[tuple[str, str], ...] = ()  # (placeholder, JSON path like "data.id")
    json_body: bool = False  # body is JSON: captured values are escaped as JSON strings


@dataclass(frozen=True)
class Scenario:
    """Requests one client sends in order; picked with probability weight / total."""

    weight: int
    steps: tuple[Step, ...]
    think_time_s: float = 0.0  # the client's pause after each answer (partly open loop)


@dataclass(frozen=True)
class Workload:
    """A named load: scenarios, where it comes from, and whether it writes."""

    name: str
    description: str
    source: str
    scenarios: tuple[Scenario, ...]
    writes: bool = False
    grows: bool = False  # inserts rows it does not delete: re-seed before each of its cells
    tags: frozenset[str] = field(default_factory=frozenset)
    setup: tuple[Step, ...] = ()  # sent once per connection slot before its scenarios


# Placeholders the load generator fills by itself (`loadgen.http.placeholder_values`).
BUILTIN_PLACEHOLDERS = frozenset(
    {"user_id", "product_id", "order_id", "world_id", "users_skip", "unique", "slow_ms"}
)
# HEAD is left out: its answer has a length but no body, which the answer parser would wait for.
METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
READ_METHODS = frozenset({"GET", "OPTIONS"})
NAME = re.compile(r"[a-z_][a-z0-9_]*")
FIELD = re.compile(r"\{([a-z_][a-z0-9_]*)\}")
HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
DURATION = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(ms|s)?\s*")

TOP_KEYS = {"name", "description", "source", "writes", "grows", "tags", "setup", "scenario"}
SCENARIO_KEYS = {"weight", "think_time", "request"}
REQUEST_KEYS = {
    "method",
    "path",
    "headers",
    "json",
    "body",
    "expect_status",
    "expect_body",
    "capture",
}


class _Where:
    """Where a value sits in the file, for error messages: 'scenario 2, request 1 (line 14)'."""

    def __init__(self, file: str, text: str) -> None:
        self.file = file
        # Line numbers of each [[setup]], [[scenario]] and [[scenario.request]] header, in
        # order; tomllib keeps none, and inline tables simply get no line number.
        self.lines: dict[str, list[int]] = {"setup": [], "scenario": [], "request": []}
        for number, line in enumerate(text.splitlines(), start=1):
            header = re.match(r"\s*\[\[\s*([a-z.]+)\s*\]\]", line)
            if header is None:
                continue
            kind = {"setup": "setup", "scenario": "scenario", "scenario.request": "request"}
            if header.group(1) in kind:
                self.lines[kind[header.group(1)]].append(number)

    def error(self, where: str, message: str) -> UserError:
        prefix = f"{self.file}: {where}: " if where else f"{self.file}: "
        return UserError(prefix + message)

    def request_line(self, kind: str, scenario: int, index: int, before: int) -> str:
        """' (line N)' of a request: setup requests are [[setup]] headers, the requests of
        scenario `scenario` follow the ones of the scenarios before it (`before` of them)."""
        lines = self.lines["setup"] if kind == "setup" else self.lines["request"]
        position = index if kind == "setup" else before + index
        return f" (line {lines[position]})" if position < len(lines) else ""


def _check_keys(table: dict[str, Any], allowed: set[str], fail: Callable[[str], UserError]):
    for key in table:
        if key not in allowed:
            close = [k for k in sorted(allowed) if k[:2] == key[:2]]
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise fail(f'unknown key "{key}"{hint}')


def _typed(value: Any, kind: type | tuple[type, ...], key: str, fail: Callable[[str], UserError]):
    # bool is an int in Python; TOML's true is no status code.
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is int):
        names = " or ".join(k.__name__ for k in (kind if isinstance(kind, tuple) else (kind,)))
        raise fail(f'"{key}" must be {_TYPE_WORDS.get(names, names)}, got {value!r}')
    return value


_TYPE_WORDS = {"str": "a string", "int": "an integer", "bool": "true or false", "dict": "a table"}


def parse_seconds(value: Any, fail: Callable[[str], UserError]) -> float:
    """think_time: "50ms", "1.5s", or a number of seconds."""
    if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
        return float(value)
    match = DURATION.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise fail(f'"think_time" must be a duration like "50ms" or "1s", got {value!r}')
    seconds = float(match.group(1))
    return seconds / 1000 if match.group(2) == "ms" else seconds


def _json_strings(value: Any) -> list[str]:
    """Every string in a JSON value (keys too), where placeholders may be."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [*value, *(s for item in value.values() for s in _json_strings(item))]
    if isinstance(value, list):
        return [s for item in value for s in _json_strings(item)]
    return []


def _request(
    table: Any, known: set[str], fail: Callable[[str], UserError]
) -> tuple[Step, list[str]]:
    """One [[scenario.request]] or [[setup]] table as a Step, and the names it captures."""
    if not isinstance(table, dict):
        raise fail(f"a request must be a table, got {table!r}")
    _check_keys(table, REQUEST_KEYS, fail)
    if "path" not in table:
        raise fail('"path" is missing')
    method = _typed(table.get("method", "GET"), str, "method", fail).upper()
    if method not in METHODS:
        raise fail(f'"method" must be one of {", ".join(sorted(METHODS))}, got {method!r}')
    path = _typed(table["path"], str, "path", fail)
    if not path.startswith("/"):
        raise fail(f'"path" must start with /, got {path!r}')
    headers = _typed(table.get("headers", {}), dict, "headers", fail)
    for name, value in headers.items():
        if not HEADER_NAME.fullmatch(name):
            raise fail(f"header name {name!r} is not a valid HTTP header name")
        _typed(value, str, f"headers.{name}", fail)
        if "\r" in value or "\n" in value:
            raise fail(f"header {name!r} has a line break in its value")
    if "json" in table and "body" in table:
        raise fail('give "json" or "body", not both')
    strings = [path, *headers.values()]
    body: str | None = None
    if "json" in table:
        data = _typed(table["json"], (dict, list), "json", fail)
        strings += _json_strings(data)
        body = json.dumps(data, ensure_ascii=False, separators=(", ", ": "))
    elif "body" in table:
        body = _typed(table["body"], str, "body", fail)
        strings.append(body)
    status = _typed(table.get("expect_status", 200), int, "expect_status", fail)
    if not 100 <= status <= 599:
        raise fail(f'"expect_status" must be an HTTP status (100-599), got {status}')
    expect = table.get("expect_body")
    if expect is not None:
        expect = _typed(expect, str, "expect_body", fail).encode()
    captures = _typed(table.get("capture", {}), dict, "capture", fail)
    for name, json_path in captures.items():
        if not NAME.fullmatch(name):
            raise fail(f"capture name {name!r} must be lowercase letters, digits and _")
        if not isinstance(json_path, str) or not json_path or "" in json_path.split("."):
            raise fail(f'capture "{name}" must be a JSON path like "id" or "data.id"')
    for text in strings:
        for placeholder in FIELD.findall(text):
            if placeholder not in known:
                raise fail(f"unknown placeholder {{{placeholder}}} (known: {_known(known)})")
    step = Step(
        method,
        path,
        body,
        expect_status=status,
        expect_body=expect,
        headers=tuple(headers.items()),
        captures=tuple(captures.items()),
        json_body="json" in table,
    )
    return step, list(captures)


def _known(known: set[str]) -> str:
    return ", ".join(f"{{{name}}}" for name in sorted(known))


def parse_workload(text: str, file: str, default_name: str) -> Workload:
    """A workload from a TOML text; `file` names it in errors (and is its default source)."""
    where = _Where(file, text)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise where.error("", f"not valid TOML: {error}") from None
    top = where.error
    _check_keys(data, TOP_KEYS, lambda message: top("", message))

    def fail_top(message: str) -> UserError:
        return top("", message)

    name = _typed(data.get("name", default_name), str, "name", fail_top)
    if not name or any(c in name for c in ", \t"):
        raise fail_top(f'"name" must be one word without commas, got {name!r}')
    description = _typed(
        data.get("description", f"workload file {file}"), str, "description", fail_top
    )
    source = _typed(data.get("source", file), str, "source", fail_top)
    tags = _typed(data.get("tags", []), list, "tags", fail_top)
    for tag in tags:
        _typed(tag, str, "tags", fail_top)

    known = set(BUILTIN_PLACEHOLDERS)
    setup: list[Step] = []
    for index, table in enumerate(_typed(data.get("setup", []), list, "setup", fail_top)):
        at = f"setup {index + 1}{where.request_line('setup', 0, index, 0)}"
        step, captured = _request(table, known, lambda m, at=at: top(at, m))
        setup.append(step)
        known.update(captured)

    scenarios: list[Scenario] = []
    tables = _typed(data.get("scenario", []), list, "scenario", fail_top)
    if not tables:
        raise fail_top("no [[scenario]]: a workload needs at least one")
    before = 0
    for number, table in enumerate(tables, start=1):
        lines = where.lines["scenario"]
        at = f"scenario {number}" + (f" (line {lines[number - 1]})" if number <= len(lines) else "")

        def fail(message: str, at: str = at) -> UserError:
            return top(at, message)

        if not isinstance(table, dict):
            raise fail("a scenario must be a table")
        _check_keys(table, SCENARIO_KEYS, fail)
        weight = _typed(table.get("weight", 1), int, "weight", fail)
        if weight < 1:
            raise fail(f'"weight" must be >= 1, got {weight}')
        think = parse_seconds(table.get("think_time", 0), fail)
        requests = _typed(table.get("request", []), list, "request", fail)
        if not requests:
            raise fail("no [[scenario.request]]: a scenario needs at least one request")
        scenario_known = set(known)
        steps = []
        for index, request in enumerate(requests):
            line = where.request_line("request", number, index, before)
            at_request = f"scenario {number}, request {index + 1}{line}"
            step, captured = _request(request, scenario_known, lambda m, a=at_request: top(a, m))
            steps.append(step)
            scenario_known.update(captured)
        before += len(requests)
        scenarios.append(Scenario(weight, tuple(steps), think_time_s=think))

    all_steps = [*setup, *(step for scenario in scenarios for step in scenario.steps)]
    writes_default = any(step.method not in READ_METHODS for step in all_steps)
    writes = _typed(data.get("writes", writes_default), bool, "writes", fail_top)
    grows = _typed(data.get("grows", False), bool, "grows", fail_top)
    return Workload(
        name,
        description,
        source,
        tuple(scenarios),
        writes=writes,
        grows=grows,
        tags=frozenset(tags),
        setup=tuple(setup),
    )


def load_workload_file(path: Path | str) -> Workload:
    """The workload of a user's file; a file that cannot be read is a UserError too."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise UserError(f"{path}: cannot read the workload file: {error}") from None
    return parse_workload(text, str(path), path.stem)
