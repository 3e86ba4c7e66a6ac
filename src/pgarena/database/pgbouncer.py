"""PgBouncer in front of PostgreSQL: the system's `pgbouncer`, in transaction mode.

`pgarena run --pooler pgbouncer` and `pgarena serve --pooler pgbouncer` start one here, on a
free local port, with a configuration written for it alone: every database of the server
behind it, reached as the URL's user, server connections shared between clients per
transaction (`pool_mode = transaction`, the mode that lets many application connections
share a few PostgreSQL backends, and the one that breaks session state).

What transaction mode breaks is named prepared statements: a statement prepared on one
backend is unknown to the next transaction's backend. The stacks stop relying on them when
`Settings.transaction_pooler` is set (see each stack's `open_database`); PgBouncer 1.21 and
newer can instead track them itself (`max_prepared_statements`), which `POOLER_NOTE` says.

Clients are not authenticated (`auth_type = any`): PgBouncer listens on 127.0.0.1 only and
logs in to PostgreSQL with the URL's own user and password. PgBouncer refuses to run as
root; as root it is started as the owner of PostgreSQL's socket directory (the embedded
server's system user), or `nobody` over TCP. It dies with the process that started it.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg

from pgarena.database.urls import parse_database_url, url_for
from pgarena.errors import UserError
from pgarena.processes import die_with_parent, free_port
from pgarena.settings import Settings

POOLERS = ("pgbouncer",)
START_TIMEOUT_S = 15.0
# Server connections per database and user: the stacks' pools (10 + 10 per worker by
# default) share these, which is the point of a pooler.
DEFAULT_POOL_SIZE = 20
MISSING = (
    "--pooler pgbouncer needs the pgbouncer program on PATH "
    "(Debian/Ubuntu: apt-get install pgbouncer)"
)
POOLER_NOTE = (
    "PgBouncer in transaction mode: prepared statements off in every driver; PgBouncer >= 1.21 "
    "can keep them instead with max_prepared_statements > 0"
)


def pooler_description(name: str) -> str:
    """'pgbouncer 1.18.0 (transaction)': what the result file and the report show."""
    try:
        first = subprocess.run(
            [name, "--version"], capture_output=True, text=True, timeout=10, check=False
        ).stdout.split("\n", 1)[0]
    except OSError:
        first = name
    version = first.split()[-1] if first.strip() else ""
    return f"{name} {version} (transaction)".replace("  ", " ")


def check_pooler(name: str | None) -> None:
    """A one-line error for an unknown pooler or a missing program, before any work."""
    if name is None:
        return
    if name not in POOLERS:
        raise UserError(f"unknown pooler {name!r}; choose from: {', '.join(POOLERS)}")
    if shutil.which("pgbouncer") is None:
        raise UserError(MISSING)


def _config(url: str, port: int, pool_size: int, statement_timeout_ms: int) -> str:
    parsed = parse_database_url(url)
    host = parsed.query.get("host") or parsed.host or "localhost"
    if isinstance(host, tuple):
        host = host[0]
    target = [f"host={host}", f"port={parsed.port or 5432}"]
    if parsed.username:
        target.append(f"user={parsed.username}")
    if parsed.password:
        target.append(f"password={parsed.password}")
    if statement_timeout_ms:
        # The stacks cannot send it at connect through the pooler (stacks/connect.py): every
        # server connection PgBouncer opens gets it before any client uses it.
        target.append(f"connect_query='SET statement_timeout = {statement_timeout_ms}'")
    return "\n".join(
        [
            "[databases]",
            "* = " + " ".join(target),
            "",
            "[pgbouncer]",
            "listen_addr = 127.0.0.1",
            f"listen_port = {port}",
            "unix_socket_dir =",
            "auth_type = any",
            "pool_mode = transaction",
            f"default_pool_size = {pool_size}",
            "max_client_conn = 2000",
            # Drivers send these at connect; PgBouncer would refuse an unknown one.
            "ignore_startup_parameters = extra_float_digits,options",
            "server_reset_query =",
            "",
        ]
    )


def _run_as(url: str) -> str | None:
    """Who PgBouncer runs as when we are root (it refuses root), else None (ourselves)."""
    if os.geteuid() != 0:
        return None
    host = parse_database_url(url).query.get("host")
    if isinstance(host, str) and host.startswith("/") and Path(host).exists():
        return pwd.getpwuid(Path(host).stat().st_uid).pw_name
    return "nobody"


@contextlib.contextmanager
def pgbouncer(
    url: str, pool_size: int = DEFAULT_POOL_SIZE, statement_timeout_ms: int | None = None
) -> Iterator[str]:
    """PgBouncer in front of the server of `url`, for the block; yields the libpq URL of
    the same database through it. Its server connections get the service's statement
    timeout (`Settings.statement_timeout_ms` unless given)."""
    if statement_timeout_ms is None:
        statement_timeout_ms = Settings().statement_timeout_ms
    check_pooler("pgbouncer")
    port = free_port()
    user = _run_as(url)
    with tempfile.TemporaryDirectory(prefix="pgarena-pgbouncer-") as directory:
        config = Path(directory) / "pgbouncer.ini"
        config.write_text(_config(url, port, pool_size, statement_timeout_ms))
        config.chmod(0o600)
        ids: dict[str, int] = {}
        if user is not None:
            owner = pwd.getpwnam(user)
            os.chown(directory, owner.pw_uid, owner.pw_gid)
            os.chown(config, owner.pw_uid, owner.pw_gid)
            ids = {"user": owner.pw_uid, "group": owner.pw_gid, "extra_groups": []}
        log = Path(directory) / "pgbouncer.log"
        with log.open("wb") as output:
            # The user is switched before exec, not by `pgbouncer -u`: a process that changes
            # its own user loses its parent-death signal, and PgBouncer must not outlive a
            # pgarena that was killed.
            process = subprocess.Popen(
                ["pgbouncer", "-q", str(config)],
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                # SIGKILL: the pooler holds nothing worth a clean exit once pgarena is gone.
                preexec_fn=die_with_parent(signal.SIGKILL),
                **ids,  # type: ignore[arg-type]
            )
        through = url_for(
            parse_database_url(url).set(host="127.0.0.1", port=port, query={}), "libpq"
        )
        try:
            _wait_ready(process, through, log)
            yield through
        finally:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGINT)  # "safe shutdown" in PgBouncer's words
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _wait_ready(process: subprocess.Popen, url: str, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        if process.poll() is not None:
            lines = log.read_text(errors="replace").strip().splitlines() or ["(no output)"]
            raise UserError(f"pgbouncer exited with code {process.returncode}: {lines[-1]}")
        try:
            with psycopg.connect(url, connect_timeout=2, prepare_threshold=None) as connection:
                connection.execute("SELECT 1")
            return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise UserError(
                    f"pgbouncer did not answer within {START_TIMEOUT_S:.0f} s"
                ) from None
            time.sleep(0.05)
