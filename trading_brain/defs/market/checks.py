"""Asset-check specs and results for candle assets (evaluated inside the asset's run).

Severity ERROR (DESIGN §5: trading must stop on stale, gapped or invalid data), except the
quarantine report, a WARN: bad rows were kept out, but someone should look at them.
Blocking — downstream assets of the run are skipped — for freshness, validity and duplicates;
gaps are ERROR but not blocking, so one lost bar alerts without halting the day's scans.
``candles_5m_fresh`` is the one freshness check (``engine.trading_checks.data_fresh``); when it
fails, ``on_stale`` (the asset's: halt entries on every slot) runs and may add metadata.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import dagster as dg

from trading_brain.app.runtime import Runtime
from trading_brain.engine import market_checks
from trading_brain.engine import trading_checks as tc
from trading_brain.engine.market_checks import CheckOutcome


def candle_check_specs(asset: str, freshness: bool = False) -> list[dg.AssetCheckSpec]:
    specs = [
        dg.AssetCheckSpec(f"{asset}_ohlc_valid", asset=asset, blocking=True,
                          description="low ≤ open, close ≤ high; prices positive and finite"),
        dg.AssetCheckSpec(f"{asset}_no_duplicates", asset=asset, blocking=True,
                          description="one candle per (symbol, open time)"),
        dg.AssetCheckSpec(f"{asset}_no_gaps", asset=asset,
                          description="no missing bars beyond what the venue omitted"),
        dg.AssetCheckSpec(f"{asset}_quarantine", asset=asset,
                          description="WARN when rows of the day were quarantined by validation"),
    ]
    if freshness:
        specs.append(dg.AssetCheckSpec(
            f"{asset}_fresh", asset=asset, blocking=True,
            description="ERROR: newest 5m candle closed ≤ 15 minutes ago while the market is "
                        "live. Failure skips the scan and halts entries on every slot."))
    return specs


def to_result(name: str, outcome: CheckOutcome,
              severity: dg.AssetCheckSeverity = dg.AssetCheckSeverity.ERROR) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        check_name=name, passed=outcome.passed, severity=severity,
        description=outcome.description,
        metadata={k: v for k, v in outcome.metadata.items() if v is not None})


def candle_check_results(
    rt: Runtime, asset: str, timeframe: str, start: datetime, end: datetime, now: datetime,
    freshness: bool = False, on_stale: Callable[[CheckOutcome, list[str]], None] | None = None,
) -> list[dg.AssetCheckResult]:
    store, symbols = rt.store, rt.settings.symbols
    with store.session():
        audit = store.candle_audit(timeframe, start, end)
        stored = store.read_candles(symbols, timeframe, start, end).select("symbol", "ts")
        omitted = store.read_omissions(symbols, timeframe, start, end)
        latest = store.latest_candle_ts("5m") if freshness else {}
        slots = store.known_slots() if freshness else []
    results = [
        to_result(f"{asset}_ohlc_valid", market_checks.validity(audit, timeframe)),
        to_result(f"{asset}_no_duplicates", market_checks.duplicates(audit, timeframe)),
        to_result(f"{asset}_no_gaps", market_checks.gaps(stored, omitted, timeframe, start, end)),
        to_result(f"{asset}_quarantine", market_checks.quarantine(audit, timeframe),
                  dg.AssetCheckSeverity.WARN),
    ]
    if freshness:
        current = start <= now - market_checks.FRESHNESS_LIMIT < end or start <= now < end
        outcome, failing = tc.data_fresh(latest, symbols, now, rt.market_is_live and current,
                                         slots)
        if not outcome.passed and on_stale is not None:
            on_stale(outcome, failing)
        results.append(to_result(f"{asset}_fresh", outcome))
    return results
