"""schemathesis (`--checks all`) against two stacks: every answer is documented, every
schema-valid request is accepted and every schema-violating one refused.

503 is declared an expected answer, not a server error (`chaos.faults.SCHEMATHESIS_CONFIG`
says why); a 500 still fails. About a minute per stack, so behind the slow marker.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from helpers import running_server

from pgarena.chaos.faults import SCHEMATHESIS_CONFIG

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("stack", ["sync", "async"])
def test_schemathesis_finds_no_failure(stack: str, database_url: str, tmp_path: Path) -> None:
    config = tmp_path / "schemathesis.toml"
    config.write_text(SCHEMATHESIS_CONFIG)  # the one `pgarena chaos` uses
    with running_server(database_url, "--stack", stack) as base_url:
        result = subprocess.run(
            [sys.executable, "-m", "schemathesis.cli", "--config-file", str(config), "run",
             f"{base_url}/openapi.json", "--checks", "all", "--max-examples", "10",
             "--generation-deterministic", "--no-color"],
            capture_output=True, text=True, timeout=600, check=False, cwd=tmp_path,
        )  # fmt: skip
    assert result.returncode == 0, result.stdout[-5000:]
