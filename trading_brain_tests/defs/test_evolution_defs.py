"""The `evolution` group materialised with ``dg.materialize`` on a simulated home."""

from __future__ import annotations

import contextlib
import os
import threading
import time
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from trading_brain.app.home.config_file import render
from trading_brain.app.simulate.loop import Plan, simulate
from trading_brain.defs.evolution import EVOLUTION_ASSETS
from trading_brain.defs.evolution.jobs import build_schedule, cron_of
from trading_brain.defs.resources import TradingBrainResource
from trading_brain.settings import EvolutionSettings, Home, load_settings

NOW = "2026-10-03T00:30:00+00:00"


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("evolution_defs") / "home"
    simulate(Home(home), Plan(market="sim", days=2, seed=7, start="2026-10-01T00:00:00+00:00",
                              symbols=("BTC/USD", "ETH/USD", "SOL/USD")))
    small = EvolutionSettings(sweep_size=6, family_sweep_size=3, history_days=10)
    settings = load_settings(Home(home)).model_copy(update={"evolution": small})
    Home(home).config_file.write_text(render(settings), encoding="utf-8")
    return home


def test_the_evolution_group_materialises_as_a_report(home: Path) -> None:
    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize(EVOLUTION_ASSETS, resources={
        "tb": TradingBrainResource(home=str(home), now=NOW)}, instance=instance)
    assert result.success
    mats = [ev.step_materialization_data.materialization
            for ev in result.get_asset_materialization_events()]
    meta = {m.asset_key.to_user_string(): m.metadata for m in mats}
    assert set(meta) == {"truth_benchmarks", "market_analysis", "trade_performance",
                         "evolution_decision", "strategy_candidates", "paper_tests",
                         "deployments", "promotion_reviews"}
    decision = meta["evolution_decision"]["decision"].value
    assert "create_candidate" in str(decision) or "no_change" in str(decision)
    cand = meta["strategy_candidates"]
    assert "| gate | status | reason |" in str(cand["gates"].value)
    if cand["candidate"].value != "none":
        assert cand["candidate"].value in instance.get_dynamic_partitions("strategy_version")
        chart = str(cand["equity_chart"].value)
        assert chart.startswith("![candidate vs incumbent](data:image/png")
    checks = {c.check_name: c for c in result.get_asset_check_evaluations()}
    assert set(checks) == {"candidate_registration", "candidate_backtest",
                           "candidate_overfit_guard", "evolution_adds_value"}
    assert "pbo" in str(checks["candidate_overfit_guard"].metadata) or \
        cand["candidate"].value == "none"


def test_the_schedule_follows_the_settings() -> None:
    es = EvolutionSettings(schedule_time="03:05", timezone="Europe/Paris")
    assert cron_of(es) == "5 3 * * *"
    sched = build_schedule(es)
    assert sched.execution_timezone == "Europe/Paris"
    assert sched.default_status == dg.DefaultScheduleStatus.RUNNING


def test_the_nightly_job_runs_the_promotion_assets_after_the_candidates() -> None:
    from trading_brain.definitions import defs

    job = defs.resolve_job_def("evolution_job")
    keys = {k.to_user_string() for k in job.asset_layer.selected_asset_keys}
    assert {"strategy_candidates", "paper_tests", "deployments", "promotion_reviews"} <= keys
    graph = defs.resolve_asset_graph()
    assert dg.AssetKey("strategy_candidates") in graph.get(dg.AssetKey("paper_tests")).parent_keys


def test_a_cycle_waiting_on_its_advisor_does_not_hold_the_warehouse_pool(
        home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The defect of #12: the cycle's steps held pool `warehouse` through the advisor's call, so
    the scan (any pooled step) waited for the whole cycle. Now, while the advisor thinks, the
    slot is free and another run's pooled step takes it and finishes."""
    from trading_brain.app.evolve.advisors import OfflineAdvisor
    from trading_brain.defs.evolution.assets import evolution_decision, truth_benchmarks

    entered, release = threading.Event(), threading.Event()
    seen: dict[str, int] = {}
    decide = OfflineAdvisor.decide

    def slow_decide(self: OfflineAdvisor, context: Any) -> Any:
        deadline = time.monotonic() + 2  # the slot lingers 0.25 s after the last session
        while True:
            info = inst.event_log_storage.get_concurrency_info("warehouse")
            if not info.claimed_slots or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        seen["claimed_while_thinking"] = len(info.claimed_slots)
        entered.set()
        assert release.wait(120), "the test never released the advisor"
        return decide(self, context)

    monkeypatch.setattr(OfflineAdvisor, "decide", slow_decide)
    results: dict[str, dg.ExecuteInProcessResult] = {}

    def run(name: str, assets: list, now: str) -> None:
        results[name] = dg.materialize(assets, instance=inst, resources={
            "tb": TradingBrainResource(home=str(home), now=now)})

    pools = {"concurrency": {"pools": {"default_limit": 1}}}
    with dg.instance_for_test(overrides=pools) as inst:
        cycle = threading.Thread(target=run, args=("cycle", [evolution_decision],
                                                  "2026-10-04T00:30:00+00:00"))
        cycle.start()
        try:
            assert entered.wait(120), "the cycle never reached its advisor"
            other = threading.Thread(target=run, args=("scan-like", [truth_benchmarks],
                                                      "2026-10-04T00:35:00+00:00"))
            other.start()
            other.join(90)
            assert not other.is_alive(), "a pooled step waited for the cycle's advisor"
            assert results["scan-like"].success
            assert cycle.is_alive()  # the advisor is still thinking
        finally:
            release.set()
            cycle.join(120)
        assert results["cycle"].success
        assert seen["claimed_while_thinking"] == 0
        meta = results["cycle"].get_asset_materialization_events()[0] \
            .step_materialization_data.materialization.metadata
        assert int(str(meta["warehouse_claims"].value)) > 0  # it did take the slot for its sessions
        info = inst.event_log_storage.get_concurrency_info("warehouse")
        assert not info.claimed_slots and info.pending_step_count == 0  # all freed


def _children() -> set[int]:
    pids: set[int] = set()
    for task in Path(f"/proc/{os.getpid()}/task").iterdir():
        with contextlib.suppress(OSError):
            pids |= {int(p) for p in (task / "children").read_text().split()}
    return pids


def test_the_runs_sandbox_workers_are_stopped_when_the_run_ends(home: Path) -> None:
    """The analysis runs in a sandbox worker the run's resource started; the run's end stops it
    (a long-lived process running many runs, e.g. a test session or a code server, kept them)."""
    from trading_brain.defs.evolution.assets import market_analysis

    before = _children()
    result = dg.materialize([market_analysis], instance=dg.DagsterInstance.ephemeral(),
                            resources={"tb": TradingBrainResource(home=str(home), now=NOW)})
    assert result.success
    mats = result.get_asset_materialization_events()
    assert mats[0].step_materialization_data.materialization.metadata["status"].value == "ok"
    deadline = time.monotonic() + 15
    while _children() - before and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _children() - before == set()
