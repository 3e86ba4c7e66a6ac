"""How the reports write a measured figure: about three significant digits, the same on
either side of a round number."""

from __future__ import annotations

import pytest

from pgarena.report.formatting import number


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (12_345.6, "12,346"),
        (123.4, "123"),
        (12.34, "12.3"),
        (1.234, "1.23"),
        (0.1234, "0.12"),
        (0.01234, "0.012"),
        # One statement per request measured as 0.9996 or 1.0004 reads the same.
        (0.9996, "1.00"),
        (1.0004, "1.00"),
        (None, "\N{EN DASH}"),  # not measured
    ],
)
def test_a_figure_has_about_three_significant_digits(value: float | None, text: str) -> None:
    assert number(value) == text
