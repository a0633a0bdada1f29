"""Real Dagster runs of the research group: strategy_versions registers and adds partitions."""

from __future__ import annotations

import dagster as dg

from trading_brain.adapters.duckdb import Store
from trading_brain.defs.research.partitions import strategy_version_partitions
from trading_brain.defs.research.versions import strategy_versions
from trading_brain_tests.defs.conftest import resource


def test_strategy_versions_registers_files_and_adds_partitions(sim_home, instance):
    sim_home.var.mkdir(parents=True, exist_ok=True)
    res = dg.materialize([strategy_versions], instance=instance,
                         resources={"tb": resource(sim_home)})
    assert res.success
    keys = set(instance.get_dynamic_partitions(strategy_version_partitions.name))
    assert {"ema_cross@1", "ema_rsi_volume@1", "trend_pullback@1"} <= keys
    rows = Store.open(sim_home.warehouse).strategy_versions()
    assert all(r["validation"]["lookahead"]["passed"] for r in rows)
    meta = res.asset_materializations_for_node("strategy_versions")[0].metadata
    assert meta["registered_now"].value == len(rows)
    again = dg.materialize([strategy_versions], instance=instance,
                           resources={"tb": resource(sim_home)})
    meta2 = again.asset_materializations_for_node("strategy_versions")[0].metadata
    assert meta2["registered_now"].value == 0 and meta2["new_partitions"].value == "none"


def test_backtests_partition_per_version_with_chart_trades_and_checks(sim_home, instance):
    from trading_brain.definitions import defs
    from trading_brain.defs.research.backtests import backtests
    from trading_brain_tests.defs.conftest import NOW

    res = defs.resolve_job_def("bootstrap_job").execute_in_process(
        instance=instance, resources={"tb": resource(sim_home)},
        run_config={"ops": {"bootstrap_history_op": {"config": {"days_5m": 6}}}})
    assert res.success
    assert dg.materialize([strategy_versions], instance=instance,
                          resources={"tb": resource(sim_home)}).success
    res = dg.materialize(
        [backtests], partition_key="ema_cross@1", instance=instance,
        resources={"tb": resource(sim_home, NOW)},
        run_config={"ops": {"backtests": {"config": {"engine": "exact",
                                                      "params_json": '{"fast": 5, "slow": 13}'}}}})
    assert res.success
    materialized = res.asset_materializations_for_node("backtests")[0]
    meta = {k: v.value for k, v in materialized.metadata.items()}
    assert meta["n_trades"] > 0 and meta["engine"] == "exact"
    assert meta["equity_curve"].startswith("![equity curve](data:image/png;base64,")
    assert meta["trades"].startswith("| symbol | entry_time")
    png = sim_home.var / "reports" / "backtests" / "ema_cross@1.png"
    assert png.read_bytes()[:4] == b"\x89PNG"
    evals = {e.check_name: e.passed for e in res.get_asset_check_evaluations()}
    assert evals == {"backtest_no_lookahead": True, "backtest_sandbox_validated": True}
    stored = Store.open(sim_home.warehouse).frame(
        "SELECT strategy_id, version, engine FROM backtests")
    assert stored.rows() == [("ema_cross", 1, "exact")]
    trades = Store.open(sim_home.warehouse).frame("SELECT count(*) AS n FROM backtest_trades")
    # closed trades plus at most one still-open position per symbol
    assert meta["n_trades"] <= trades["n"][0] <= meta["n_trades"] + 3
