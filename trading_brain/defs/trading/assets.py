"""Trading assets of the scan (DESIGN §5-§6): `scan_signals` and `order_intents`.

One multi-asset step (daily partitions like the market assets, pool ``warehouse``) because the
scan, its signals and its intents are written in ONE transaction (``Store.record_scan``). The
composition lives in ``trading_brain.app.scan.scan_once`` (shared with ``simulate``); this asset
only checks the partition and turns the outcome into metadata and the check:
1. read the active version (and shadow slots) from ``strategy_versions``, the newest closed 5m
   bars (as many as the largest ``WARMUP_BARS``), the pairs, each slot's account and risk state;
2. close the connection and run ``engine.scan.run_scan`` — every strategy in its sandbox worker
   (one persistent worker per version per process, cached by source sha256);
3. record the scan, signals and intents (deterministic ids: a rerun writes nothing new), the risk
   events and the slots' risk states.
A run whose partition is not the day of the newest closed bar (an old partition re-executed)
decides nothing: the scan always decides on the bars closed at the clock's ``now``.
``scan_signals`` metadata carries ``decisions``: one Markdown row per slot and symbol — the
strategy's signal, the action taken (intent, rejected, none) and why (no signal, risk rejection
reason, stale or short data, strategy error, no position to exit, intent already pending).
"""


from collections.abc import Iterator

import dagster as dg

from trading_brain.app.scan import scan_once
from trading_brain.defs.market.partitions import daily, day_window
from trading_brain.defs.resources import WAREHOUSE_POOL as POOL
from trading_brain.defs.resources import TradingBrainResource
from trading_brain.engine.scan import ScanResult, scan_bar_time


class ScanConfig(dg.Config):
    """Extra shadow slots for this run, e.g. ``["shadow1=ema_rsi_volume@1"]``."""

    shadows: list[str] = []


@dg.multi_asset(
    specs=[dg.AssetSpec("scan_signals", group_name="trading", kinds={"duckdb", "polars"},
                        deps=["indicators", "candles_5m", "asset_pairs"],
                        description="Every scan (time, duration, indicator state, regime, "
                                    "signals, rejections) and one signal per symbol and slot."),
           dg.AssetSpec("order_intents", group_name="trading", kinds={"duckdb"},
                        deps=["scan_signals"],
                        description="Risk-approved intents with deterministic ids (pending "
                                    "until the executor takes them).")],
    partitions_def=daily, pool=POOL, can_subset=False, name="scan",
    check_specs=[dg.AssetCheckSpec("scan_strategies_ran", asset="scan_signals",
                                   description="every slot produced a decision for every "
                                               "symbol (no strategy error, stale or short data)")])
def scan(context: dg.AssetExecutionContext, config: ScanConfig,
         tb: TradingBrainResource) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
    """Run the active strategy (and shadow slots) through the risk shell into order intents."""
    rt = tb.runtime
    now = rt.clock.now()
    start, end = day_window(context)
    if not start <= scan_bar_time(now) < end:
        yield from _skipped(f"partition {context.partition_key} is not the day of the newest "
                            f"closed bar at {now.isoformat()}")
        return
    outcome = scan_once(rt, now, config.shadows)
    result, new, events, notes = (outcome.result, outcome.new_intents, outcome.new_events,
                                  outcome.notes)
    yield from _results(result, new, events, notes)


def _skipped(why: str) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
    yield dg.MaterializeResult(asset_key="scan_signals", metadata={"skipped": why})
    yield dg.MaterializeResult(asset_key="order_intents", metadata={"skipped": why})
    yield dg.AssetCheckResult(check_name="scan_strategies_ran", asset_key="scan_signals",
                              passed=True, description=f"skipped: {why}")


def _results(result: ScanResult, new: int, events: int,
             notes: list[str]) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
    scan, details = result.scan, result.scan["details"]
    reasons: dict[str, int] = {}
    for r in details["rejected"]:
        reasons[r["reason"]] = reasons.get(r["reason"], 0) + 1
    yield dg.MaterializeResult(asset_key="scan_signals", metadata={
        "scan_id": scan["scan_id"], "bar_time": scan["bar_time"].isoformat(),
        "slots": ", ".join(f"{k}={v}" for k, v in details["slots"].items()) or "none",
        "symbols": scan["symbols"], "signals": scan["signals"],
        "holds": sum(s["action"] == "hold" for s in result.signals),
        "rejected": scan["rejected"], "noops": len(details["noops"]),
        "rejections": ", ".join(f"{k}={v}" for k, v in sorted(reasons.items())) or "none",
        "risk_events_new": events, "halts": ", ".join(
            f"{k}={'+'.join(v)}" for k, v in details["halts"].items()) or "none",
        "duration_ms": round(scan["duration_ms"], 1), "notes": "; ".join(notes) or "none",
        "decisions": dg.MetadataValue.md(decisions_md(result))})
    yield dg.MaterializeResult(asset_key="order_intents", metadata={
        "scan_id": scan["scan_id"], "intents": len(result.intents), "new_intents": new,
        "intents_table": dg.MetadataValue.md(_intents_md(result))})
    errors = details["errors"]
    yield dg.AssetCheckResult(
        check_name="scan_strategies_ran", asset_key="scan_signals", passed=not errors,
        severity=dg.AssetCheckSeverity.ERROR,
        description=f"{len(errors)} symbol/slot decision(s) missing" if errors else "all ran",
        metadata={"errors": "; ".join(f"{e['slot']} {e['symbol']}: {e['error'][:120]}"
                                      for e in errors[:10]) or "none"})


def _taken(row: dict, rejected: dict[tuple[str, str], dict]) -> tuple[str, str]:
    """(action taken, why) for one signal row of the scan."""
    decision, reason = row.get("risk_decision"), row.get("risk_reason")
    if decision == "approved":
        return f"intent {row['action']}", "risk approved"
    if decision is not None:
        rej = rejected.get((row["slot"], row["symbol"]), {})
        return "rejected", f"risk: {reason}" + (f" ({rej['message']})" if rej.get("message")
                                                else "")
    if reason == "noop":
        return "none", "exit signal without a position"
    if reason == "already_pending":
        return "none", "its intent is already pending"
    if reason:  # stale_data / insufficient_history / strategy_error: ...
        return "none", str(reason)
    return "none", "no signal" if row["action"] == "hold" else "not proposed"


def decisions_md(result: ScanResult) -> str:
    """Markdown table: slot, symbol, signal, action taken, reason (one row per decision)."""
    if not result.signals:
        return "no symbols scanned"
    rejected = {(r["slot"], r["symbol"]): r for r in result.scan["details"]["rejected"]}
    lines = ["| slot | symbol | signal | action taken | reason |", "|---|---|---|---|---|"]
    for row in result.signals:
        taken, why = _taken(row, rejected)
        why = why.replace("|", "/").replace("\n", " ")[:160]
        lines.append(f"| {row['slot']} | {row['symbol']} | {row['action']} | {taken} | {why} |")
    return "\n".join(lines)


def _intents_md(result: ScanResult) -> str:
    lines = ["| slot | symbol | action | quantity | limit |", "|---|---|---|---|---|"]
    lines += [f"| {i.slot} | {i.symbol} | {i.action} | {i.quantity} | {i.limit_price} |"
              for i in result.intents]
    return "\n".join(lines) if result.intents else "no intents"
