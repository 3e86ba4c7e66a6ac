"""A small FastAPI app of the tests' own (not pgarena's service), for workload files.

Two routes as a typical CRUD service has them: `POST /items` needs an API key header and a
JSON body and answers the new item's id under "data"; `GET /items/{item_id}` reads it back.
`GET /heavy/health` is `/health` after real work (hashing), so that the service seen through
the prefix `/heavy` is a slower version of itself, as a change under test may be. `GET /db`
reads PostgreSQL (`TINY_APP_DATABASE_URL`) on a connection opened for the request alone, as
an app without a pool does.
Run with `uvicorn tiny_app:app` from `tests/`.
"""

from __future__ import annotations

import hashlib
import os
from itertools import count

import psycopg
from fastapi import FastAPI, Header, HTTPException
from pydantic import BaseModel

API_KEY = "secret-key"

app = FastAPI()
_items: dict[int, dict[str, object]] = {}
_ids = count(1)


class NewItem(BaseModel):
    name: str
    price: float


@app.get("/health")
def health() -> dict[str, str]:
    return {"status": "ok"}


@app.get("/heavy/health")
def heavy_health() -> dict[str, str]:
    digest = b""
    for _ in range(20_000):  # a few milliseconds of CPU, against microseconds for /health
        digest = hashlib.sha256(digest).digest()
    return {"status": "ok"}


@app.get("/db")
def db() -> dict[str, int]:
    with psycopg.connect(os.environ["TINY_APP_DATABASE_URL"]) as connection:
        row = connection.execute("SELECT id, randomnumber FROM world WHERE id = 1").fetchone()
    assert row is not None
    return {"id": row[0], "randomNumber": row[1]}


@app.post("/items", status_code=201)
def create_item(item: NewItem, x_api_key: str | None = Header(default=None)) -> dict:
    if x_api_key != API_KEY:
        raise HTTPException(status_code=401, detail="missing or wrong X-Api-Key")
    item_id = next(_ids)
    _items[item_id] = {"id": item_id, "name": item.name, "price": item.price}
    return {"data": {"id": item_id}}


@app.get("/items/{item_id}")
def read_item(item_id: int) -> dict[str, object]:
    if item_id not in _items:
        raise HTTPException(status_code=404, detail="no such item")
    return _items[item_id]
