"""Market assets: thin wrappers over engine.market_sync / engine.indicators (DESIGN §5)."""


from datetime import datetime, timedelta

import dagster as dg
import polars as pl

from trading_brain.app.runtime import Runtime
from trading_brain.defs.market.checks import candle_check_results, candle_check_specs, to_result
from trading_brain.defs.market.partitions import daily, day_window
from trading_brain.defs.resources import WAREHOUSE_POOL as POOL
from trading_brain.defs.resources import TradingBrainResource
from trading_brain.defs.trading.checks import stop_entries
from trading_brain.engine import market_checks
from trading_brain.engine.indicators import compute_indicators
from trading_brain.engine.market_checks import CheckOutcome
from trading_brain.engine.market_sync import SyncReport, derive_window, sync_window
from trading_brain.engine.retention import apply_retention
from trading_brain.errors import DataError


@dg.asset(group_name="market", pool=POOL, kinds={"duckdb"})
def asset_pairs(tb: TradingBrainResource) -> dg.MaterializeResult:
    """Exchange metadata of the configured symbols: precision, minimums, fees."""
    rt = tb.runtime
    pairs = rt.store_asset_pairs()
    return dg.MaterializeResult(metadata={
        "market": rt.market.name, "pairs": len(pairs),
        "fees_taker": ", ".join(f"{s}={p.fee_taker:.4f}" for s, p in sorted(pairs.items()))})


def _metadata(report: SyncReport, rt: Runtime) -> dict[str, str | int]:
    newest = max(report.latest.values()) if report.latest else None
    derived = {"derived_from_5m": report.derived} if report.timeframe != "5m" else {}
    return {"market": rt.market.name, "fetched": report.fetched, "stored": report.stored,
            **derived, "quarantined": report.quarantined,
            "venue_omitted": report.omitted, "newest_candle": str(newest) if newest else "none",
            "quarantine_reasons": ", ".join(f"{k}={v}" for k, v in report.reasons.items())
            or "none"}


@dg.asset(group_name="market", pool=POOL, partitions_def=daily, deps=[asset_pairs],
          kinds={"duckdb"}, check_specs=candle_check_specs("candles_5m", freshness=True),
          freshness_policy=dg.FreshnessPolicy.time_window(
              fail_window=timedelta(minutes=15), warn_window=timedelta(minutes=10)))
def candles_5m(context: dg.AssetExecutionContext, tb: TradingBrainResource) -> dg.MaterializeResult:
    """Closed 5-minute candles of every symbol for the partition's day (incremental upsert)."""
    rt = tb.runtime
    start, end = day_window(context)
    now = rt.clock.now()
    report = sync_window(rt.market, rt.store, rt.settings.symbols, "5m", start, end, now=now)
    h = rt.settings.history
    with rt.store.session():  # retention (once a day) and the checks share one connection
        removed = apply_retention(rt.store, now, h.retention_days_5m, h.retention_days_1h)
        checks = candle_check_results(rt, "candles_5m", "5m", start, end, now, freshness=True,
                                      on_stale=lambda o, slots: _halt_stale(rt, o, slots, now))
    meta = _metadata(report, rt) | {f"retention_removed_{k}": v for k, v in removed.items()}
    return dg.MaterializeResult(metadata=meta, check_results=checks)


def _halt_stale(rt: Runtime, outcome: CheckOutcome, slots: list[str], now: datetime) -> None:
    """Stale 5m data: halt entries on every slot (a human resumes), noted in the check."""
    halted = stop_entries(rt, "candles_5m_fresh", outcome, slots, now)
    outcome.metadata["halted_now"] = ", ".join(halted) or "none (already halted)"


def _derived_asset(name: str, timeframe: str) -> dg.AssetsDefinition:
    @dg.asset(name=name, group_name="market", pool=POOL, partitions_def=daily,
              deps=["candles_5m"], kinds={"duckdb"}, check_specs=candle_check_specs(name))
    def _asset(context: dg.AssetExecutionContext, tb: TradingBrainResource) -> dg.MaterializeResult:
        rt = tb.runtime
        start, end = day_window(context)
        now = rt.clock.now()
        five = rt.store.read_candles(rt.settings.symbols, "5m", start, end)
        report = derive_window(rt.market, rt.store, rt.settings.symbols, timeframe, start, end,
                               now=now, five_minute=five)
        checks = candle_check_results(rt, name, timeframe, start, end, now)
        return dg.MaterializeResult(metadata=_metadata(report, rt), check_results=checks)

    _asset.__doc__ = (f"Closed {timeframe} candles: aggregated from complete 5m buckets, "
                      "else fetched.")
    return _asset


candles_1h = _derived_asset("candles_1h", "1h")
candles_1d = _derived_asset("candles_1d", "1d")

LOOKBACK = {"5m": timedelta(minutes=5 * 300), "1h": timedelta(hours=300), "1d": timedelta(days=300)}


@dg.asset(group_name="market", pool=POOL, partitions_def=daily, kinds={"duckdb", "polars"},
          deps=[candles_5m, candles_1h, candles_1d],
          check_specs=[dg.AssetCheckSpec("indicators_finite", asset="indicators", blocking=True)])
def indicators(context: dg.AssetExecutionContext, tb: TradingBrainResource) -> dg.MaterializeResult:
    """EMA/SMA/RSI/MACD/Bollinger/ATR/volume ratio/regime per symbol and timeframe for the day."""
    rt = tb.runtime
    start, end = day_window(context)
    rows, last = 0, None
    for tf, back in LOOKBACK.items():
        candles = rt.store.read_candles(rt.settings.symbols, tf, start - back, end)
        if candles.is_empty():
            continue
        try:
            ind = compute_indicators(candles)
        except ValueError as e:  # the indicator library may only raise builtins
            raise DataError(f"indicators for {tf}: {e}") from e
        ind = ind.filter(ind["ts"] >= start)
        rows += rt.store.upsert_indicators(ind)
        last = ind if tf == "5m" else last
    outcome = market_checks.finite_indicators(
        rt.store.read_indicators(rt.settings.symbols, "5m", start, end))
    regimes = (dict(last.sort("ts").group_by("symbol").agg(pl.col("regime").last()).iter_rows())
               if last is not None and last.height else {})
    return dg.MaterializeResult(
        metadata={"rows": rows, "regimes": ", ".join(f"{s}={r}" for s, r in sorted(regimes.items()))
                  or "none"},
        check_results=[to_result("indicators_finite", outcome)])
