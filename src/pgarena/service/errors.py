"""HTTP errors of the service, and the translation of database errors into them.

Every stack raises these and nothing else on purpose; whatever the driver says stays in the
server log. A response body never carries a driver message, SQL, a constraint name or a
traceback (the seeds' `HTTPException(400, detail=str(e))` is what this module replaces).
"""

from __future__ import annotations

import logging
from typing import NoReturn

from fastapi import FastAPI, Request
from fastapi.exceptions import HTTPException
from fastapi.responses import JSONResponse

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


def install_unavailable_handler(app: FastAPI, errors: tuple[type[BaseException], ...]) -> None:
    """Answer 503 when the database cannot be reached, instead of a 500 with driver text."""

    async def database_unavailable(request: Request, error: Exception) -> JSONResponse:
        log.warning("database unavailable on %s: %s", request.url.path, type(error).__name__)
        return JSONResponse({"detail": "Database unavailable"}, status_code=503)

    for error in errors:
        app.add_exception_handler(error, database_unavailable)
