"""Market jobs and the 5-minute schedule (DESIGN §5 names)."""


import dagster as dg

from trading_brain.adapters.dagster_catalog import CANDLE_ASSETS, DagsterCatalog
from trading_brain.app.home.init import report_history
from trading_brain.defs.market.assets import (
    asset_pairs,
    candles_1d,
    candles_1h,
    candles_5m,
    indicators,
)
from trading_brain.defs.market.partitions import partition_for
from trading_brain.defs.resources import WAREHOUSE_POOL, TradingBrainResource
from trading_brain.defs.trading.assets import scan
from trading_brain.engine.bootstrap import bootstrap_history

MARKET_ASSETS = [asset_pairs, candles_5m, candles_1h, candles_1d, indicators]

# The trading assets (scan_signals, order_intents) run after the market assets.
scan_job = dg.define_asset_job(
    "scan_job", selection=dg.AssetSelection.assets(*MARKET_ASSETS, scan),
    executor_def=dg.in_process_executor, tags={"trading_brain/kind": "scan"},
    description="Fetch closed bars, upsert candles, derive 1h/1d, update indicators, then run "
                "the strategies through the risk shell into order intents.")


@dg.schedule(cron_schedule="*/5 * * * *", job=scan_job, execution_timezone="UTC",
             default_status=dg.DefaultScheduleStatus.RUNNING)
def scan_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    """Every 5 minutes: the day partition of the bar that just closed."""
    t = context.scheduled_execution_time
    return dg.RunRequest(run_key=f"scan-{t:%Y%m%dT%H%M}", partition_key=partition_for(t),
                         tags={"trading_brain/scan_time": t.isoformat()})


class BootstrapConfig(dg.Config):
    """History to backfill per timeframe (defaults come from the home's settings)."""

    days_5m: int | None = None
    days_1h: int | None = None
    days_1d: int | None = None


@dg.op(pool=WAREHOUSE_POOL)
def bootstrap_history_op(context: dg.OpExecutionContext, config: BootstrapConfig,
                         tb: TradingBrainResource) -> None:
    """Backfill candle history in resumable chunks, logging progress."""
    rt = tb.runtime
    h = rt.settings.history
    days = {"1d": config.days_1d or h.days_1d, "1h": config.days_1h or h.days_1h,
            "5m": config.days_5m or h.days_5m}
    step = {"n": 0}

    def progress(i: int, total: int, label: str) -> None:
        if i == total or i * 20 // total != step["n"]:
            step["n"] = i * 20 // total
            context.log.info(f"bootstrap {i}/{total} ({100 * i // total}%): {label}")

    rt.store_asset_pairs()
    reports = bootstrap_history(rt.market, rt.store, rt.settings.symbols, days,
                                now=rt.clock.now(), progress=progress)
    for tf, rep in reports.items():
        context.log_event(dg.AssetObservation(
            asset_key=f"candles_{tf}", metadata={"bootstrap_stored": rep.stored,
                                                 "quarantined": rep.quarantined}))
    # The day partitions now holding candles show as materialized (the ones not shown yet).
    catalog = DagsterCatalog(context.instance, f"by bootstrap_job run {context.run_id[:8]}")
    reported = report_history(rt, catalog)
    context.log.info("day partitions reported: "
                     + ", ".join(f"{CANDLE_ASSETS[tf]}={n}" for tf, n in reported.items()))


@dg.job(description="Backfill candle history (5m 30 days, 1h 1 year, 1d 3 years by default); "
                    "resumes where a previous run stopped.")
def bootstrap_job() -> None:
    bootstrap_history_op()
