"""PostgreSQL URLs: accept every common spelling, hand each consumer the one it needs.

People write `postgresql://`, `postgres://`, `postgresql+asyncpg://`, `postgresql+psycopg2://`
or `postgresql+psycopg://`, and each consumer wants its own: SQLAlchemy needs the driver in the
scheme, while psql, psycopg, psycopg_pool and raw asyncpg want a plain libpq URI. Seed 002
converted with `url.replace("+asyncpg", "")`, which breaks on every other spelling; this module
parses once and renders for the target, so a Unix-socket URL
(`postgresql://user@/db?host=/run/postgresql`) and a password with `@` or `/` in it survive.
"""

from __future__ import annotations

import re
from typing import Literal
from urllib.parse import quote, urlencode

from sqlalchemy.engine import URL, make_url

Driver = Literal["psycopg2", "asyncpg", "psycopg", "libpq"]

ACCEPTED_SCHEMES = (
    "postgresql",
    "postgres",
    "postgresql+asyncpg",
    "postgresql+psycopg2",
    "postgresql+psycopg",
)

_SCHEME_FOR_DRIVER: dict[str, str] = {
    "psycopg2": "postgresql+psycopg2",
    "asyncpg": "postgresql+asyncpg",
    "psycopg": "postgresql+psycopg",
    "libpq": "postgresql",
}

# `scheme://user:PASSWORD@` (scheme optional, as people forget it): the password runs to the
# last `@` before the path, so an unescaped `@` in it is still hidden completely. Also
# `?password=...`, which libpq accepts.
_USERINFO_PASSWORD = re.compile(r"^(?P<head>(?:[^:/?#]+://)?[^:@/?#]*:)[^/?#]+@")
_QUERY_PASSWORD = re.compile(r"(?P<head>[?&]password=)[^&#]*", re.IGNORECASE)


def redact(url: str | URL) -> str:
    """The URL as text with its password replaced by `***`, safe for logs and messages.

    Works on any string, even one that is not a valid URL, so error messages can use it.
    """
    text = _render(url) if isinstance(url, URL) else str(url)
    text = _USERINFO_PASSWORD.sub(r"\g<head>***@", text)
    return _QUERY_PASSWORD.sub(r"\g<head>***", text)


def parse_database_url(url: str) -> URL:
    """Parse a PostgreSQL URL in any accepted spelling; `ValueError` (password-free) otherwise."""
    try:
        parsed = make_url(url)
    except Exception:
        # SQLAlchemy's message repeats the whole URL, password included: never chain it.
        raise ValueError(f"not a valid database URL: {redact(url)!r}") from None
    if parsed.drivername not in ACCEPTED_SCHEMES:
        schemes = ", ".join(f"{scheme}://" for scheme in ACCEPTED_SCHEMES)
        raise ValueError(
            f"unsupported database URL scheme {parsed.drivername!r} in {redact(url)!r}; "
            f"use one of {schemes}"
        )
    return parsed


def url_for(url: str | URL, driver: Driver) -> str:
    """The URL string `driver` expects, from a URL in any accepted spelling.

    `psycopg2`, `asyncpg`, `psycopg`: SQLAlchemy URLs (`postgresql+<driver>://`).
    `libpq`: a plain `postgresql://` URI for psql, `psycopg.connect`, `psycopg_pool` and
    `asyncpg.connect`/`create_pool`. A Unix socket stays in the `?host=/dir` query parameter,
    which libpq, raw asyncpg and SQLAlchemy's asyncpg dialect all read.
    """
    parsed = parse_database_url(url) if isinstance(url, str) else url
    if parsed.drivername not in ACCEPTED_SCHEMES:
        raise ValueError(f"unsupported database URL scheme {parsed.drivername!r}")
    if driver not in _SCHEME_FOR_DRIVER:
        raise ValueError(f"unknown driver {driver!r}; use one of {', '.join(_SCHEME_FOR_DRIVER)}")

    # TLS is `sslmode=` for libpq and psycopg, but `ssl=` for SQLAlchemy's asyncpg dialect
    # (it passes query parameters to asyncpg.connect() as keyword arguments).
    query = dict(parsed.query)
    if driver == "asyncpg":
        if "sslmode" in query:
            query["ssl"] = query.pop("sslmode")
    elif "ssl" in query and "sslmode" not in query:
        query["sslmode"] = query.pop("ssl")

    return _render(parsed._replace(drivername=_SCHEME_FOR_DRIVER[driver], query=query))


def _render(url: URL) -> str:
    """`url` as text that libpq, asyncpg and SQLAlchemy all read back to the same parts.

    Not `URL.render_as_string()`: it leaves spaces unescaped in user names and passwords,
    which libpq rejects.
    """
    text = f"{url.drivername}://"
    if url.username is not None:
        text += quote(url.username, safe="")
        if url.password:  # `user:@host` (empty password) means no password: `user@host`
            text += ":" + quote(str(url.password), safe="")
        text += "@"
    if url.host:
        text += f"[{url.host}]" if ":" in url.host else url.host
    if url.port is not None:
        text += f":{url.port}"
    if url.database is not None:
        text += "/" + quote(url.database, safe="")
    if url.query:
        # Keep `/` readable (`?host=/run/postgresql`, not `%2Frun%2F...`): users copy these
        # URLs into psql. Every consumer decodes percent-escapes either way.
        text += "?" + urlencode(url.query, doseq=True, safe="/", quote_via=quote)
    return text


def hide_password(text: str, url: str | URL) -> str:
    """`text` (say, a driver's error message) with `url`'s password replaced by `***`."""
    try:
        password = (parse_database_url(url) if isinstance(url, str) else url).password
    except ValueError:
        password = None
    if password:
        for spelling in {password, quote(password, safe="")}:
            text = text.replace(spelling, "***")
    return text


def with_database(url: str | URL, database: str) -> str:
    """The libpq URL of another database on the same server as `url`."""
    parsed = parse_database_url(url) if isinstance(url, str) else url
    return url_for(parsed.set(database=database), "libpq")
