"""Trading assets of the scan (DESIGN §5-§6): `scan_signals` and `order_intents`.

One multi-asset step (daily partitions like the market assets, pool ``warehouse``) because the
scan, its signals and its intents are written in ONE transaction (``Store.record_scan``):
1. read the active version (and shadow slots) from ``strategy_versions``, the newest closed 5m
   bars (as many as the largest ``WARMUP_BARS``), the pairs, each slot's account and risk state;
2. close the connection and run ``engine.scan.run_scan`` — every strategy in its sandbox worker
   (one persistent worker per version per process, cached by source sha256);
3. record the scan, signals and intents (deterministic ids: a rerun writes nothing new), the risk
   events and the slots' risk states.
A run whose partition is not the day of the newest closed bar (an old partition re-executed)
decides nothing: the scan always decides on the bars closed at the clock's ``now``.
"""


from collections import OrderedDict
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from typing import Any

import dagster as dg

from trading_brain.defs.market.partitions import daily, day_window
from trading_brain.defs.resources import TradingBrainResource
from trading_brain.domain.risk import PortfolioView, RiskState
from trading_brain.engine.registry import parse_ref
from trading_brain.engine.scan import (
    BAR,
    INDICATOR_BARS,
    SLOTS,
    ScanResult,
    SlotInput,
    run_scan,
    scan_bar_time,
)
from trading_brain.errors import ConfigError
from trading_brain.ports import SignalSource
from trading_brain.research import sandbox_opener

POOL = "warehouse"
MAX_WORKERS = 4  # the active version + three shadow slots
_WORKERS: OrderedDict[str, SignalSource] = OrderedDict()


class ScanConfig(dg.Config):
    """Extra shadow slots for this run, e.g. ``["shadow1=ema_rsi_volume@1"]``."""

    shadows: list[str] = []


def strategy_worker(settings: Any, row: dict[str, Any]) -> SignalSource:
    """The sandboxed source of a ``strategy_versions`` row; one worker per sha256 and process."""
    key = row["sha256"]
    if key in _WORKERS:
        _WORKERS.move_to_end(key)
        return _WORKERS[key]
    _WORKERS[key] = sandbox_opener(settings)(row["source"])
    while len(_WORKERS) > MAX_WORKERS:
        _WORKERS.popitem(last=False)[1].close()
    return _WORKERS[key]


def shadow_slots(rt: Any) -> list[tuple[str, str, int]]:
    """(slot, strategy_id, version) of candidates in paper test; the evolution issue fills it."""
    return []


def _parse_shadows(entries: list[str]) -> list[tuple[str, str, int]]:
    """``["shadow1=ID@V", ...]`` -> (slot, strategy_id, version); ConfigError names the entry."""
    out = []
    for entry in entries:
        slot, _, ref = entry.partition("=")
        sid, ver = parse_ref(ref.strip()) if ref.strip() else ("", None)
        if slot.strip() not in SLOTS[1:] or ver is None:
            raise ConfigError(f"shadow slot {entry!r}: expected SLOT=ID@VERSION with SLOT in "
                              f"{', '.join(SLOTS[1:])}")
        out.append((slot.strip(), sid, ver))
    return out


def slot_account(rt: Any, slot: str, marks: dict[str, Decimal], pairs: dict,
                 now: datetime) -> tuple[PortfolioView, RiskState]:
    """The slot's portfolio (from the ledger) and persisted risk state; the slot's starting
    capital (``settings.starting_cash``) is deposited once, even before the executor first runs."""
    store, cash = rt.store, Decimal(repr(rt.settings.starting_cash))
    fee = Decimal(repr(max((p.fee_taker for p in pairs.values()), default=0.0)))
    store.ensure_deposit(slot, cash, now)
    return (store.portfolio_view(slot, marks, fee_rate=fee),
            store.load_risk_state(slot) or RiskState())


def _persist_risk(rt: Any, result: ScanResult, now: datetime) -> int:
    """Store each slot's risk events and new state; return the number of new events."""
    new = 0
    for slot, state in result.states.items():
        new += rt.store.record_risk_events(slot, result.events.get(slot, []))
        rt.store.save_risk_state(slot, state, now)
    return new


def _load(rt: Any, config: ScanConfig, now: datetime) -> tuple[list, dict, dict, Any, list[str]]:
    """(slots as (name, version row, portfolio, risk state), bars per symbol, pairs,
    5m indicators, notes), all read in one warehouse session."""
    store, symbols = rt.store, rt.settings.symbols
    bar_time = scan_bar_time(now)
    shadows = _parse_shadows(config.shadows)
    with store.session():
        active = store.active_version()
        refs = [("active", *active), *shadow_slots(rt), *shadows] if active else []
        rows = []
        for slot, sid, ver in refs:
            row = store.strategy_version(sid, ver)
            if row is None:
                raise ConfigError(f"slot {slot}: unknown strategy version {sid}@{ver}")
            rows.append((slot, row))
        n = max([INDICATOR_BARS, *(r["warmup_bars"] for _, r in rows)])
        candles = store.read_candles(symbols, "5m", bar_time - BAR * (2 * n + 288),
                                     bar_time + BAR)
        pairs = store.read_asset_pairs()
        indicators = store.read_indicators(symbols, "5m", bar_time - BAR * 12, bar_time + BAR)
        bars = {s: frame.tail(n) for (s,), frame in candles.partition_by(
            "symbol", as_dict=True, include_key=False).items()}
        bars |= {s: candles.clear().drop("symbol") for s in symbols if s not in bars}
        marks = {s: Decimal(repr(float(b["close"][-1]))) for s, b in bars.items() if b.height}
        slots = [(slot, row, *slot_account(rt, slot, marks, pairs, now)) for slot, row in rows]
    return slots, bars, pairs, indicators, [] if active else ["no active strategy version"]


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
    accounts, bars, pairs, indicators, notes = _load(rt, config, now)
    slots = [SlotInput(slot, strategy_worker(rt.settings, row), portfolio, state,
                       params=row["params_default"])
             for slot, row, portfolio, state in accounts]
    limits = rt.risk_limits
    result = run_scan(bars, slots, limits, pairs, now, indicators)  # no connection held
    with rt.store.session():
        new = rt.store.record_scan(result.scan, result.signals, result.intents)
        events = _persist_risk(rt, result, now)
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
        "duration_ms": round(scan["duration_ms"], 1), "notes": "; ".join(notes) or "none"})
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


def _intents_md(result: ScanResult) -> str:
    lines = ["| slot | symbol | action | quantity | limit |", "|---|---|---|---|---|"]
    lines += [f"| {i.slot} | {i.symbol} | {i.action} | {i.quantity} | {i.limit_price} |"
              for i in result.intents]
    return "\n".join(lines) if result.intents else "no intents"
