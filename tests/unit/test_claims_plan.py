"""What `pgarena claims` plans to run, and how long it says that takes, before running
anything: --quick must cover every catalogued claim within issue 12's 8 minutes."""

from __future__ import annotations

import pytest

from pgarena.bench.plan import PlannedCell
from pgarena.claims.catalogue import Experiment, load_catalogue
from pgarena.claims.experiments import experiment_points, planned, select
from pgarena.claims.plan import (
    QUICK_BUDGET_S,
    ServerConfig,
    cell_key,
    estimate_s,
    plan_groups,
)
from pgarena.errors import UserError
from pgarena.results.model import CellKey
from pgarena.settings import Settings

CLAIMS = load_catalogue()


def test_quick_covers_every_claim_within_eight_minutes() -> None:
    groups = planned(CLAIMS, quick=True)
    assert estimate_s(groups) <= QUICK_BUDGET_S == 8 * 60
    # every cell every claim reads is run by some group
    run = {
        CellKey(stack, pair.workload.name, pair.concurrency)
        for group in groups
        for pair in group.plan.pairs
        for stack in group.plan.stacks
    }
    for claim in CLAIMS:
        for point in claim.experiment.points():
            for stack in claim.compare:
                assert cell_key(point, stack) in run, (claim.id, stack)


def test_the_full_version_takes_longer_and_runs_seed_004s_request_counts() -> None:
    full = planned(CLAIMS, quick=False)
    assert estimate_s(full) > 3 * estimate_s(planned(CLAIMS, quick=True))
    assert any(group.plan.requests == 100_000 for group in full)


def test_points_that_need_the_same_server_share_one_run() -> None:
    chosen = select(CLAIMS, "seed001-table-100-ratio,seed001-table-100-async")
    groups = {g.config.threads: g for g in planned(chosen, quick=True)}
    # threads 1, 4, 40 and 100 (100 = the pool's maximum, serve's default for pool 100)
    assert sorted(groups) == [1, 4, 40, 100]
    # async runs no endpoint on the thread pool: measured once, beside sync's 100 threads
    assert [groups[t].plan.stacks for t in (1, 4, 40)] == [("sync",)] * 3
    assert groups[100].plan.stacks == ("sync", "async")
    assert len(experiment_points(chosen, quick=True)) == 5  # 4 sync, 1 async
    assert all(g.plan.server_lifetime == "repeat" for g in groups.values())


def test_a_queue_is_filled_before_it_is_measured() -> None:
    [group] = planned(select(CLAIMS, "seed001-load-100-sync"), quick=True)[:1]
    assert group.config.threads == 1
    [pair] = [p for p in group.plan.pairs if p.concurrency == 100]
    sync, asynchronous = (PlannedCell(s, pair.workload, 100, 0) for s in ("sync", "async"))
    # 100 clients on one thread wait 100 x 50 ms: the sync cell warms up 5 s longer, and
    # its window spans a whole turn of the queue (answers come in bursts, one per turn)
    assert group.plan.warmup_of(sync) - group.plan.warmup_of(asynchronous) == pytest.approx(5.0)
    assert group.plan.duration_of(sync) == pytest.approx(6.0)
    assert group.plan.duration_of(asynchronous) == 1.0


def test_servers_whose_pools_exceed_postgres_take_turns() -> None:
    big = Experiment("slow-db", 1000, pool_size=250, max_overflow=0)
    small = Experiment("slow-db", 200, pool_size=250, max_overflow=0)
    [group] = plan_groups({big: ["sync", "async"], small: ["sync", "async"]}, quick=True)
    assert group.config == ServerConfig(250, 0, 250)
    assert group.plan.server_lifetime == "stack"  # 2 x 250 connections > 300
    order = [(cell.stack, cell.concurrency) for cell in group.plan.cells()[:4]]
    # one server start per stack and repeat; the lighter load first, so that the heavy
    # one's backlog never meets the next cell
    assert order == [("sync", 200), ("sync", 1000), ("async", 200), ("async", 1000)]
    assert group.plan.server_starts() == 4
    # a load of hundreds of clients waits for their connections and the pool's
    assert group.plan.warmup_of(group.plan.cells()[1]) > 5


def test_each_latency_of_a_sweep_is_its_own_workload() -> None:
    [group] = planned(select(CLAIMS, "seed003-10x-better-concurrency"), quick=True)
    names = [pair.workload.name for pair in group.plan.pairs]
    assert names == [f"slow-db-{ms}ms@pool100,overflow0" for ms in (0, 5, 50)]
    paths = [pair.workload.scenarios[0].steps[0].path for pair in group.plan.pairs]
    assert paths == ["/slow?ms=0", "/slow?ms=5", "/slow?ms=50"]


def test_only_selects_claims_by_id_and_rejects_unknown_ones() -> None:
    chosen = select(CLAIMS, "seed000-rps-10x, seed001-table-10-ratio")
    assert [claim.id for claim in chosen] == ["seed000-rps-10x", "seed001-table-10-ratio"]
    with pytest.raises(UserError, match="--only: unknown claim 'seed009-x'"):
        select(CLAIMS, "seed000-rps-10x,seed009-x")


def test_quick_measures_for_a_time_instead_of_seed_004s_request_counts() -> None:
    [claim] = select(CLAIMS, "seed004-advanced-concurrent")
    [full] = experiment_points((claim,), quick=False)
    [quick] = experiment_points((claim,), quick=True)
    assert (full.requests, quick.requests) == (100000, None)


def test_claim_servers_run_without_the_failure_bounds(monkeypatch: pytest.MonkeyPatch) -> None:
    # "100 concurrent on one thread: 5000 ms" is a claim about an unbounded queue; a 2 s
    # queue timeout would shed the request with a 503 and measure the bound instead.
    groups = planned(select(CLAIMS, "seed001-table-100-sync"), quick=True)
    assert groups
    assert len({group.config.options().environment for group in groups}) == 1
    for name, value in groups[0].config.options().environment:
        monkeypatch.setenv(name, value)
    settings = Settings()
    assert settings.request_deadline == 0 and settings.statement_timeout_ms == 0
    assert settings.queue_timeout >= 3600 and settings.pool_timeout >= 30
