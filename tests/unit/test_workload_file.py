"""Workload files: what a correct file becomes, and the one-line error of each mistake."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from pgarena.bench.loadgen.http import compile_scenario, placeholder_values
from pgarena.bench.workload_file import BUILTIN_PLACEHOLDERS, load_workload_file, parse_workload
from pgarena.bench.workloads import WORKLOADS, DataSizes
from pgarena.database.techempower import EXTRA_FORTUNE_MESSAGE, HELLO_WORLD
from pgarena.errors import UserError

README = Path(__file__).parents[2] / "README.md"

GOOD = """\
name = "shop"
description = "log in, then browse and buy"

[[setup]]
method = "POST"
path = "/login"
json = { username = "bench", password = "pw" }
capture = { token = "access_token" }

[[scenario]]
weight = 4
think_time = "50ms"

[[scenario.request]]
path = "/products/{product_id}"
headers = { Authorization = "Bearer {token}" }

[[scenario]]
weight = 1

[[scenario.request]]
method = "post"
path = "/orders"
headers = { Authorization = "Bearer {token}" }
json = { note = "order {unique}", lines = [{ sku = "a", quantity = 2 }] }
expect_status = 201
expect_body = '"id"'
capture = { order = "data.id" }

[[scenario.request]]
method = "DELETE"
path = "/orders/{order}"
body = "reason={unique}"
headers = { Content-Type = "application/x-www-form-urlencoded" }
expect_status = 204
"""


def parse(text: str) -> object:
    return parse_workload(text, "my.toml", "my")


def error_of(text: str) -> str:
    with pytest.raises(UserError) as raised:
        parse(text)
    message = str(raised.value)
    assert "\n" not in message
    return message


def test_a_file_becomes_a_workload_with_setup_scenarios_and_captures() -> None:
    workload = parse_workload(GOOD, "my.toml", "my")

    assert (workload.name, workload.source, workload.writes) == ("shop", "my.toml", True)
    [login] = workload.setup
    assert login.captures == (("token", "access_token"),)
    browse, buy = workload.scenarios
    assert (browse.weight, browse.think_time_s, buy.weight, buy.think_time_s) == (4, 0.05, 1, 0)
    create, delete = buy.steps
    assert create.method == "POST" and create.expect_status == 201
    assert create.expect_body == b'"id"' and create.json_body
    assert json.loads(create.body or "") == {
        "note": "order {unique}",
        "lines": [{"sku": "a", "quantity": 2}],
    }
    assert create.captures == (("order", "data.id"),)
    assert delete.body == "reason={unique}" and not delete.json_body


def test_the_name_defaults_to_the_file_name_and_reads_do_not_write(tmp_path: Path) -> None:
    path = tmp_path / "health-check.toml"
    path.write_text('[[scenario]]\n[[scenario.request]]\npath = "/health"\n')

    workload = load_workload_file(path)

    assert (workload.name, workload.writes, workload.scenarios[0].weight) == (
        "health-check",
        False,
        1,
    )


def test_a_file_may_declare_that_its_posts_do_not_write() -> None:
    text = 'writes = false\n[[scenario]]\n[[scenario.request]]\nmethod = "POST"\npath = "/search"\n'

    assert parse(text).writes is False  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (("json = { username", "jsn = { username"), 'my.toml: setup 1 (line 4): unknown key "jsn"'),
        (('method = "post"', 'method = "FETCH"'), 'scenario 2, request 1 (line 21): "method"'),
        (("expect_status = 201", 'expect_status = "201"'), '"expect_status" must be an integer'),
        (("expect_status = 201", "expect_status = 999"), "must be an HTTP status"),
        (("weight = 4", "weight = 0"), 'scenario 1 (line 10): "weight" must be >= 1'),
        (('think_time = "50ms"', 'think_time = "soon"'), '"think_time" must be a duration'),
        (("{order}", "{ordr}"), "scenario 2, request 2 (line 30): unknown placeholder {ordr}"),
        (("Bearer {token}", "Bearer {tokn}"), "unknown placeholder {tokn}"),
        (('path = "/login"', 'path = "login"'), '"path" must start with /'),
        (('capture = { order = "data.id" }', 'capture = { order = "data..id" }'), "JSON path"),
        (('name = "shop"', 'name = "shop"\nweight = 3'), 'my.toml: unknown key "weight"'),
        (('body = "reason={unique}"', 'json = {}\nbody = "x"'), 'give "json" or "body"'),
        (
            ("weight = 4", "weight = 4\nweight = 5"),
            "not valid TOML: Cannot overwrite a value (at line 12",
        ),
    ],
)
def test_each_mistake_is_one_line_naming_file_place_and_problem(
    change: tuple[str, str], expected: str
) -> None:
    text = GOOD.replace(*change)
    assert text != GOOD

    message = error_of(text)

    assert message.startswith("my.toml: ")
    assert expected in message


def test_a_placeholder_captured_later_in_the_scenario_is_not_known_before() -> None:
    text = GOOD.replace('path = "/orders"\n', 'path = "/orders/{order}"\n', 1)

    assert "scenario 2, request 1 (line 21): unknown placeholder {order}" in error_of(text)


def test_a_file_without_scenarios_and_an_unreadable_file_are_user_errors(tmp_path: Path) -> None:
    assert "no [[scenario]]" in error_of('name = "x"\n')
    with pytest.raises(UserError, match="cannot read the workload file"):
        load_workload_file(tmp_path / "missing.toml")


def test_the_builtin_placeholders_are_the_ones_the_load_generator_fills() -> None:
    values = placeholder_values(DataSizes(), 50, random.Random(1))

    assert set(values) == BUILTIN_PLACEHOLDERS


def test_pgarenas_own_workloads_are_files_in_the_same_language() -> None:
    assert WORKLOADS["fortunes"].scenarios[0].steps[0].expect_body == EXTRA_FORTUNE_MESSAGE.encode()
    assert WORKLOADS["json"].scenarios[0].steps[0].expect_body == HELLO_WORLD.encode()
    crud = WORKLOADS["crud"]
    assert [step.method for step in crud.scenarios[0].steps] == [
        "POST", "GET", "PUT", "GET", "DELETE"
    ]  # fmt: skip
    assert crud.writes and not WORKLOADS["standard"].writes and WORKLOADS["concurrent"].grows
    assert all(w.source.startswith(("seed", "TechEmpower")) for w in WORKLOADS.values())


def test_the_readme_example_is_a_valid_workload_file() -> None:
    text = README.read_text()
    start = text.index("## Your own service and workload")
    example = text[text.index("```toml", start) + len("```toml") : text.index("```\n", start)]

    workload = parse_workload(example, "README", "crud-app")

    assert workload.setup and len(workload.scenarios) >= 2
    for scenario in workload.scenarios:  # every placeholder is one the generator fills
        values = placeholder_values(DataSizes(), 50, random.Random(1))
        setup = [name for step in workload.setup for name, _ in step.captures]
        compile_scenario(scenario.steps, "h", "", values, known=setup)


def test_https_targets_default_to_port_443_where_tls_is_spoken() -> None:
    from pgarena.bench.runner import Target

    target = Target.parse("https://api.example.com/v1/", https=True)

    assert (target.host, target.port, target.path_prefix, target.tls) == (
        "api.example.com",
        443,
        "/v1",
        True,
    )
    assert Target.parse("http://h:8000", https=True).tls is False
    with pytest.raises(UserError, match="http://host"):
        Target.parse("https://api.example.com")  # calibrate's wrk speaks no TLS


def test_targets_are_labelled_by_their_names_or_by_stacks_when_there_is_one() -> None:
    from pgarena.bench.runner import parse_targets

    named = parse_targets(["old=http://h:8001", "new=https://h:8002/v2"])
    assert {name: target.url for name, target in named.items()} == {
        "old": "http://h:8001",
        "new": "https://h:8002/v2",
    }
    assert list(named) == ["old", "new"]  # the order given: the first is the baseline
    assert list(parse_targets(["http://h:8001"])) == ["target"]
    assert list(parse_targets(["http://h:8001"], ["mine"])) == ["mine"]
    assert list(parse_targets(["http://h:8001"], ["a", "b"])) == ["target"]
    assert parse_targets([]) == {}


@pytest.mark.parametrize(
    ("given", "stacks", "message"),
    [
        (["http://h:1", "http://h:2"], None, "name each of several targets"),
        (["a=http://h:1", "a=http://h:2"], None, "'a' is named twice"),
        (["a b=http://h:1"], None, "a name is letters"),
        (["a=http://h:1", "b=http://h:2"], ["mine"], "--stacks labels one target"),
        (["a=ftp://h:1"], None, "http://host"),
    ],
)
def test_a_malformed_target_list_is_a_user_error(
    given: list[str], stacks: list[str] | None, message: str
) -> None:
    from pgarena.bench.runner import parse_targets

    with pytest.raises(UserError, match=message):
        parse_targets(given, stacks)
