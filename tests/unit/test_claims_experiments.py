"""`pgarena claims` without running anything: which experiments it plans, and that a claim
nothing measured never gets a row with a value."""

from __future__ import annotations

import pytest

from pgarena.claims.catalogue import load_catalogue
from pgarena.claims.experiments import (
    Outcome,
    experiment_points,
    point_name,
    render_table,
    select,
)
from pgarena.errors import UserError

CLAIMS = load_catalogue()


def test_only_selects_claims_by_id_and_rejects_unknown_ones() -> None:
    chosen = select(CLAIMS, "seed000-rps-10x, seed001-table-10-ratio")
    assert [claim.id for claim in chosen] == ["seed000-rps-10x", "seed001-table-10-ratio"]
    with pytest.raises(UserError, match="--only: unknown claim 'seed009-x'"):
        select(CLAIMS, "seed000-rps-10x,seed009-x")


def test_claims_that_share_an_experiment_share_its_run() -> None:
    chosen = select(CLAIMS, "seed001-table-10-ratio,seed001-table-10-sync,seed001-table-10-async")
    points = experiment_points(chosen, quick=True)
    # the ratio and sync claims sweep threads 1, 4, 40, 100; async runs at the default
    assert sorted(str(p.threads) for p in points) == ["1", "100", "4", "40", "None"]
    assert all(stacks == ["sync", "async"] for stacks in points.values())
    names = {point_name(p) for p in points}
    assert "slow-db-c10-ms50-threads1-pool20-overflow0" in names


def test_quick_measures_for_a_time_instead_of_seed_004s_request_counts() -> None:
    [claim] = select(CLAIMS, "seed004-advanced-concurrent")
    [full] = experiment_points((claim,), quick=False)
    [quick] = experiment_points((claim,), quick=True)
    assert (full.requests, quick.requests) == (100000, None)


def test_a_claim_nothing_measured_has_no_row_only_a_reason() -> None:
    chosen = select(CLAIMS, "seed000-rps-10x")
    [point] = experiment_points(chosen, quick=True)
    table = render_table(chosen, Outcome({}, {point: "the sync server did not start"}), True)
    rows = [line for line in table.splitlines() if line.startswith("| seed")]
    assert rows == []
    assert "- seed000-rps-10x: the sync server did not start" in table
