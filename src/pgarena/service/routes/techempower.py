"""The TechEmpower Framework Benchmarks test types: the rules every stack shares.

`/json` and `/plaintext` live here, in one router for every stack, as `async def`: they
touch no database, so there is nothing stack-specific in them to measure, and a `def`
version would only add a thread-pool hop that says nothing about the stack. They measure the
server and the framework, which is what TechEmpower uses them for.

The four database types (`/db`, `/queries`, `/updates`, `/fortunes`) are declared per style,
in `sync_api` and `async_api`; what they share (parsing `queries`, drawing random ids,
serialising, the fortunes page) is here, so those routes are one line each.

For speed the database types build their responses themselves: rows go straight from the
driver to pydantic-core's Rust JSON encoder, with no response-model validation pass.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from operator import itemgetter

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, PlainTextResponse, Response
from jinja2 import Environment, PackageLoader
from pydantic_core import to_json

from pgarena.database.techempower import (
    EXTRA_FORTUNE_MESSAGE,
    HELLO_WORLD,
    MAX_QUERIES,
    MIN_QUERIES,
    WORLD_ROWS,
)
from pgarena.service.schemas import FortunePublic, WorldPublic

EXTRA_FORTUNE: FortunePublic = {"id": 0, "message": EXTRA_FORTUNE_MESSAGE}
_PLAINTEXT = HELLO_WORLD.encode()  # encoded once, not per request

router = APIRouter(tags=["techempower"])

# Autoescape: the fortune table holds a <script> row that must come out as text.
_templates = Environment(
    loader=PackageLoader("pgarena.service"), autoescape=True, trim_blocks=True, lstrip_blocks=True
)
# The template reads `fortune["message"]`, not `fortune.message`: a row is a dict, and for a dot
# Jinja tries the attribute first, raising and catching an AttributeError per field (26 per
# page, 30% of its rendering time).
_fortunes_template = _templates.get_template("fortunes.html")


@router.get("/json")
async def json_serialization() -> Response:
    """`{"message": "Hello, World!"}`, serialised anew for every request (as the rules ask)."""
    return Response(to_json({"message": HELLO_WORLD}), media_type="application/json")


@router.get("/plaintext")
async def plaintext() -> PlainTextResponse:
    """`Hello, World!` as text/plain."""
    return PlainTextResponse(_PLAINTEXT)


def query_count(queries: str | None) -> int:
    """The `queries` parameter by the rules: missing, not an integer or < 1 -> 1; > 500 -> 500."""
    try:
        count = int(queries)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return MIN_QUERIES
    return min(max(count, MIN_QUERIES), MAX_QUERIES)


def random_id() -> int:
    return random.randint(1, WORLD_ROWS)


def random_ids(queries: str | None) -> list[int]:
    """Distinct random world ids, as many as `queries` asks for.

    Distinct, so no row is fetched twice (an ORM's identity map would answer the second
    fetch without a statement) and no row is updated twice in one batch.
    """
    return random.sample(range(1, WORLD_ROWS + 1), query_count(queries))


def new_random_numbers(queries: str | None) -> dict[int, int]:
    """Random world ids mapped to the new random numbers `/updates` will store."""
    return {world_id: random_id() for world_id in random_ids(queries)}


def json_response(body: WorldPublic | Sequence[WorldPublic]) -> Response:
    return Response(to_json(body), media_type="application/json")


def fortunes_page(fortunes: list[FortunePublic]) -> HTMLResponse:
    """The fortunes, plus one added at request time, sorted by message, as an HTML table."""
    fortunes.append(EXTRA_FORTUNE)
    fortunes.sort(key=itemgetter("message"))
    return HTMLResponse(_fortunes_template.render(fortunes=fortunes))
