"""Real scan_job runs of the trading group on a temporary sim home with ema_cross deployed.

The sim market is deterministic, so the test first finds (with the trusted in-process
strategy over full history) the next bar on which ema_cross enters some symbol, bootstraps just
before it, then runs the scan over several 5-minute steps through the real sandbox worker.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from functools import cache

import dagster as dg
import polars as pl
import pytest

from trading_brain.adapters.clock import SimClock
from trading_brain.adapters.duckdb import Store
from trading_brain.adapters.sim import SimMarket
from trading_brain.app.research.register import register_files
from trading_brain.app.research.strategy_files import STRATEGIES_ROOT, InProcessStrategy
from trading_brain.app.runtime import build_runtime
from trading_brain.definitions import defs
from trading_brain.defs.trading.assets import scan
from trading_brain.domain.intents import intent_id_for
from trading_brain.engine import registry
from trading_brain.engine.indicators import REGIMES
from trading_brain.engine.scan import scan_bar_time
from trading_brain_tests.defs.conftest import NOW, SYMBOLS, resource

EMA_CROSS = STRATEGIES_ROOT / "ema_cross" / "v1.py"


@cache
def _next_entry(seed: int) -> tuple[str, datetime]:
    """(symbol, bar open time) of the first ema_cross entry after NOW in the sim market."""
    end = NOW + timedelta(hours=12)
    market = SimMarket(SYMBOLS, seed=seed, clock=SimClock(end))
    src = InProcessStrategy(EMA_CROSS)
    found = []
    for sym in SYMBOLS:
        bars = market.candles(sym, "5m", NOW - timedelta(days=5), end)
        sig = src.generate(bars).filter((pl.col("ts") > NOW) & (pl.col("action") == "enter"))
        if sig.height:
            found.append((sig["ts"][0], sym))
    assert found, "no ema_cross entry in 12 sim hours"
    ts, sym = min(found)
    return sym, ts


def _run(home, instance, now, config=None, partition=None):
    return defs.resolve_job_def("scan_job").execute_in_process(
        partition_key=partition or scan_bar_time(now).strftime("%Y-%m-%d"),
        instance=instance, resources={"tb": resource(home, now)}, raise_on_error=False,
        run_config={"ops": {"scan": {"config": config or {}}}})


def _meta(res, key):
    mats = [m for m in res.get_asset_materialization_events()
            if m.asset_key.to_user_string() == key]
    return {k: v.value for k, v in mats[0].materialization.metadata.items()}


@pytest.fixture
def bootstrapped(sim_home, instance):
    """A home bootstrapped ten minutes before the next ema_cross entry (nothing deployed)."""
    rt = build_runtime(sim_home.root)
    sym, entry = _next_entry(rt.settings.sim.seed)
    res = defs.resolve_job_def("bootstrap_job").execute_in_process(
        instance=instance, resources={"tb": resource(sim_home, entry - timedelta(minutes=10))},
        run_config={"ops": {"bootstrap_history_op": {"config": {"days_5m": 5, "days_1h": 2,
                                                                  "days_1d": 5}}}})
    assert res.success
    return sim_home, Store.open(sim_home.warehouse), rt, sym, entry


def test_scan_job_writes_scans_signals_and_one_intent_per_decision(bootstrapped, instance):
    home, store, rt, sym, entry = bootstrapped
    # 1. no active version yet: the scan records that and passes
    res = _run(home, instance, entry - timedelta(minutes=5, seconds=-30))
    assert res.success
    assert _meta(res, "scan_signals")["notes"] == "no active strategy version"
    assert _meta(res, "order_intents")["intents"] == 0
    first = store.frame("SELECT intents, details FROM scans")
    assert first.height == 1 and first["intents"][0] == 0
    assert '"no_active_version": true' in first["details"][0]
    assert store.execute("SELECT count(*) FROM signals")[0][0] == 0
    # 2. deploy ema_cross@1 and scan the entry bar and the next, with a shadow slot
    register_files(store, rt.settings, [EMA_CROSS], "released")
    registry.deploy(store, "ema_cross", 1, reason="test")
    shadow = {"shadows": ["shadow1=ema_cross@1"]}
    for k in (1, 2):  # bar times: entry, entry + 5m
        res = _run(home, instance, entry + timedelta(minutes=5 * k, seconds=30), shadow)
        assert res.success
        evals = {e.check_name: e.passed for e in res.get_asset_check_evaluations()}
        assert evals["scan_strategies_ran"] is True
        if k == 1:  # the entry bar: who did what, and why
            table = _meta(res, "scan_signals")["decisions"]
            assert f"| active | {sym} | enter | intent enter | risk approved |" in table
            assert "| hold | none | no signal |" in table
    assert store.execute("SELECT count(*) FROM scans")[0][0] == 3
    signals = store.frame("SELECT slot, symbol, bar_time, action, risk_decision FROM signals")
    assert signals.height == 2 * 2 * len(SYMBOLS)  # every step, slot and symbol, holds included
    holds = signals.filter(pl.col("action") == "hold")
    assert holds.height and holds["risk_decision"].null_count() == holds.height
    intents = store.intents()
    ids = {(i.slot, i.symbol, i.action) for i in intents if i.bar_time == entry}
    assert {("active", sym, "enter"), ("shadow1", sym, "enter")} <= ids
    expected = intent_id_for("ema_cross", 1, "active", sym, entry, "enter")
    assert expected in {i.intent_id for i in intents}
    assert all(i.status == "pending" and i.quantity > 0 for i in intents)
    details = json.loads(store.frame("SELECT details FROM scans WHERE bar_time = ?",
                                     [entry])["details"][0])
    state = details["symbols"][sym]
    assert state["signals"]["active"]["action"] == "enter" and state["close"] > 0
    assert state["regime"] in REGIMES and state["indicators_at"] == entry.isoformat()
    events = store.frame("SELECT reason, details FROM risk_events WHERE kind = 'decision'")
    approved = events.filter(pl.col("details").str.contains(expected))
    assert approved.height == 1 and approved["reason"][0] in ("ok", "max_trade_size")
    # 3. rerunning the entry scan writes nothing new
    n_events = store.execute("SELECT count(*) FROM risk_events")[0][0]
    res = _run(home, instance, entry + timedelta(minutes=5, seconds=50), shadow)
    assert res.success and _meta(res, "order_intents")["new_intents"] == 0
    assert (f"| active | {sym} | enter | none | its intent is already pending |"
            in _meta(res, "scan_signals")["decisions"])
    assert len(store.intents()) == len(intents)
    assert store.execute("SELECT count(*) FROM scans")[0][0] == 3
    assert store.execute("SELECT count(*) FROM signals")[0][0] == signals.height
    assert store.execute("SELECT count(*) FROM risk_events")[0][0] == n_events


def test_scan_of_an_old_partition_decides_nothing(sim_home, instance):
    res = dg.materialize([scan], partition_key="2026-11-01", instance=instance,
                         resources={"tb": resource(sim_home, NOW)})
    assert res.success
    meta = {k: v.value for k, v in res.asset_materializations_for_node("scan")[0].metadata.items()}
    assert "is not the day" in meta["skipped"]
    assert Store.open(sim_home.warehouse).execute("SELECT count(*) FROM scans")[0][0] == 0


@pytest.mark.parametrize("entry", ["shadow9=ema_cross@1", "shadow1=ema_cross", "ema_cross@1"])
def test_bad_shadow_config_fails_the_run_and_records_nothing(sim_home, instance, entry):
    res = dg.materialize([scan], partition_key=scan_bar_time(NOW).strftime("%Y-%m-%d"),
                         instance=instance, resources={"tb": resource(sim_home, NOW)},
                         run_config={"ops": {"scan": {"config": {"shadows": [entry]}}}},
                         raise_on_error=False)
    assert not res.success
    failure = [e for e in res.all_events if e.event_type_value == "STEP_FAILURE"][0]
    cause = failure.event_specific_data.error.cause
    assert cause.cls_name == "ConfigError" and "SLOT=ID@VERSION" in cause.message
    assert Store.open(sim_home.warehouse).execute("SELECT count(*) FROM scans")[0][0] == 0


def test_scan_job_selects_the_trading_assets():
    job = defs.resolve_job_def("scan_job")
    keys = {k.to_user_string() for k in job.asset_layer.selected_asset_keys}
    assert {"scan_signals", "order_intents", "candles_5m", "indicators"} <= keys
    graph = defs.resolve_asset_graph()
    assert graph.get(dg.AssetKey("order_intents")).group_name == "trading"
