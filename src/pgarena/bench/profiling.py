"""`pgarena run --profile`: a py-spy flame graph of one measured window per stack.

py-spy samples the server's Python stacks from outside (no code in the server, no restart),
so the cell it records is measured as any other; what it costs is CPU of its own, which the
"other" share of that cell shows. It records the first cell of each stack (repeat 1), from
the start of the measured window to its end, warmup excluded, and writes
`profiles/<stack>-<workload>-c<N>.svg` beside the results; the cell records that path and
the HTML report links it. py-spy is an optional extra (`pip install 'pgarena[profile]'`);
it needs to be allowed to read another process's memory (root, or
`kernel.yama.ptrace_scope = 0`).
"""

from __future__ import annotations

import os
import select
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from pgarena.bench.plan import PlannedCell
from pgarena.errors import UserError

SAMPLE_RATE_HZ = 250  # enough samples in a few seconds; py-spy's default is 100
START_TIMEOUT_S = 30.0  # attaching to a server and its workers takes a second or two
STOP_TIMEOUT_S = 30.0  # writing the SVG of a few seconds of samples takes well under this


def py_spy() -> str:
    """The py-spy executable (beside this Python first, as a venv installs it), or a
    one-line UserError naming the extra."""
    found = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
    if found is None:
        raise UserError("--profile needs py-spy: pip install 'pgarena[profile]'")
    return found


class Profiler:
    """Starts py-spy on a server when a chosen cell's window opens; stops it when it closes."""

    def __init__(self, out_dir: Path) -> None:
        self.executable = py_spy()
        self.out_dir = out_dir
        self.profiled: set[str] = set()  # stacks that have their flame graph
        self._process: subprocess.Popen[bytes] | None = None
        self._path: Path | None = None
        self._late = False  # py-spy did not start sampling in time, and was stopped
        self.error: str | None = None  # why the last recording failed, if it did

    def wants(self, key: PlannedCell) -> bool:
        """Whether this cell is its stack's profiled one (the first cell run)."""
        return key.stack not in self.profiled

    def start(self, key: PlannedCell, pid: int) -> None:
        """Sample `pid` and its worker processes from now on."""
        self.profiled.add(key.stack)
        directory = self.out_dir / "profiles"
        directory.mkdir(parents=True, exist_ok=True)
        self._path = directory / f"{key.stack}-{key.workload.name}-c{key.concurrency}.svg"
        command = [
            self.executable, "record", "--pid", str(pid), "--subprocesses",
            "--rate", str(SAMPLE_RATE_HZ), "--nonblocking", "--nolineno",
            "--format", "flamegraph",
            "--output", str(self._path),
        ]  # fmt: skip
        # --nonblocking: the server is never paused to be read; a sample may be torn, which
        # py-spy counts as an error and drops. --nolineno: one frame per function, not per
        # line, which is what a reader looks for, and an SVG a third the size.
        self._process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self._late = not _wait_until_sampling(self._process, START_TIMEOUT_S)
        if self._late:  # stuck attaching: the run goes on without this flame graph
            self._process.kill()

    def stop(self) -> str | None:
        """End the recording; the SVG's path relative to the output directory, or None
        when py-spy failed (its last line is then kept in `self.error`)."""
        process, path = self._process, self._path
        self._process = self._path = None
        self.error = None
        if process is None or path is None:
            return None
        if process.poll() is None:
            process.send_signal(signal.SIGINT)  # py-spy writes its output on Ctrl-C
        try:
            _, stderr = process.communicate(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            _, stderr = process.communicate()
        if not path.exists():
            if self._late:
                self.error = f"py-spy did not start sampling within {START_TIMEOUT_S:.0f} s"
            else:
                lines = stderr.decode(errors="replace").strip().splitlines()
                self.error = lines[-1] if lines else f"py-spy exited with {process.returncode}"
            return None
        return str(path.relative_to(self.out_dir))


def _wait_until_sampling(process: subprocess.Popen[bytes], timeout: float) -> bool:
    """Whether py-spy, within `timeout` seconds, samples and will take Ctrl-C as "write the
    output", or has exited; False if it is still busy at the deadline.

    py-spy attaches to the server first (longer with --subprocesses), then prints "Sampling
    process ..." and one empty line, and only then installs its Ctrl-C handler: a SIGINT
    before that kills it with nothing written, as a window shorter than the attach once did.
    So `start` returns once that empty line is read (Rust flushes stdout at each line, even
    into a pipe); the workers measure meanwhile, as they run in processes of their own. End
    of file means py-spy exited, which `stop` reports.
    """
    assert process.stdout is not None
    descriptor, seen = process.stdout.fileno(), b""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([descriptor], [], [], left)[0]:
            return False
        chunk = os.read(descriptor, 4096)
        seen += chunk
        sampling = seen.find(b"Sampling process")
        if not chunk or (sampling >= 0 and b"\n\n" in seen[sampling:]):
            return True
