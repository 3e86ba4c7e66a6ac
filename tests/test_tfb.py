"""The TechEmpower Framework Benchmarks test types, verified on every stack to the published
rules, with the statements each request runs counted by PostgreSQL itself
(`pg_stat_statements`), so no code path can skip or fake a query."""

from __future__ import annotations

import json
from collections.abc import Iterator
from html.parser import HTMLParser

import psycopg
import pytest
from fastapi.testclient import TestClient

from pgarena.database.techempower import FORTUNES
from pgarena.service.app import create_app
from pgarena.service.stacks import STACKS
from pgarena.settings import Settings

EXTRA_FORTUNE = "Additional fortune added at request time."


@pytest.fixture(params=list(STACKS))
def stack(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def client(settings: Settings, stack: str) -> Iterator[TestClient]:
    with TestClient(create_app(settings.model_copy(update={"stack": stack}))) as client:
        yield client


class StatementCounter:
    """Counts statements run in one database, as `pg_stat_statements` records them."""

    def __init__(self, database_url: str) -> None:
        self.connection = psycopg.connect(database_url, autocommit=True)
        try:
            self.connection.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
            self.connection.execute("SELECT 1 FROM pg_stat_statements LIMIT 1")
        except psycopg.Error as error:
            self.connection.close()
            pytest.skip(f"pg_stat_statements is not loaded on this server: {error}")

    def calls(self, pattern: str) -> int:
        """Executions so far of statements in this database whose text matches `pattern`."""
        row = self.connection.execute(
            "SELECT coalesce(sum(calls), 0)::int FROM pg_stat_statements"
            " WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())"
            " AND query ~* %s",
            (pattern,),
        ).fetchone()
        assert row is not None
        return row[0]

    def close(self) -> None:
        self.connection.close()


SELECT_WORLD = r"^\s*select\y.*\yfrom\s+world\y"
UPDATE_WORLD = r"^\s*update\s+world\y"


@pytest.fixture
def statements(database_url: str) -> Iterator[StatementCounter]:
    counter = StatementCounter(database_url)
    yield counter
    counter.close()


def world_table(database_url: str) -> dict[int, int]:
    with psycopg.connect(database_url) as connection:
        return dict(connection.execute("SELECT id, randomnumber FROM world").fetchall())


def assert_world_rows(rows: object, count: int) -> None:
    assert isinstance(rows, list)
    assert len(rows) == count
    for row in rows:
        assert set(row) == {"id", "randomNumber"}
        assert 1 <= row["id"] <= 10_000
        assert 1 <= row["randomNumber"] <= 10_000


def test_json_is_hello_world_on_every_stack(client: TestClient) -> None:
    response = client.get("/json")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert int(response.headers["content-length"]) == len(response.content)
    assert json.loads(response.content) == {"message": "Hello, World!"}


def test_plaintext_is_hello_world_on_every_stack(client: TestClient) -> None:
    response = client.get("/plaintext")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert int(response.headers["content-length"]) == len(response.content)
    assert response.content == b"Hello, World!"


def test_db_returns_one_random_row_with_one_select(
    client: TestClient, statements: StatementCounter, database_url: str
) -> None:
    table = world_table(database_url)
    before = statements.calls(SELECT_WORLD)
    response = client.get("/db")
    assert statements.calls(SELECT_WORLD) - before == 1
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert int(response.headers["content-length"]) == len(response.content)
    row = response.json()
    assert set(row) == {"id", "randomNumber"}
    assert table[row["id"]] == row["randomNumber"]
    # Random rows: twenty requests do not all hit the same one.
    assert len({client.get("/db").json()["id"] for _ in range(20)}) > 1


def test_queries_runs_exactly_one_select_per_row(
    client: TestClient, statements: StatementCounter, database_url: str
) -> None:
    table = world_table(database_url)
    before = statements.calls(SELECT_WORLD)
    response = client.get("/queries?queries=20")
    assert statements.calls(SELECT_WORLD) - before == 20
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    rows = response.json()
    assert_world_rows(rows, 20)
    assert all(table[row["id"]] == row["randomNumber"] for row in rows)


# (query string, rows expected): missing, empty, not an integer or < 1 -> 1; > 500 -> 500.
QUERY_COUNTS = [
    ("", 1),
    ("?queries=", 1),
    ("?queries=foo", 1),
    ("?queries=0", 1),
    ("?queries=-3", 1),
    ("?queries=2.5", 1),
    ("?queries=1", 1),
    ("?queries=7", 7),
    ("?queries=500", 500),
    ("?queries=501", 500),
    ("?queries=100000", 500),
]


def test_queries_count_is_parsed_leniently_and_always_gives_an_array(client: TestClient) -> None:
    for query, expected in QUERY_COUNTS:
        response = client.get(f"/queries{query}")
        assert response.status_code == 200, query
        assert_world_rows(response.json(), expected)


def test_updates_count_is_parsed_like_queries(client: TestClient) -> None:
    for query, expected in [("", 1), ("?queries=abc", 1), ("?queries=0", 1), ("?queries=3", 3)]:
        response = client.get(f"/updates{query}")
        assert response.status_code == 200, query
        assert_world_rows(response.json(), expected)


def test_updates_changes_the_rows_it_read_and_returns_what_it_stored(
    client: TestClient, statements: StatementCounter, database_url: str
) -> None:
    before_table = world_table(database_url)
    selects_before, updates_before = statements.calls(SELECT_WORLD), statements.calls(UPDATE_WORLD)
    response = client.get("/updates?queries=500")
    selects = statements.calls(SELECT_WORLD) - selects_before
    updates = statements.calls(UPDATE_WORLD) - updates_before
    after_table = world_table(database_url)

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    rows = response.json()
    assert_world_rows(rows, 500)
    ids = [row["id"] for row in rows]
    assert len(set(ids)) == 500
    assert selects == 500  # each row read by its own statement
    assert 1 <= updates <= 500  # written one by one or batched, never more
    # What the response says is what the table now holds...
    assert all(after_table[row["id"]] == row["randomNumber"] for row in rows)
    # ...more than 95% of the rows read really changed, and no other row did.
    changed = {i for i in after_table if after_table[i] != before_table[i]}
    assert changed <= set(ids)
    assert len(changed) > 475


class FortuneTable(HTMLParser):
    """The text of each cell of each `<tr>` row that has `<td>` cells."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self.title = ""
        self._cell: list[str] | None = None
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "tr":
            self.rows.append([])
        elif tag == "td":
            self._cell = []
        elif tag == "title":
            self._in_title = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "td" and self._cell is not None:
            self.rows[-1].append("".join(self._cell))
            self._cell = None
        elif tag == "title":
            self._in_title = False

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)
        elif self._in_title:
            self.title += data


def test_fortunes_page_lists_thirteen_escaped_fortunes_sorted_by_message(
    client: TestClient, statements: StatementCounter
) -> None:
    before = statements.calls(r"^\s*select\y.*\yfrom\s+fortune\y")
    response = client.get("/fortunes")
    assert statements.calls(r"^\s*select\y.*\yfrom\s+fortune\y") - before == 1
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert int(response.headers["content-length"]) == len(response.content)
    page = response.content.decode("utf-8")
    assert page.lstrip().lower().startswith("<!doctype html>")

    table = FortuneTable()
    table.feed(page)
    assert table.title == "Fortunes"
    rows = [row for row in table.rows if row]
    expected = sorted(
        [(str(i), message) for i, message in enumerate(FORTUNES, start=1)] + [("0", EXTRA_FORTUNE)],
        key=lambda row: row[1],
    )
    assert [tuple(row) for row in rows] == expected
    assert len(rows) == 13
    # The script row arrives as text, not as markup; the Japanese row survives intact.
    assert "<script>" not in page
    assert "&lt;script&gt;alert(" in page
    assert "フレームワークのベンチマーク" in page


def test_fortunes_sort_by_code_point_puts_markup_first_and_japanese_last(
    client: TestClient,
) -> None:
    table = FortuneTable()
    table.feed(client.get("/fortunes").text)
    messages = [row[1] for row in table.rows if row]
    # "<" sorts before letters, "A b" before "Ad", lower case after upper, kana after all.
    assert messages[0].startswith("<script>alert(")
    assert messages[1] == "A bad random number generator: 1, 1, 1, 1, 1, 4.33e+67, 1, 1, 1"
    assert messages[5] == EXTRA_FORTUNE
    assert messages[-2] == "fortune: No such file or directory"
    assert messages[-1] == "フレームワークのベンチマーク"
