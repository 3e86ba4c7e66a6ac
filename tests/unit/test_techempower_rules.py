"""The TechEmpower rules every stack shares (`service.routes.techempower`), without a
database: how `queries` is parsed, which ids are drawn, how the fortunes page is built.
That each stack then runs the right statements is checked in tests/test_tfb.py."""

from __future__ import annotations

import pytest

from pgarena.database.techempower import FORTUNES, WORLD_ROWS
from pgarena.service.routes.techempower import (
    fortunes_page,
    new_random_numbers,
    query_count,
    random_ids,
)


# The `queries` parameter, as the route receives it: missing, not an integer or < 1 -> 1;
# > 500 -> 500.
@pytest.mark.parametrize(
    ("queries", "count"),
    [
        (None, 1),
        ("", 1),
        ("foo", 1),
        ("0", 1),
        ("-3", 1),
        ("2.5", 1),
        ("1", 1),
        ("7", 7),
        ("500", 500),
        ("501", 500),
        ("100000", 500),
    ],
)
def test_query_count_is_parsed_leniently_and_clamped_to_1_to_500(
    queries: str | None, count: int
) -> None:
    assert query_count(queries) == count


def test_random_ids_are_distinct_world_ids_as_many_as_asked() -> None:
    ids = random_ids("500")
    assert len(ids) == len(set(ids)) == 500
    assert all(1 <= world_id <= 10_000 for world_id in ids)
    assert WORLD_ROWS == 10_000  # fixed by the TFB rules


def test_new_random_numbers_give_each_drawn_row_a_number_in_range() -> None:
    numbers = new_random_numbers("20")
    assert len(numbers) == 20
    assert all(1 <= value <= 10_000 for value in numbers.values())


def test_fortunes_page_adds_one_fortune_sorts_by_code_point_and_escapes() -> None:
    fortunes = [{"id": i, "message": message} for i, message in enumerate(FORTUNES, start=1)]
    page = fortunes_page(fortunes).body.decode()  # type: ignore[arg-type]
    assert len(FORTUNES) == 12
    assert page.count("<tr>") == 14  # the header and 13 fortunes
    added = page.index("Additional fortune added at request time.")
    # "<" sorts before letters, lower case after upper, kana after all.
    assert page.index("&lt;script&gt;alert(") < added < page.index("fortune: No such file")
    assert page.index("fortune: No such file") < page.index("フレームワークのベンチマーク")
    assert "<script>" not in page
