"""One pgarena run per PostgreSQL cluster at a time.

Two benchmark runs on one embedded cluster measure each other's load and write into each
other's tables. `run_lock` makes the second one stop at once and say who holds the cluster.

The lock is `flock(2)` on a file beside the data directory (inside it would make a new,
empty data directory non-empty, which initdb refuses). The kernel releases a flock when the
process holding it dies, however it dies, so a crashed run never blocks the next one; the
pid, purpose and start time written into the file only describe the holder in the error
message, and are believed only while the lock is really held.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import fcntl
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

from pgarena.errors import UserError

# How long a refused caller waits for the holder to finish writing its description: the
# holder takes the lock first and writes second, so for a moment the file may be empty.
_DESCRIPTION_WAIT_S = 0.5


def lock_path(data_dir: Path) -> Path:
    """The lock file of a data directory: `<data_dir>.run.lock`, beside it."""
    data_dir = Path(data_dir).expanduser().resolve()
    return data_dir.with_name(data_dir.name + ".run.lock")


@contextlib.contextmanager
def run_lock(data_dir: Path, purpose: str) -> Iterator[Path]:
    """Hold the data directory's run lock for the `with` block; yield the lock file's path.

    `purpose` names the holder in other runs' error messages (for example "pgarena run").
    Never waits: when another live process holds the lock, raises `UserError` with a
    one-line message naming that process and how to give this run its own cluster. The
    lock is per open file, so a second `run_lock` on the same directory in the same
    process is refused too.
    """
    path = lock_path(data_dir)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # O_CLOEXEC (Python's default) keeps servers started by this run from inheriting the
        # lock and holding it after we exit.
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as error:
        raise UserError(f"cannot create the run lock {path}: {error.strerror}") from None
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            if error.errno not in (errno.EWOULDBLOCK, errno.EACCES):
                raise UserError(f"cannot lock {path}: {error.strerror}") from None
            raise UserError(_refusal(path, data_dir)) from None
        # Ours now: whatever a previous holder wrote is overwritten, never believed.
        description = {
            "pid": os.getpid(),
            "purpose": purpose,
            "started_at": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        }
        os.ftruncate(descriptor, 0)
        os.pwrite(descriptor, json.dumps(description).encode(), 0)
        try:
            yield path
        finally:
            # Empty the file before letting go, so nobody reads a finished run as the holder.
            with contextlib.suppress(OSError):
                os.ftruncate(descriptor, 0)
    finally:
        os.close(descriptor)  # releases the lock


def _refusal(path: Path, data_dir: Path) -> str:
    """The one-line message for a caller that found the lock held."""
    holder = _read_holder(path)
    if holder is None:
        who = "another pgarena run"
    else:
        who = f"another pgarena run (pid {holder['pid']}, `{holder['purpose']}`, since "
        who += f"{_clock_time(holder['started_at'])})"
    where = Path(data_dir).expanduser().resolve()
    return (
        f"{who} is using {where}; wait for it, or give this one its own cluster "
        "with --data-dir DIR or PGARENA_DATA_DIR"
    )


def _read_holder(path: Path) -> dict[str, str] | None:
    """The holder's description, if it has written one and that process is alive."""
    deadline = time.monotonic() + _DESCRIPTION_WAIT_S
    while True:
        try:
            description = json.loads(path.read_text())
            pid = int(description["pid"])
            holder = {
                "pid": str(pid),
                "purpose": str(description["purpose"]),
                "started_at": str(description["started_at"]),
            }
        except (OSError, ValueError, KeyError, TypeError):
            holder = None
        else:
            if _alive(pid):
                return holder
        if time.monotonic() >= deadline:
            return None
        time.sleep(0.02)  # the holder is between taking the lock and describing itself


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # alive, and someone else's
    return True


def _clock_time(iso: str) -> str:
    """`08:01:02` for a start today, `2025-01-31 08:01` for an older one."""
    try:
        started = dt.datetime.fromisoformat(iso).astimezone()
    except ValueError:
        return iso
    if started.date() == dt.datetime.now().astimezone().date():
        return started.strftime("%H:%M:%S")
    return started.strftime("%Y-%m-%d %H:%M")
