"""pgarena workloads as Locust user classes (imported in Locust's processes only).

One `FastHttpUser` class per workload, named after it, so that master and workers started
from the same workload names agree on the classes without exchanging code. Each of the
workload's scenarios is a task with the scenario's weight: a user picks one by weight,
sends its requests in order (placeholders filled, captured values passed on) and stops at
its first wrong answer, as pgarena's own generator does. Setup requests run once per user.

An answer is judged by pgarena's rule (`loadgen.http.Request.check`: status, expected
substring, captures); a wrong one is reported to Locust as a failure whose message is
pgarena's error kind (`status_404`, `body`, `setup`, ...), which `run` reads back.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from random import Random
from typing import Any
from urllib.parse import quote

import gevent
from locust import FastHttpUser, constant

from pgarena.bench.loadgen.http import Request, placeholder_values
from pgarena.bench.locust.protocol import class_name
from pgarena.bench.workload_file import FIELD, Step, Workload, load_workload_file
from pgarena.bench.workloads import DataSizes, resolve_workloads
from pgarena.errors import UserError


def _fill(template: str, captured: dict[str, str], values: dict[str, Callable[[], str]],
          escape: Callable[[str], str]) -> str:  # fmt: skip
    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        return escape(captured[name]) if name in captured else values[name]()

    return FIELD.sub(value, template)


def _json_escape(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)[1:-1]


class _Compiled:
    """A step with its checker and its Locust request name (the template, so that a
    thousand user ids are one row of Locust's statistics, not a thousand)."""

    def __init__(self, step: Step, values: dict[str, Callable[[], str]]) -> None:
        self.step = step
        self.checker = Request(step, "", "", values)
        self.name = step.path

    def send(self, user: FastHttpUser, captured: dict[str, str], setup: bool = False) -> bool:
        """Send the request, judge the answer, record captures; False on a wrong answer."""
        step, values = self.step, self.checker.values
        path = _fill(step.path, captured, values, lambda v: quote(v, safe=""))
        headers = {name: _fill(value, captured, values, str) for name, value in step.headers}
        body = None
        if step.body is not None:
            escape = _json_escape if step.json_body else str
            body = _fill(step.body, captured, values, escape).encode()
            if not any(name.lower() == "content-type" for name in headers):
                headers["Content-Type"] = "application/json"
        with user.client.request(
            step.method, path, headers=headers, data=body, name=self.name, catch_response=True
        ) as response:
            if response.status_code == 0:  # no answer: Locust records the transport error
                return False
            verdict = self.checker.check(response.status_code, response.content or b"")
            if isinstance(verdict, str):
                response.failure("setup" if setup else verdict)
                return False
            captured.update(verdict)
            response.success()
            return True


def user_class(workload: Workload, data: DataSizes, slow_ms: int, timeout_s: float) -> type:
    """A `FastHttpUser` subclass that runs `workload`."""
    values = placeholder_values(data, slow_ms, Random())
    setup = [_Compiled(step, values) for step in workload.setup]

    def scenario_task(steps: list[_Compiled], think_s: float) -> Callable[[Any], None]:
        def run(user: Any) -> None:
            captured = dict(user.captured)
            for step in steps:
                if not step.send(user, captured):
                    return
                if think_s:
                    gevent.sleep(think_s)

        return run

    tasks = {
        scenario_task([_Compiled(s, values) for s in scenario.steps], scenario.think_time_s): (
            scenario.weight
        )
        for scenario in workload.scenarios
    }

    def on_start(user: Any) -> None:
        user.captured = {}
        for step in setup:
            if not step.send(user, user.captured, setup=True):
                user.captured = {}
                return

    return type(
        class_name(workload.name),
        (FastHttpUser,),
        {
            "tasks": tasks,
            "wait_time": constant(0),  # closed loop: the next request when the answer is in
            "on_start": on_start,
            "network_timeout": timeout_s,
            "connection_timeout": timeout_s,
            "insecure": False,  # https targets: certificates verified, as `pgarena run` does
            "abstract": False,
            "__module__": __name__,
        },
    )


def user_classes(
    workloads: str | None, workload_file: str | None, slow_ms: int, timeout_s: float
) -> list[type]:
    """The user classes of workload names (and groups) and a workload file."""
    chosen = resolve_workloads(w.strip() for w in (workloads or "").split(",") if w.strip())
    if workload_file:
        chosen.append(load_workload_file(workload_file))
    if not chosen:
        raise UserError("no workload: give --workloads or --workload-file")
    return [user_class(w, DataSizes(), slow_ms, timeout_s) for w in chosen]
