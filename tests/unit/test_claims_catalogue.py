"""The claims catalogue: it loads, quotes its seeds faithfully, misses no number, and says
plainly what is wrong with a malformed entry."""

from __future__ import annotations

from pathlib import Path

import pytest

from pgarena.claims.catalogue import Claim, load_catalogue, parse_catalogue
from pgarena.errors import UserError

# Copies of the seed documents (../shared/seeds/) the catalogue quotes.
SEEDS = Path(__file__).parent / "data" / "seeds"

# Every number in the seeds that compares sync with async, or one driver with another, as it
# is written there, with the claim that catalogues it. Written by reading the seeds, not by
# reading the catalogue: a number missing from the catalogue fails below. Left out on purpose,
# because they compare nothing: seed 001's "~100ms per DB call", "typically 10-100 threads"
# (conditions), and the code of seed 000-004.
SEED_NUMBERS: list[tuple[str, str, str]] = [
    # seed 000: the performance comparison table and the load-test comments
    ("000", "~1,000/sec", "seed000-rps-10x"),
    ("000", "~10,000/sec", "seed000-rps-10x"),
    ("000", "10x", "seed000-rps-10x"),
    ("000", "30-50% less", "seed000-memory-30-50pct"),
    ("000", "~100ms", "seed000-p99-10x"),
    ("000", "~10ms", "seed000-p99-10x"),
    ("000", "10x faster", "seed000-p99-10x"),
    ("000", "around 100 concurrent", "seed000-sync-fails-at-100"),
    ("000", "1000+ concurrent", "seed000-async-handles-1000"),
    # seed 001: the response-time table
    ("001", "| Single Request | 50ms | 50ms", "seed001-table-1-ratio"),
    ("001", "| Single Request | 50ms", "seed001-table-1-sync"),
    ("001", "50ms | 50ms", "seed001-table-1-async"),
    ("001", "8.3x faster", "seed001-table-10-ratio"),
    ("001", "500ms", "seed001-table-10-sync"),
    ("001", "60ms", "seed001-table-10-async"),
    ("001", "50x faster", "seed001-table-100-ratio"),
    ("001", "5000ms", "seed001-table-100-sync"),
    ("001", "| 100ms", "seed001-table-100-async"),
    ("001", "Timeout/Error", "seed001-table-1000-sync"),
    ("001", "200ms", "seed001-table-1000-async"),
    # seed 001: the load-testing results
    ("001", "50 concurrent users: 2.5s", "seed001-load-50-sync"),
    ("001", "100 concurrent users: 8.2s", "seed001-load-100-sync"),
    ("001", "200 concurrent users: Timeouts/Failures", "seed001-load-200-sync"),
    ("001", "50 concurrent users: 0.1s", "seed001-load-50-async"),
    ("001", "100 concurrent users: 0.2s", "seed001-load-100-async"),
    ("001", "200 concurrent users: 0.4s", "seed001-load-200-async"),
    ("001", "1000 concurrent users: 1.2s", "seed001-load-1000-async"),
    ("001", "0.1s", "seed001-load-50-ratio"),
    ("001", "0.2s", "seed001-load-100-ratio"),
    # seed 001: memory, capacity and the conclusion
    ("001", "~800MB", "seed001-memory-sync-800mb"),
    ("001", "~50MB", "seed001-memory-async-50mb"),
    ("001", "~50MB RAM", "seed001-memory-800-vs-50"),
    ("001", "90% reduction", "seed001-memory-90pct"),
    ("001", "~8MB", "seed001-8mb-per-thread"),
    ("001", "8-50x", "seed001-8-50x-concurrency"),
    ("001", "~1000+ concurrent users", "seed001-capacity-100-vs-1000"),
    # seed 003: asyncpg vs psycopg2
    ("003", "| Simple SELECT | 1.0x | 3x", "seed003-simple-select-3x"),
    ("003", "| Bulk INSERT | 1.0x | 5x", "seed003-bulk-insert-5x"),
    ("003", "| Complex JOIN | 1.0x | 4x", "seed003-complex-join-4x"),
    ("003", "| Concurrent queries | 1.0x | 10x", "seed003-concurrent-queries-10x"),
    ("003", "10x more concurrent requests", "seed003-10x-more-concurrent-requests"),
    ("003", "3-10x faster", "seed003-3-10x-faster-operations"),
    ("003", "10x better concurrency", "seed003-10x-better-concurrency"),
    # seed 004: standard benchmark (asyncpg ops/s, psycopg2 ops/s, diff)
    ("004", "3801.29 | 3451.66 | +10.13%", "seed004-standard-10"),
    ("004", "5328.41 | 4602.99 | +15.76%", "seed004-standard-50"),
    ("004", "5236.95 | 5140.69 | +1.87%", "seed004-standard-100"),
    ("004", "5229.45 | 5106.91 | +2.40%", "seed004-standard-500"),
    ("004", "5189.18 | 5236.20 | -0.90%", "seed004-standard-1000"),
    ("004", "5202.93 | 5167.63 | +0.68%", "seed004-standard-2000"),
    ("004", "4881.89 | 5238.65 | -6.81%", "seed004-standard-5000"),
    ("004", "4899.33 | 5368.84 | -8.75%", "seed004-standard-10000"),
    ("004", "5091.14 | 5196.03 | -2.02%", "seed004-standard-20000"),
    ("004", "5180.29 | 5113.43 | +1.31%", "seed004-standard-50000"),
    # seed 004: mixed benchmark
    ("004", "1369.80 | 1696.97 | -19.28%", "seed004-mixed-10"),
    ("004", "2116.49 | 2025.60 | +4.49%", "seed004-mixed-50"),
    ("004", "2175.55 | 2071.04 | +5.05%", "seed004-mixed-100"),
    ("004", "1945.09 | 2056.38 | -5.41%", "seed004-mixed-500"),
    ("004", "2143.12 | 2137.40 | +0.27%", "seed004-mixed-1000"),
    ("004", "1994.93 | 2160.55 | -7.67%", "seed004-mixed-2000"),
    ("004", "2107.17 | 2119.35 | -0.57%", "seed004-mixed-5000"),
    ("004", "2192.66 | 2152.99 | +1.84%", "seed004-mixed-10000"),
    # seed 004: advanced benchmark (psycopg2 is each table's baseline row)
    ("004", "1,612.77 | +17.88%", "seed004-advanced-parallel"),
    ("004", "2,538.99 | +12.61%", "seed004-advanced-complex"),
    ("004", "2,400.94 | +1.95%", "seed004-advanced-concurrent"),
]


def normalise(text: str) -> str:
    """Whitespace collapsed: tables are padded with spaces that carry no meaning."""
    return " ".join(text.split())


@pytest.fixture(scope="module")
def catalogue() -> dict[str, Claim]:
    return {claim.id: claim for claim in load_catalogue()}


def seed_text(source: str) -> str:
    return normalise((SEEDS / source).read_text("utf-8"))


def test_the_packaged_catalogue_loads_with_30_claims_or_more(catalogue: dict[str, Claim]) -> None:
    assert len(catalogue) >= 30
    assert {claim.source[:3] for claim in catalogue.values()} == {"000", "001", "003", "004"}


def test_every_quote_occurs_in_its_seed(catalogue: dict[str, Claim]) -> None:
    missing = [c.id for c in catalogue.values() if normalise(c.quote) not in seed_text(c.source)]
    assert missing == []


def test_every_comparing_number_in_the_seeds_has_a_claim(catalogue: dict[str, Claim]) -> None:
    problems = []
    for seed, number, claim_id in SEED_NUMBERS:
        [source] = [path.name for path in SEEDS.glob(f"{seed}_*.txt")]
        assert normalise(number) in seed_text(source), f"{number!r} is not in seed {seed}"
        claim = catalogue.get(claim_id)
        if claim is None:
            problems.append(f"{claim_id}: not catalogued")
        elif claim.source != source:
            problems.append(f"{claim_id}: quotes {claim.source}, not seed {seed}")
        elif normalise(number) not in normalise(f"{claim.quote} {claim.note}"):
            problems.append(f"{claim_id}: neither quote nor note holds {number!r}")
    assert problems == []


def test_ratios_compare_two_stacks_and_absolute_metrics_name_one(
    catalogue: dict[str, Claim],
) -> None:
    ten_x = catalogue["seed001-table-10-ratio"]
    assert (ten_x.compare, ten_x.low, ten_x.direction) == (("sync", "async"), 0.12, "lower")
    assert ten_x.experiment.sweep == ("threads", (1, 4, 40, 100))
    assert [p.threads for p in ten_x.experiment.points()] == [1, 4, 40, 100]
    assert catalogue["seed001-table-10-sync"].stack == "sync"
    memory = catalogue["seed000-memory-30-50pct"]
    assert (memory.is_range, memory.claimed_text) == (True, "0.5-0.7")
    standard = catalogue["seed004-standard-10000"]
    assert (standard.experiment.requests, standard.experiment.concurrency) == (10000, 1)
    assert (standard.low, standard.direction) == (pytest.approx(1 - 0.0875), "lower")


GOOD = """\
[[claim]]
id = "seed001-test"
source = "001_189641451686996e.txt"
quote = "| 10 Concurrent | 500ms | 60ms | 8.3x faster |"
metric = "latency_ratio"
statistic = "mean"
claimed = 0.12
direction = "lower"
compare = ["sync", "async"]
condition = { concurrency = 10, db_latency_ms = 50 }
experiment = { workload = "slow-db", concurrency = 10, sweep = { threads = [1, 40] } }
"""


def test_a_correct_entry_parses() -> None:
    [claim] = parse_catalogue(GOOD, "mine.toml")
    assert claim.experiment.slow_ms == 50 and claim.experiment.threads is None


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (('metric = "latency_ratio"', 'metric = "rps_ratoi"'), "metric must be one of"),
        (("claimed = 0.12", 'claimed = "0.12"'), "claimed must be a number"),
        (("claimed = 0.12", "claimed = 0.12\nclaimed_low = 0.1"), "not both"),
        (("claimed = 0.12\n", ""), "missing claimed"),
        (('direction = "lower"', 'direction = "down"'), "direction must be one of"),
        (('["sync", "async"]', '["sync", "asyncpg"]'), "unknown stack 'asyncpg'"),
        (('["sync", "async"]', '["sync", "sync"]'), "two different stacks"),
        (('statistic = "mean"\n', ""), "needs statistic"),
        (('workload = "slow-db"', 'workload = "slowdb"'), "unknown workload 'slowdb'"),
        (("concurrency = 10, sweep", "sweep"), "experiment needs concurrency"),
        (("threads = [1, 40]", "workers = [1, 2]"), "cannot sweep 'workers'"),
        (("threads = [1, 40]", "threads = [40]"), "two or more different whole numbers"),
        (("db_latency_ms = 50", "latency = 50"), "unknown condition 'latency'"),
        (("concurrency = 10, db", 'concurrency = "ten", db'), "condition concurrency must be"),
        (('source = "001_', 'source = "003_'), "names seed 001 but the source is seed 003"),
        (("quote =", "qoute ="), "unknown key 'qoute'"),
    ],
)
def test_a_malformed_entry_is_a_one_line_error_naming_it(
    change: tuple[str, str], message: str
) -> None:
    text = GOOD.replace(*change)
    assert text != GOOD
    with pytest.raises(UserError) as raised:
        parse_catalogue(text, "mine.toml")
    shown = str(raised.value)
    assert "\n" not in shown
    assert shown.startswith("mine.toml: claim 'seed001-test': ")
    assert message in shown


def test_ids_are_checked_and_unique() -> None:
    with pytest.raises(UserError, match=r"claim 1: id must look like"):
        parse_catalogue(GOOD.replace('"seed001-test"', '"Test 1"'), "mine.toml")
    with pytest.raises(UserError, match=r"claim 'seed001-test': the id is used twice"):
        parse_catalogue(GOOD + "\n" + GOOD, "mine.toml")
    with pytest.raises(UserError, match=r"mine.toml: not valid TOML"):
        parse_catalogue("[[claim]\n", "mine.toml")
