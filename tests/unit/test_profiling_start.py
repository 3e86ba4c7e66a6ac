"""`pgarena run --profile` waits for py-spy to sample before the window opens, but not forever.

The processes here are real ones standing in for py-spy's three ways of starting: it
reports that it samples, it exits (a pid it may not read), or it stays busy attaching.
"""

from __future__ import annotations

import subprocess
import time

import pytest

from pgarena.bench.profiling import _wait_until_sampling

SAMPLING = "echo 'Sampling process 250 times a second. Press Control-C to exit.'; echo; "


def started(script: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(["sh", "-c", script], stdout=subprocess.PIPE)


@pytest.mark.parametrize(
    ("script", "expected"),
    [
        (SAMPLING + "sleep 30", True),  # sampling: Ctrl-C now writes the flame graph
        ("echo 'Error: Permission denied'; exit 1", True),  # exited: `stop` reports why
        ("sleep 30", False),  # still attaching at the deadline
        ("echo 'Sampling process 250 times a second.'; sleep 30", False),  # handler not yet in
    ],
)
def test_wait_until_sampling(script: str, expected: bool) -> None:
    process = started(script)
    try:
        began = time.monotonic()
        assert _wait_until_sampling(process, timeout=2.0) is expected
        waited = time.monotonic() - began
        # A py-spy that samples or exits is not waited for until the deadline; a busy one
        # until then and no longer.
        assert waited < 2.0 if expected else 2.0 <= waited < 3.0
    finally:
        process.kill()
        process.wait()
