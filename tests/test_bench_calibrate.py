"""`pgarena calibrate`: the load generator measured against wrk, one after the other."""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import pytest
from helpers import run_pgarena


def calibrate(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return run_pgarena("calibrate", *args, env={"COLUMNS": "200", **env}, timeout=180)


def test_calibrate_prints_both_throughputs_and_their_ratio(database_url: str) -> None:
    if shutil.which("wrk") is None:
        if os.environ.get("CI"):
            pytest.fail("wrk is missing in CI (.ci/run installs it)")
        pytest.skip("wrk is not installed (Debian: apt-get install wrk)")
    result = calibrate(
        "--path", "/json", "--concurrency", "4", "--duration", "1s", "--rounds", "2",
        env={"DATABASE_URL": database_url},
    )  # fmt: skip
    # 0: the generator reached 90% of wrk; 1: it did not. Both are measurements.
    assert result.returncode in (0, 1), result.stderr
    row = next(line for line in result.stdout.splitlines() if re.match(r"\W*4\W", line))
    columns = [column.strip() for column in row.strip("│ ").split("│")]
    wrk_rps, generator_rps = (float(value.replace(",", "")) for value in columns[1:3])
    shown = re.fullmatch(r"(\d+)% \((\d+)-(\d+)\)", columns[3])  # "101% (99-104)"
    assert shown is not None, columns[3]
    ratio, low, high = (int(number) for number in shown.groups())
    assert wrk_rps > 0 and generator_rps > 0
    assert abs(ratio - round(100 * generator_rps / wrk_rps)) <= 1
    # Over two rounds the ratio of the medians lies between the two rounds' own ratios.
    assert low - 1 <= ratio <= high + 1 and low <= high
    assert (columns[-1] == "ok") == (result.returncode == 0)  # else "< 90%"


def test_calibrate_without_wrk_says_how_to_install_it(tmp_path: object) -> None:
    result = calibrate(env={"PATH": str(tmp_path)})
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "apt-get install wrk" in result.stderr
