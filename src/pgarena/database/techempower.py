"""The TechEmpower Framework Benchmarks constants, defined once.

The table sizes and rows are fixed by the TFB rules, and three parts of pgarena must agree
on them: the seed that loads the tables (`database.seed`), the routes that draw ids and
render the fortunes page (`service.routes.techempower`), and the benchmark workloads that
check the responses (`bench.workloads`). This module imports nothing, so any of them, a load
generator worker included, can read it for free.
"""

from __future__ import annotations

# `world`: ids 1..WORLD_ROWS, each with a random number in the same range.
WORLD_ROWS = 10_000

# The 12 rows of the `fortune` table, ids 1..12, byte for byte as the TFB setup scripts load
# them (typos, em dashes and the XSS probe included).
FORTUNES = (
    "fortune: No such file or directory",
    "A computer scientist is someone who fixes things that aren't broken.",
    "After enough decimal places, nobody gives a damn.",
    "A bad random number generator: 1, 1, 1, 1, 1, 4.33e+67, 1, 1, 1",
    "A computer program does what you tell it to do, not what you want it to do.",
    "Emacs is a nice operating system, but I prefer UNIX. — Tom Christaensen",
    "Any program that runs right is obsolete.",
    "A list is only as strong as its weakest link. — Donald Knuth",
    "Feature: A bug with seniority.",
    "Computers make very fast, very accurate mistakes.",
    '<script>alert("This should not be displayed in a browser alert box.");</script>',
    "フレームワークのベンチマーク",
)
FORTUNE_ROWS = len(FORTUNES)

# `/fortunes` adds this row (id 0) at request time, before sorting by message.
EXTRA_FORTUNE_MESSAGE = "Additional fortune added at request time."

# `/queries` and `/updates` clamp their `queries` parameter to this range.
MIN_QUERIES = 1
MAX_QUERIES = 500

# What `/json` (as {"message": ...}) and `/plaintext` answer.
HELLO_WORLD = "Hello, World!"
