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
