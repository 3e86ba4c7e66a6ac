"""Run the real `pgarena` command line from tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def run_pgarena(
    *args: str | Path, env: dict[str, str] | None = None, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    """`pgarena ARGS` in a subprocess with `env` added to this environment; never raises on
    a non-zero exit (tests assert on it)."""
    return subprocess.run(
        [sys.executable, "-m", "pgarena", *map(str, args)],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=timeout,
        check=False,
    )
