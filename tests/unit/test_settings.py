"""Settings: where values come from, what is derived, what is refused, and the database URL
check that commands run before they touch anything. No server, no database."""

from __future__ import annotations

import os
import traceback

import pytest
from pydantic import ValidationError

from pgarena.database import check_database_url
from pgarena.errors import UserError
from pgarena.settings import Settings


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No PGARENA_* or DATABASE_URL from the shell running the tests."""
    for name in list(os.environ):
        if name.startswith("PGARENA_") or name == "DATABASE_URL":
            monkeypatch.delenv(name)


def test_rejected_database_url_hides_the_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "mysql://app:s3cret@db.example.com/shop")
    with pytest.raises(UserError) as raised:
        check_database_url(Settings())
    assert "unsupported database URL scheme" in str(raised.value)
    assert "s3cret" not in "".join(traceback.format_exception(raised.value))


@pytest.mark.parametrize(
    "url", ["postgresql://app:s3cret@h/db", "postgres://u@/db?host=/run/postgresql", None]
)
def test_accepted_database_urls_and_no_url_pass_the_check(url: str | None) -> None:
    check_database_url(Settings(database_url=url))


def test_an_empty_database_url_means_the_embedded_server(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "")
    assert Settings().database_url is None


@pytest.mark.parametrize("variable", ["DATABASE_URL", "PGARENA_DATABASE_URL"])
def test_either_database_url_variable_is_read(
    monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    monkeypatch.setenv(variable, "postgresql://h/a")
    assert Settings().database_url == "postgresql://h/a"


def test_keyword_arguments_win_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PGARENA_POOL_SIZE", "7")
    assert Settings().pool_size == 7
    assert Settings(pool_size=3).pool_size == 3


def test_threads_default_to_the_pools_maximum() -> None:
    settings = Settings(pool_size=3, max_overflow=2)
    assert (settings.max_connections, settings.thread_count) == (5, 5)
    assert Settings(pool_size=3, max_overflow=2, threads=40).thread_count == 40


def test_connections_are_named_after_the_stack_unless_named_otherwise(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert Settings(stack="sync-raw").postgres_application_name == "pgarena-sync-raw"
    monkeypatch.setenv("PGARENA_APPLICATION_NAME", "orders-api")
    assert Settings(stack="sync-raw").postgres_application_name == "orders-api"
    with pytest.raises(ValidationError):  # PostgreSQL would cut it at 63 bytes
        Settings(application_name="x" * 64)


@pytest.mark.parametrize(
    ("field", "value"),
    [("port", 70000), ("workers", 0), ("pool_size", 0), ("health_timeout", 0), ("typo", 1)],
)
def test_bad_values_fail_at_construction(field: str, value: int) -> None:
    with pytest.raises(ValidationError) as raised:
        Settings(**{field: value})
    assert raised.value.errors()[0]["loc"] == (field,)


def test_settings_are_frozen() -> None:
    with pytest.raises(ValidationError):
        Settings().port = 1  # type: ignore[misc]


def test_the_default_pool_has_no_overflow_and_threads_match_it() -> None:
    # Overflow connections are closed on return: a default with overflow churns connections
    # under steady load (issue 15). The thread pool of a sync stack matches the pool.
    settings = Settings()
    assert (settings.pool_size, settings.max_overflow) == (20, 0)
    assert settings.thread_count == settings.max_connections == 20
