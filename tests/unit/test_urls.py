"""Every accepted URL spelling converted for every consumer, passwords kept out of messages:
pure string work, no server. That the converted URLs really connect is checked in
tests/test_database_urls.py."""

from __future__ import annotations

import traceback

import pytest
from helpers import SPELLINGS

from pgarena.database.urls import hide_password, parse_database_url, redact, url_for, with_database

# What each target must receive, for a TCP URL with TLS and a percent-encoded password, and
# for a Unix-socket URL. `ssl=` is how SQLAlchemy's asyncpg dialect spells libpq's `sslmode=`.
TCP = "app:p%40ss%2Fw@db.example.com:5433/shop?sslmode=require"
SOCKET = "postgres@/shop?host=/run/postgresql"
EXPECTED = {
    "libpq": (
        "postgresql://app:p%40ss%2Fw@db.example.com:5433/shop?sslmode=require",
        "postgresql://postgres@/shop?host=/run/postgresql",
    ),
    "psycopg2": (
        "postgresql+psycopg2://app:p%40ss%2Fw@db.example.com:5433/shop?sslmode=require",
        "postgresql+psycopg2://postgres@/shop?host=/run/postgresql",
    ),
    "psycopg": (
        "postgresql+psycopg://app:p%40ss%2Fw@db.example.com:5433/shop?sslmode=require",
        "postgresql+psycopg://postgres@/shop?host=/run/postgresql",
    ),
    "asyncpg": (
        "postgresql+asyncpg://app:p%40ss%2Fw@db.example.com:5433/shop?ssl=require",
        "postgresql+asyncpg://postgres@/shop?host=/run/postgresql",
    ),
}


@pytest.mark.parametrize("target", sorted(EXPECTED))
@pytest.mark.parametrize("spelling", SPELLINGS)
def test_every_spelling_converts_to_what_each_target_expects(spelling: str, target: str) -> None:
    expected_tcp, expected_socket = EXPECTED[target]
    assert url_for(f"{spelling}://{TCP}", target) == expected_tcp  # type: ignore[arg-type]
    assert url_for(f"{spelling}://{SOCKET}", target) == expected_socket  # type: ignore[arg-type]


def test_asyncpg_spelling_of_tls_becomes_sslmode_for_libpq() -> None:
    assert url_for("postgresql+asyncpg://u@h/db?ssl=verify-full", "libpq") == (
        "postgresql://u@h/db?sslmode=verify-full"
    )


def test_empty_password_is_dropped_and_password_is_kept_exactly() -> None:
    assert url_for("postgresql://postgres:@/db?host=/tmp/s", "libpq") == (
        "postgresql://postgres@/db?host=/tmp/s"
    )
    parsed = parse_database_url(url_for("postgres://u:p%40ss%2Fw%3Ard@h/db", "asyncpg"))
    assert parsed.password == "p@ss/w:rd"


def test_with_database_keeps_server_and_credentials() -> None:
    assert with_database("postgresql+asyncpg://u:pw@h:6000/one?sslmode=require", "two") == (
        "postgresql://u:pw@h:6000/two?sslmode=require"
    )


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql://app:s3cret@h:5432/db", "postgresql://app:***@h:5432/db"),
        ("postgresql+asyncpg://app:s3cret@h/db", "postgresql+asyncpg://app:***@h/db"),
        # An unescaped @ in the password must not leave its tail visible.
        ("postgresql://app:s3c@ret@h/db", "postgresql://app:***@h/db"),
        ("postgresql://app@h/db?password=s3cret&sslmode=require",
         "postgresql://app@h/db?password=***&sslmode=require"),
        ("postgresql://postgres@/db?host=/tmp/socket", "postgresql://postgres@/db?host=/tmp/socket"),
        ("mysql://app:s3cret@h/db", "mysql://app:***@h/db"),
    ],
)  # fmt: skip
def test_redact_hides_the_password_and_nothing_else(url: str, expected: str) -> None:
    assert redact(url) == expected


def test_redact_accepts_parsed_urls() -> None:
    parsed = parse_database_url("postgresql+psycopg://app:p%40ss@h/db")
    assert redact(parsed) == "postgresql+psycopg://app:***@h/db"


def test_hide_password_scrubs_driver_messages() -> None:
    message = 'invalid dsn: "host=h password=p@ss/w" near p%40ss%2Fw'
    assert hide_password(message, "postgresql://u:p%40ss%2Fw@h/db") == (
        'invalid dsn: "host=h password=***" near ***'
    )


@pytest.mark.parametrize(
    "url",
    [
        "mysql://app:s3cret@h/db",
        "postgresql+pg8000://app:s3cret@h/db",
        "http://app:s3cret@h/db",
        "postgresql://app:s3cret@h:notaport/db",
        "app:s3cret@h/db",
        "",
    ],
)
def test_bad_urls_raise_value_error_without_the_password(url: str) -> None:
    with pytest.raises(ValueError) as raised:
        parse_database_url(url)
    # Not in the message, nor anywhere in the printed traceback (no chained parser error).
    assert "s3cret" not in "".join(traceback.format_exception(raised.value))
    with pytest.raises(ValueError):
        url_for(url, "libpq")


def test_ipv6_hosts_and_odd_names_survive_the_round_trip() -> None:
    url = url_for("postgresql+asyncpg://my user:a b+c@[::1]:5433/my db", "libpq")
    assert url == "postgresql://my%20user:a%20b%2Bc@[::1]:5433/my%20db"
    parsed = parse_database_url(url)
    assert (parsed.username, parsed.password, parsed.host, parsed.port, parsed.database) == (
        "my user",
        "a b+c",
        "::1",
        5433,
        "my db",
    )


# Generated passwords hold characters nobody escapes when pasting a URL. Each half of these is
# distinctive, so a half leaking (the part after an `@` taken for a host name, say) shows.
SPECIAL_PASSWORDS = ["Kp7/Wm3", "Kp7#Wm3", "Kp7?Wm3", "Kp7@Wm3", "Kp7%Wm3", "Kp7/#?@%Wm3"]


@pytest.mark.parametrize("password", SPECIAL_PASSWORDS)
@pytest.mark.parametrize(
    "template",
    [
        "postgresql://app:{}@db.example.com:5433/shop?sslmode=require",
        "postgresql+asyncpg://app:{}@db.example.com/shop",
        "postgres://app:{}@/shop?host=/run/postgresql",
        "app:{}@db.example.com/shop",  # no scheme: not a URL pgarena takes, still hidden
    ],
)
def test_unescaped_special_characters_stay_in_the_password(template: str, password: str) -> None:
    url = template.format(password)
    redacted = redact(url)
    assert "Kp7" not in redacted and "Wm3" not in redacted
    assert redacted == template.format("***")
    message = f'could not translate host name "{password}" to address; user {url}'
    scrubbed = hide_password(message, url)
    assert "Kp7" not in scrubbed and "Wm3" not in scrubbed
    if "://" in template:
        parsed = parse_database_url(url)
        assert parsed.password == password
        assert parsed.host in ("db.example.com", None) and parsed.database == "shop"
        # The rendered URL escapes it, so libpq reads the same password back.
        assert parse_database_url(url_for(url, "libpq")).password == password


def test_percent_escapes_are_decoded_only_when_they_are_escapes() -> None:
    assert parse_database_url("postgresql://u:p%40ss@h/db").password == "p@ss"
    assert parse_database_url("postgresql://u:ab%cd@h/db").password == "ab%cd"  # no UTF-8
    assert parse_database_url("postgresql://u:50%off@h/db").password == "50%off"
    assert hide_password("auth failed for p%40ss and p@ss", "postgresql://u:p%40ss@h/db") == (
        "auth failed for *** and ***"
    )
