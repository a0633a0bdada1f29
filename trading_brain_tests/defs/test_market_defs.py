"""Real Dagster runs of the market group: bootstrap_job, scan_job, checks, schedule."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import dagster as dg
import pytest

from trading_brain.adapters.duckdb import Store
from trading_brain.definitions import defs
from trading_brain.defs.market.jobs import scan_schedule
from trading_brain_tests.defs.conftest import NOW, SYMBOLS, resource
from trading_brain_tests.defs.test_defs_snapshot import describe


def test_definitions_load_and_the_market_group_is_exactly_this():
    """Exact sets (a renamed or extra asset/check fails); the whole tree: test_defs_snapshot.py."""
    dg.Definitions.validate_loadable(defs)
    got = describe(defs)
    assert {k for k, g in got["assets"].items() if g == "market"} == {
        "asset_pairs", "candles_5m", "candles_1h", "candles_1d", "indicators"}
    market_checks = {c["name"]: c["blocking"] for c in got["asset_checks"]
                     if got["assets"][c["asset"]] == "market"}
    assert market_checks == {
        **{f"candles_{tf}_{name}": blocking for tf in ("5m", "1h", "1d")
           for name, blocking in (("no_duplicates", True), ("no_gaps", False),
                                  ("ohlc_valid", True), ("quarantine", False))},
        "candles_5m_fresh": True, "indicators_finite": True}  # one freshness check
    assert got["jobs"]["bootstrap_job"] == {"assets": [], "checks": []}
    assert got["jobs"]["scan_job"]["assets"] == [
        "asset_pairs", "candles_1d", "candles_1h", "candles_5m", "indicators", "order_intents",
        "scan_signals"]
    assert got["schedules"]["scan_schedule"] == {
        "cron": "*/5 * * * *", "job": "scan_job", "timezone": "UTC", "default_status": "RUNNING"}
    assert got["sensors"]["executor_sensor"]["default_status"] == "RUNNING"


def _bootstrap(home, instance, now=NOW, **cfg):
    return defs.resolve_job_def("bootstrap_job").execute_in_process(
        instance=instance, resources={"tb": resource(home, now)},
        run_config={"ops": {"bootstrap_history_op": {"config": cfg}}})


def test_bootstrap_job_backfills_and_resumes(sim_home, instance):
    res = _bootstrap(sim_home, instance)
    assert res.success
    store = Store.open(sim_home.warehouse)
    counts = {(s, tf): n for s, tf, n, _, _ in store.candle_summary().iter_rows()}
    # 2 days of 5m ≈ 576 bars, 5 days of 1h ≈ 120, 20 days of 1d = 20, per symbol
    assert all(abs(counts[(s, "5m")] - 576) <= 2 for s in SYMBOLS)
    assert all(abs(counts[(s, "1h")] - 120) <= 1 for s in SYMBOLS)
    assert all(counts[(s, "1d")] == 20 for s in SYMBOLS)
    progress = store.get_bootstrap_progress()
    assert len(progress) == 9
    # a second run only fetches what closed since: 10 minutes later, two 5m bars per symbol
    res2 = _bootstrap(sim_home, instance, now=NOW + timedelta(minutes=10))
    assert res2.success
    obs = [e for e in res2.all_events if e.event_type_value == "ASSET_OBSERVATION"]
    stored = {e.asset_key.to_user_string(): e.event_specific_data.asset_observation.metadata[
        "bootstrap_stored"].value for e in obs}
    assert stored == {"candles_5m": 2 * 3, "candles_1h": 0, "candles_1d": 0}


def _scan(home, instance, now, partition=None):
    return defs.resolve_job_def("scan_job").execute_in_process(
        partition_key=partition or (now - timedelta(minutes=5)).strftime("%Y-%m-%d"),
        instance=instance, resources={"tb": resource(home, now)}, raise_on_error=False)


def _meta(res, node):
    return {k: v.value for k, v in res.asset_materializations_for_node(node)[0].metadata.items()}


def test_scan_job_is_incremental_and_idempotent(sim_home, instance):
    assert _bootstrap(sim_home, instance).success
    store = Store.open(sim_home.warehouse)
    before = store.read_candles(SYMBOLS, "5m").height
    res = _scan(sim_home, instance, NOW + timedelta(minutes=5))
    assert res.success
    evals = res.get_asset_check_evaluations()
    assert evals and all(e.passed for e in evals)
    assert store.read_candles(SYMBOLS, "5m").height == before + 3  # one new bar per symbol
    assert _meta(res, "candles_5m")["newest_candle"].startswith("2026-11-20 10:00")
    # a rerun of the same scan stores nothing new and creates no duplicates
    assert _scan(sim_home, instance, NOW + timedelta(minutes=5)).success
    assert store.read_candles(SYMBOLS, "5m").height == before + 3
    ind = store.read_indicators(SYMBOLS, "5m", NOW - timedelta(hours=1))
    assert ind.height == store.read_candles(SYMBOLS, "5m", NOW - timedelta(hours=1)).height == 36
    assert ind["rsi_14"].null_count() == 0
    assert ind["ts"].max() == datetime(2026, 11, 20, 10, tzinfo=UTC)
    assert set(ind["regime"]) <= {"trend_up", "trend_down", "range", "volatile"}


def test_past_partition_backfill_loads_the_whole_day(sim_home, instance):
    res = _scan(sim_home, instance, NOW, partition="2026-11-15")
    assert res.success, [e.message for e in res.all_events if e.is_failure]
    store = Store.open(sim_home.warehouse)
    day = (datetime(2026, 11, 15, tzinfo=UTC), datetime(2026, 11, 16, tzinfo=UTC))
    assert store.read_candles(SYMBOLS, "5m", *day).height == 3 * 288
    assert store.read_candles(SYMBOLS, "1h", *day).height == 3 * 24
    assert store.read_candles(SYMBOLS, "1d", *day).height == 3
    assert _meta(res, "candles_1h")["derived_from_5m"] == 3 * 24  # aggregated, not fetched
    one_h = store.read_candles(["BTC/USD"], "1h", *day)
    five = store.read_candles(["BTC/USD"], "5m", *day)
    assert one_h["high"].max() == pytest.approx(five["high"].max(), rel=1e-12)
    assert one_h["volume"].sum() == pytest.approx(five["volume"].sum(), rel=1e-9)


def test_stale_market_fails_the_blocking_freshness_check(sim_home, instance):
    # The venue stops delivering: an hour after the last bootstrap, the market has nothing new.
    assert _bootstrap(sim_home, instance).success
    from trading_brain_tests.fakes.markets import FrozenMarketResource

    res = defs.resolve_job_def("scan_job").execute_in_process(
        partition_key=NOW.strftime("%Y-%m-%d"), instance=instance, raise_on_error=False,
        resources={"tb": FrozenMarketResource(home=str(sim_home.root),
                                              now=(NOW + timedelta(hours=1)).isoformat(),
                                              frozen_at=NOW.isoformat())})
    assert not res.success
    fresh = [e for e in res.get_asset_check_evaluations() if e.check_name == "candles_5m_fresh"]
    assert len(fresh) == 1 and not fresh[0].passed
    assert fresh[0].severity == dg.AssetCheckSeverity.ERROR
    assert "BTC/USD" in fresh[0].metadata["stale_symbols"].value
    assert fresh[0].metadata["halted_now"].value == "active"
    assert not res.asset_materializations_for_node("indicators")  # blocked downstream
    halt = Store.open(sim_home.warehouse).load_risk_state("active").halts["manual"]
    assert halt.reason.startswith("check:candles_5m_fresh")  # entries stop on every slot


@pytest.mark.parametrize(("scheduled", "partition"), [
    (datetime(2026, 11, 20, 10, 5, tzinfo=UTC), "2026-11-20"),
    (datetime(2026, 11, 21, 0, 0, tzinfo=UTC), "2026-11-20"),  # 23:55 bar closes yesterday
    (datetime(2026, 11, 21, 0, 5, tzinfo=UTC), "2026-11-21"),
])
def test_scan_schedule_targets_the_day_of_the_bar_that_closed(scheduled, partition):
    ctx = dg.build_schedule_context(scheduled_execution_time=scheduled)
    req = scan_schedule(ctx)
    assert req.partition_key == partition
    assert req.run_key == f"scan-{scheduled:%Y%m%dT%H%M}"
