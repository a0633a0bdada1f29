"""`warehouse_backup` (group ``operations``) and `backup_schedule` (nightly, running by default).

The asset is a thin shell over ``trading_brain.app.backup.backup_now``: a consistent snapshot of
the warehouse under the ``warehouse`` pool (no other warehouse step runs meanwhile), its sha256
recorded in the ``backups`` table and in the asset's metadata, retention applied. A failure
(full disk) keeps the earlier snapshots, records an ERROR alert in ``notifications`` and fails
the run.
"""

import dagster as dg

from trading_brain.defs.resources import WAREHOUSE_POOL as POOL
from trading_brain.defs.resources import TradingBrainResource


@dg.asset(group_name="operations", pool=POOL, kinds={"duckdb"},
          description="Nightly consistent snapshot of the DuckDB warehouse (sha256, retention).")
def warehouse_backup(context: dg.AssetExecutionContext,
                     tb: TradingBrainResource) -> dg.MaterializeResult:
    from trading_brain.app.backup import backup_now

    snap = backup_now(tb.runtime)
    context.log.info(f"snapshot {snap.path} sha256 {snap.sha256}")
    return dg.MaterializeResult(metadata={
        "path": dg.MetadataValue.path(str(snap.path)), "sha256": snap.sha256,
        "bytes": snap.bytes, "schema_version": snap.schema_version,
        "removed": ", ".join(snap.removed) or "none"})


backup_job = dg.define_asset_job(
    "backup_job", selection=dg.AssetSelection.assets(warehouse_backup),
    executor_def=dg.in_process_executor, tags={"trading_brain/kind": "backup"},
    description="Snapshot the warehouse (what `trading-brain backup` does).")

backup_schedule = dg.ScheduleDefinition(
    name="backup_schedule", job=backup_job, cron_schedule="17 2 * * *",
    execution_timezone="UTC", default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Nightly at 02:17 UTC: warehouse_backup.")
