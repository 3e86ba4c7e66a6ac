"""PostgreSQL URLs: accept every common spelling, hand each consumer the one it needs.

People write `postgresql://`, `postgres://`, `postgresql+asyncpg://`, `postgresql+psycopg2://`
or `postgresql+psycopg://`, and each consumer wants its own: SQLAlchemy needs the driver in the
scheme, while psql, psycopg, psycopg_pool and raw asyncpg want a plain libpq URI. Seed 002
converted with `url.replace("+asyncpg", "")`, which breaks on every other spelling; this module
parses once and renders for the target, so a Unix-socket URL
(`postgresql://user@/db?host=/run/postgresql`) and a password with `@` or `/` in it survive.
"""

from __future__ import annotations

import contextlib
import re
from typing import Literal
from urllib.parse import quote, unquote, urlencode

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

# libpq also takes the password as a query parameter: `?password=...`.
_QUERY_PASSWORD = re.compile(r"(?P<head>[?&]password=)[^&#]*", re.IGNORECASE)
_ESCAPE = re.compile(r"%[0-9A-Fa-f]{2}")


def split_password(url: str) -> tuple[str, str | None, str]:
    """`url` cut around its password: `(text before it, password as written, text after)`.

    Users paste URLs with generated passwords that nobody escaped: `/`, `#`, `?`, `@` and `%`
    all occur in base64 or password-manager output. A generic URL parser stops the user info
    at the first `@` and the authority at the first `/`, `?` or `#`, so part of such a
    password becomes a host name or a path, and ends up printed in a message. The rule here
    is the one a human reads: the password runs from the first `:` after the user name to the
    *last* `@` of the URL (a host, port, database or query never holds an unescaped `@`).
    Works on any text, scheme or not; `None` when there is no password in the user info.
    """
    scheme_end = url.find("://")
    start = scheme_end + 3 if scheme_end >= 0 else 0
    at = url.rfind("@")
    if at < start:
        return url, None, ""
    colon = url.find(":", start, at)
    if colon < 0:
        return url, None, ""
    return url[: colon + 1], url[colon + 1 : at], url[at:]


def _unescape(password: str) -> str:
    """The password a URL means: percent-escapes decoded when the text is a valid escaping,
    else the text as pasted (`p%ss` is not an escape, and `ab%cd` decodes to no UTF-8)."""
    if "%" not in password or "%" in _ESCAPE.sub("", password):
        return password
    try:
        return unquote(password, errors="strict")
    except UnicodeDecodeError:
        return password


def redact(url: str | URL) -> str:
    """The URL as text with its password replaced by `***`, safe for logs and messages.

    Works on any string, even one that is not a valid URL, so error messages can use it.
    """
    text = _render(url) if isinstance(url, URL) else str(url)
    head, password, tail = split_password(text)
    if password:
        text = head + "***" + tail
    return _QUERY_PASSWORD.sub(r"\g<head>***", text)


def parse_database_url(url: str) -> URL:
    """Parse a PostgreSQL URL in any accepted spelling; `ValueError` (password-free) otherwise.

    The password is cut out first (see `split_password`), so whatever it holds it can only
    become the password, never part of the host or the database.
    """
    head, password, tail = split_password(url)
    try:
        parsed = make_url(head[:-1] + tail if password is not None else url)
        if password:
            parsed = parsed.set(password=_unescape(password))
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
    """`text` (say, a driver's error message) with `url`'s password replaced by `***`, in
    every spelling it may take there: as pasted, decoded, or percent-escaped."""
    spellings: set[str] = set()
    if isinstance(url, URL):
        password = url.password
    else:
        password = split_password(url)[1]
        if password:
            spellings.add(password)
        with contextlib.suppress(ValueError):
            password = parse_database_url(url).password
    if password:
        spellings |= {str(password), quote(str(password), safe=""), quote(str(password))}
    for spelling in sorted(spellings, key=len, reverse=True):  # longest first: no tail left
        if spelling:
            text = text.replace(spelling, "***")
    return redact(text) if "://" in text else text


def with_database(url: str | URL, database: str) -> str:
    """The libpq URL of another database on the same server as `url`."""
    parsed = parse_database_url(url) if isinstance(url, str) else url
    return url_for(parsed.set(database=database), "libpq")
