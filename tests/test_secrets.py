"""No command prints a password, whatever characters it holds (issue 11, item 5).

Generated passwords hold `/ # ? @ %`, and users paste them into DATABASE_URL unescaped. Each
password here has two distinctive halves around its special character, so a command that
showed half of it (the part after an `@` taken for a host name, the part before a `#` taken
for the whole password) fails too. The halves hold `_`, which neither base64 (the histograms
and charts in results and reports) nor hex ever writes, so random data cannot contain them.
The embedded server trusts its Unix socket, so the password is ignored by PostgreSQL and the
commands really succeed; an unreachable host shows the driver's error path.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from helpers import run_pgarena

from pgarena.database.urls import parse_database_url
from pgarena.results.file import load_results


def _leaks(result: subprocess.CompletedProcess[str]) -> bool:
    output = result.stdout + result.stderr
    return "Kp_7" in output or "Wm_3" in output


def _pasted(database_url: str, password: str) -> str:
    """`database_url` (embedded, socket) with `password` pasted in unescaped, as users do."""
    if os.environ.get("DATABASE_URL"):
        pytest.skip("needs the embedded server, which ignores passwords on its socket")
    parsed = parse_database_url(database_url)
    query = "&".join(f"{key}={value}" for key, value in parsed.query.items())
    return f"postgresql://{parsed.username}:{password}@/{parsed.database}?{query}"


def _db(*args: str, url: str) -> subprocess.CompletedProcess[str]:
    return run_pgarena("db", *args, env={"DATABASE_URL": url, "COLUMNS": "200"}, timeout=120)


# Every character alone is covered in tests/unit/test_urls.py; here, the worst ones together.
@pytest.mark.parametrize("password", ["Kp_7/Wm_3", "Kp_7@Wm_3", "Kp_7/#?@%Wm_3"])
def test_db_status_url_upgrade_never_show_the_password(database_url: str, password: str) -> None:
    url = _pasted(database_url, password)
    results = {command: _db(command, url=url) for command in ("status", "url", "upgrade")}
    for command, result in results.items():
        assert result.returncode == 0, (command, result.stderr)
        assert not _leaks(result), (command, result.stdout, result.stderr)
    assert "reachable, PostgreSQL" in results["status"].stdout  # the URL was read right
    assert ":***@" in results["url"].stdout


@pytest.mark.parametrize("password", ["Kp_7@Wm_3", "Kp_7/#?@%Wm_3"])
@pytest.mark.parametrize("command", ["status", "upgrade"])
def test_driver_errors_never_show_the_password(password: str, command: str) -> None:
    url = f"postgresql://app:{password}@no-such-host.invalid:5432/shop?connect_timeout=2"
    result = _db(command, url=url)
    assert result.returncode == (0 if command == "status" else 2), result.stderr
    assert "Traceback" not in result.stderr
    assert not _leaks(result), (result.stdout, result.stderr)
    assert "no-such-host.invalid" in result.stdout + result.stderr  # the real host, reported


def test_run_metadata_and_output_never_show_the_password(database_url: str, tmp_path: Path) -> None:
    url = _pasted(database_url, "Kp_7/#?@%Wm_3")
    result = run_pgarena(
        "run", "--stacks", "async-raw", "--workloads", "json", "--concurrency", "1",
        "--duration", "0.3s", "--warmup", "0s", "--repeats", "1", "--out", str(tmp_path),
        env={"DATABASE_URL": url}, timeout=180,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert not _leaks(result), (result.stdout, result.stderr)
    document = load_results(tmp_path)
    assert document["metadata"]["postgres"]["database"].count("***") == 1
    for written in tmp_path.rglob("*"):
        if written.is_file() and written.suffix in (".json", ".md", ".html", ".csv", ".log"):
            text = written.read_text(errors="replace")
            assert "Kp_7" not in text and "Wm_3" not in text, written
