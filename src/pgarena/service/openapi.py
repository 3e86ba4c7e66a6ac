"""Every status a route can answer, in the OpenAPI document, by rule rather than by hand.

FastAPI documents 200 and, for routes with parameters, 422. The rest follow from the API's
shape, so they are added here once instead of on each of the routes of both styles:

| status | when | routes |
|---|---|---|
| 404 | an id names nothing | every route with an id in its path; `POST /orders/` (its user or product) |
| 409 | a username, email or SKU is taken; a sold product is deleted | `POST`/`PUT` of users and products, `DELETE /products/{id}` |
| 413 | the body is over `max_body_bytes` | every route (a GET may carry a body too) |
| 503 | the database cannot serve, a wait or the deadline ran out (`limits.py`) | every route that uses the database |
"""  # noqa: E501

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI

from pgarena.service.schemas import ErrorMessage

_NO_DATABASE = {"/json", "/plaintext"}
_ERROR = {"$ref": "#/components/schemas/ErrorMessage"}
# What a route's own declaration cannot say: `/plaintext` answers text, not JSON.
_CONTENT = {"/plaintext": {"text/plain": {"schema": {"type": "string"}}}}


def statuses(method: str, path: str) -> dict[str, str]:
    """The error statuses a route can answer beyond FastAPI's own, with what they mean."""
    found = {"413": "Request body too large"}
    if method in ("post", "put"):
        found["400"] = "The body is not JSON"
    if path not in _NO_DATABASE:
        found["503"] = "Database unavailable, or busy past the waits' bounds; see Retry-After"
    if "{" in path or (method, path) == ("post", "/orders/"):
        found["404"] = "Not found"
    if (
        method in ("post", "put")
        and path.startswith(("/users/", "/products/"))
        and not path.endswith("/orders")
    ) or (method, path) == ("delete", "/products/{product_id}"):
        found["409"] = "Conflict: taken, or still referenced"
    return found


def document_responses(app: FastAPI) -> None:
    """Complete the app's OpenAPI document with `statuses()`, when it is first built.

    Done on the document rather than on the routes: the routes belong to module-level
    routers, shared by every app built in a process (`app.add_routes`).
    """
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        document = build()
        document.setdefault("components", {}).setdefault("schemas", {})["ErrorMessage"] = (
            ErrorMessage.model_json_schema()
        )
        for path, operations in document["paths"].items():
            for method, operation in operations.items():
                responses = operation.setdefault("responses", {})
                for status, description in statuses(method, path).items():
                    responses.setdefault(
                        status,
                        {"description": description,
                         "content": {"application/json": {"schema": _ERROR}}},
                    )  # fmt: skip
                if path in _CONTENT:
                    responses["200"]["content"] = _CONTENT[path]
        return document

    app.openapi = openapi  # type: ignore[method-assign]


def allowed_methods(app: FastAPI) -> Callable[[str], list[str]]:
    """The methods a request path may use, over every route of the app.

    Starlette answers 405 with the methods of the first route whose path matches, which
    lists only GET for `/users/` although POST is served too; this looks at them all.
    """

    @functools.cache
    def templates() -> list[tuple[re.Pattern[str], set[str]]]:  # built on the first 405
        return [
            (re.compile("^" + re.sub(r"\{[^}]+\}", "[^/]+", path) + "$"), set(operations))
            for path, operations in app.openapi()["paths"].items()
        ]

    def methods(path: str) -> list[str]:
        found = {m.upper() for pattern, ms in templates() if pattern.match(path) for m in ms}
        return sorted(found)

    return methods
