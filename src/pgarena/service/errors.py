"""HTTP errors of the service, and the translation of database errors into them.

Every stack raises these and nothing else on purpose; whatever the driver says stays in the
server log. A response body never carries a driver message, SQL, a constraint name or a
traceback (the seeds' `HTTPException(400, detail=str(e))` is what this module replaces).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import NoReturn

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import HTTPException, RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger("pgarena.service")


class NotFound(HTTPException):
    def __init__(self, what: str) -> None:
        super().__init__(status_code=404, detail=f"{what} not found")


class Conflict(HTTPException):
    def __init__(self, detail: str) -> None:
        super().__init__(status_code=409, detail=detail)


# Constraint names are fixed by the naming convention in `models.py`.
_CONSTRAINT_ERRORS: dict[str, tuple[int, str]] = {
    "users_username_key": (409, "Username already taken"),
    "users_email_key": (409, "Email already taken"),
    "products_sku_key": (409, "SKU already taken"),
    # Only reachable when a row disappears between our existence check and the insert.
    "orders_user_id_fkey": (404, "User not found"),
    "orders_product_id_fkey": (404, "Product not found"),
}


def constraint_name(error: BaseException) -> str | None:
    """The violated constraint's name, whichever driver raised `error`.

    psycopg2 and psycopg 3 expose it as `.diag.constraint_name`, asyncpg as
    `.constraint_name`; SQLAlchemy wraps both (`.orig`, and `__cause__` for asyncpg).
    """
    seen: BaseException | None = error
    while seen is not None:
        name = getattr(getattr(seen, "diag", None), "constraint_name", None)
        name = name or getattr(seen, "constraint_name", None)
        if name:
            return str(name)
        seen = getattr(seen, "orig", None) or seen.__cause__
    return None


def raise_for_constraint(error: BaseException) -> NoReturn:
    """Re-raise an integrity error as the HTTP error its constraint stands for."""
    known = _CONSTRAINT_ERRORS.get(constraint_name(error) or "")
    if known is None:
        raise error
    status_code, detail = known
    raise HTTPException(status_code, detail) from None


# Seconds a client is asked to wait before retrying a 503: long enough for a pool to free a
# connection or PostgreSQL to come back from a restart, short enough not to matter.
RETRY_AFTER_S = 1

# Which database errors mean "unavailable" (503, retry later) and which are bugs (500). The
# SQLSTATE decides whenever the error carries one, whatever the driver:
#
#   class  meaning                                   examples
#   08     connection exception                      08006 connection failure, 08003 gone
#   53     insufficient resources                    53300 too many connections, 53200 OOM
#   57     operator intervention                     57014 statement timeout or cancel,
#                                                    57P01 admin shutdown, 57P03 starting up
#   58     system error (outside PostgreSQL)         58030 I/O error
#
# Any other SQLSTATE (42601 syntax error, 22P02 bad input, 23505 unique violation...) is a bug
# or a client error and is never hidden behind a 503. Errors without a SQLSTATE are the
# driver's own; these mean unavailable:
#
#   driver      error                                            raised when
#   any         OSError (ConnectionRefusedError, TimeoutError)   socket refused, reset, timed out
#   SQLAlchemy  TimeoutError                                     pool wait over `pool_timeout`
#   SQLAlchemy  DBAPIError with connection_invalidated           the dialect saw a disconnect
#   psycopg(2)  OperationalError without SQLSTATE, or a          "server closed the connection",
#               subclass (psycopg's ConnectionTimeout)           "connection timeout expired"
#   psycopg     psycopg_pool.PoolTimeout                         pool wait over `pool_timeout`
#   asyncpg     ConnectionDoesNotExistError, InterfaceError      the connection was lost, or a
#               "connection is closed", InternalClientError      cancelled operation left it
#                                                                unusable ("cannot switch to
#                                                                state 12"); the pool drops it
#
# SQLAlchemy wraps the driver's error (`.orig`), and its asyncpg dialect wraps asyncpg's
# (`__cause__`), so the whole chain is read, outermost first.
UNAVAILABLE_SQLSTATE_CLASSES = ("08", "53", "57", "58")
_UNAVAILABLE_CLASS_NAMES = {
    "TimeoutError",  # SQLAlchemy's pool, asyncio's and the built-in one
    "PoolTimeout",  # psycopg_pool
    "ConnectionDoesNotExistError",  # asyncpg
    "InternalClientError",  # asyncpg
}


def sqlstate(error: BaseException) -> str | None:
    """The SQLSTATE of one error: asyncpg and psycopg 3 say `sqlstate`, psycopg2 `pgcode`."""
    code = getattr(error, "sqlstate", None) or getattr(error, "pgcode", None)
    return code if isinstance(code, str) and len(code) == 5 else None


def _chain(error: BaseException) -> list[BaseException]:
    chain: list[BaseException] = []
    seen: BaseException | None = error
    while seen is not None and seen not in chain:
        chain.append(seen)
        seen = getattr(seen, "orig", None) or seen.__cause__
    return chain


def is_unavailable(error: BaseException) -> bool:
    """Whether `error` means the database cannot serve now (503) rather than a bug (500)."""
    chain = _chain(error)
    for link in chain:
        code = sqlstate(link)
        if code is not None:  # PostgreSQL said why: that settles it
            return code.startswith(UNAVAILABLE_SQLSTATE_CLASSES)
    for link in chain:
        name = type(link).__name__
        if isinstance(link, OSError) or name in _UNAVAILABLE_CLASS_NAMES:
            return True
        if getattr(link, "connection_invalidated", False):
            return True
        if any(
            kind.__name__ == "OperationalError" and kind.__module__.startswith("psycopg")
            for kind in type(link).__mro__
        ):
            return True
        if name == "InterfaceError" and "connection is closed" in str(link):
            return True
    return False


def unavailable_response(detail: str = "Database unavailable") -> JSONResponse:
    """503 with Retry-After: the one answer for every fault the client may retry."""
    return JSONResponse(
        {"detail": detail}, status_code=503, headers={"Retry-After": str(RETRY_AFTER_S)}
    )


def install_unavailable_handler(app: FastAPI, errors: tuple[type[BaseException], ...]) -> None:
    """Answer 503 when the database cannot serve, instead of a 500 with driver text.

    `errors` are the classes a stack's driver raises (its `UNAVAILABLE`); `is_unavailable`
    decides, by SQLSTATE, which of them are faults to retry. The others are re-raised and
    become a plain 500, logged with their traceback: a bug must not look like an outage.
    """

    async def database_error(request: Request, error: Exception) -> JSONResponse:
        if not is_unavailable(error):
            raise error
        log.warning("database unavailable on %s: %s", request.url.path, type(error).__name__)
        return unavailable_response()

    for error in errors:
        app.add_exception_handler(error, database_error)


async def invalid_request(request: Request, error: Exception) -> Response:
    """422 with FastAPI's usual body, written as ASCII JSON.

    The body echoes the offending input, and an unpaired surrogate ("\\ud800") cannot be
    encoded as UTF-8: FastAPI's own handler fails on it with a 500. As an escape it is valid
    JSON, and every other character reads the same to a JSON parser.
    """
    assert isinstance(error, RequestValidationError)
    body = {"detail": jsonable_encoder(error.errors())}
    text = json.dumps(body, ensure_ascii=True, allow_nan=False, separators=(",", ":"))
    return Response(text, status_code=422, media_type="application/json")


def install_invalid_request_handler(
    app: FastAPI, allowed_methods: Callable[[str], list[str]]
) -> None:
    """422s in ASCII JSON (`invalid_request`), and 405s whose `Allow` lists every method the
    path serves (`allowed_methods`), not only those of the first route that matched."""
    app.add_exception_handler(RequestValidationError, invalid_request)

    async def http_error(request: Request, error: Exception) -> Response:
        assert isinstance(error, StarletteHTTPException)
        if error.status_code == 405 and (methods := allowed_methods(request.url.path)):
            error.headers = {**(error.headers or {}), "Allow": ", ".join(methods)}
        return await http_exception_handler(request, error)

    app.add_exception_handler(StarletteHTTPException, http_error)
