"""`strategy_versions`: register every file in strategies/ (sandboxed gates) and add partitions."""

import dagster as dg

from trading_brain.adapters.charts import markdown_table
from trading_brain.app.research.register import register_files
from trading_brain.defs.research.partitions import add_version_partitions, version_key
from trading_brain.defs.resources import WAREHOUSE_POOL, TradingBrainResource


@dg.asset(group_name="research", pool=WAREHOUSE_POOL, kinds={"duckdb"})
def strategy_versions(context: dg.AssetExecutionContext, tb: TradingBrainResource
                      ) -> dg.MaterializeResult:
    """Registered strategy versions (source, hash, parent, reason, status); one backtests
    partition per version. A changed source for a released version fails the run."""
    rt = tb.runtime
    created = register_files(rt.store, rt.settings, None, "released")
    rows = rt.store.strategy_versions()
    new = add_version_partitions(context.instance, rows)
    table = [{"version": version_key(r["strategy_id"], r["version"]), "status": r["status"],
              "sha256": r["sha256"][:12], "warmup": r["warmup_bars"], "reason": r["reason"]}
             for r in rows]
    return dg.MaterializeResult(metadata={
        "versions": len(rows), "registered_now": sum(c["created"] for c in created),
        "new_partitions": ", ".join(new) or "none",
        "table": dg.MetadataValue.md(markdown_table(table, ["version", "status", "sha256",
                                                            "warmup", "reason"]))})
