"""The scan of the trading loop (DESIGN §6.1): strategy signals -> risk shell -> order intents.

``run_scan(bars, slots, limits, pairs, now)`` is pure apart from the strategy calls it makes on
the ``SignalSource`` of each slot (the sandbox worker in production) and a perf counter for the
recorded duration. It never reads a clock or the warehouse: the caller passes everything in.

Contract:
- the decision bar is the newest CLOSED 5m bar at ``now``: ``bar_time = floor(now, 5m) - 5m``;
- per slot (``"active"`` and up to three ``"shadow1".."shadow3"``) and symbol, the strategy runs
  over exactly the slot's ``warmup_bars`` newest bars with open time <= ``bar_time`` (all the
  slot's symbols in ONE ``generate_many`` call when the source has it, else ``generate`` per
  symbol); the decision is the LAST row of its output. A symbol whose newest bar is not
  ``bar_time`` (``stale_data``) or that has fewer than ``warmup_bars`` bars
  (``insufficient_history``) is not run; a strategy that fails
  (``StrategyError``/``SandboxViolation``) is recorded as ``strategy_error``; all three are
  recorded as holds with that reason, and the scan goes on;
- before the risk shell, each slot's ``RiskState`` is brought to ``now`` with its own portfolio's
  equity (``update_state_on_equity``: day rollover, peak, halts); the new states are returned;
- ``enter`` and ``exit`` become risk ``Proposal``s (price = the decision bar's close) evaluated
  with ``evaluate_batch`` against the slot's own portfolio; an ``exit`` with no position (and no
  pending entry) is a no-op, not a proposal (``risk_decision`` null, ``risk_reason`` ``noop``);
  so is a decision whose intent is already pending in the slot's portfolio (a rerun of this
  scan: ``already_pending``), so a rerun adds no intent and no risk event.
  An entry while a position is open is rejected by the shell (``duplicate_position``);
- intent ids are ``domain.intents.intent_id_for(strategy, version, slot, symbol, bar_time,
  action)`` and the scan id depends only on ``bar_time`` and the slots' versions, so a rerun of
  the same scan yields the same ids (storage ignores them the second time);
- one ``signals`` row per slot and symbol, holds included (``risk_decision`` null for holds);
- the ``scan`` record (table ``scans``) carries counts and ``details``: per symbol the indicator
  state of the newest bar (``engine.indicators``), each slot's signal, regime label and risk
  outcome, and the lists of rejections (with reasons), no-ops and errors.
No slots (no active version) gives a scan record with ``details.no_active_version`` and nothing
else.
"""

from __future__ import annotations

import hashlib
import math
import time
from bisect import bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any

import polars as pl

from trading_brain.domain.instruments import AssetPair
from trading_brain.domain.intents import OrderIntent, Slot, intent_id_for
from trading_brain.domain.risk import (
    Decision,
    PortfolioView,
    Proposal,
    RiskEvent,
    RiskLimits,
    RiskState,
)
from trading_brain.engine.indicators import compute_indicators
from trading_brain.engine.risk import evaluate_batch
from trading_brain.engine.risk_state import check_utc, update_state_on_equity
from trading_brain.errors import ConfigError, SandboxViolation, StrategyError
from trading_brain.ports import SignalSource

SLOTS: tuple[Slot, ...] = ("active", "shadow1", "shadow2", "shadow3")
BAR = timedelta(minutes=5)
INDICATOR_BARS = 300  # enough history for every indicator and the regime of the newest bar
BAR_COLUMNS = ("ts", "open", "high", "low", "close", "volume")  # what a strategy is given
_BAR_LIST = list(BAR_COLUMNS)
_STATE_KEYS = ("ema_9", "ema_21", "ema_50", "rsi_14", "macd_hist", "atr_14",
               "volume_ratio", "bb_upper", "bb_lower")
STATE_COLUMNS = ("symbol", "ts", "regime", *_STATE_KEYS)  # the indicator columns a scan records


@dataclass(frozen=True)
class SlotInput:
    """One strategy version trading in one slot, with that slot's own account and risk state."""

    slot: str
    source: SignalSource
    portfolio: PortfolioView
    state: RiskState
    params: dict[str, Any] | None = None


@dataclass
class ScanResult:
    """What one scan decided: the ``scans`` record, ``signals`` rows, intents and risk events."""

    scan: dict[str, Any]
    signals: list[dict[str, Any]] = field(default_factory=list)
    intents: list[OrderIntent] = field(default_factory=list)
    events: dict[str, list[RiskEvent]] = field(default_factory=dict)
    states: dict[str, RiskState] = field(default_factory=dict)
    decisions: list[Decision] = field(default_factory=list)

    @property
    def scan_id(self) -> str:
        return str(self.scan["scan_id"])


def scan_bar_time(now: datetime) -> datetime:
    """Open time of the newest 5m bar closed at ``now`` (UTC)."""
    check_utc(now)
    floor = now.replace(minute=now.minute - now.minute % 5, second=0, microsecond=0)
    return floor - BAR


def scan_id_for(bar_time: datetime, versions: Sequence[tuple[str, str, int]]) -> str:
    """Deterministic id of the scan of ``bar_time`` by ``(slot, strategy_id, version)``s."""
    parts = "|".join(f"{s}={sid}@{v}" for s, sid, v in sorted(versions)) or "none"
    key = f"{bar_time.isoformat()}|{parts}"
    return "scan-" + hashlib.sha256(key.encode()).hexdigest()[:24]


def run_scan(
    bars: Mapping[str, pl.DataFrame], slots: Sequence[SlotInput], limits: RiskLimits,
    pairs: Mapping[str, AssetPair], now: datetime, indicators: pl.DataFrame | None = None,
) -> ScanResult:
    """Run every slot's strategy over every symbol, then the risk shell (see module docstring).

    ``bars``: per symbol, frames with ``ts, open, high, low, close, volume`` sorted by ``ts``
    (other columns are dropped; exactly ``BAR_COLUMNS`` is the cheapest).
    ``indicators``: rows of the ``indicators`` table (5m) already computed for these bars, with
    at least ``STATE_COLUMNS``; when None they are computed here from the newest
    ``INDICATOR_BARS`` bars.
    """
    t0 = time.perf_counter()
    bar_time = scan_bar_time(now)
    _check_slots(slots)
    versions = [(s.slot, s.source.strategy_id, int(s.source.version)) for s in slots]
    scan_id = scan_id_for(bar_time, versions)
    symbols = sorted(bars)
    windows = {sym: _closed(bars[sym], bar_time) for sym in symbols}
    details: dict[str, Any] = {
        "bar_time": bar_time.isoformat(), "no_active_version": not slots,
        "slots": {slot: f"{sid}@{v}" for slot, sid, v in versions},
        "symbols": _indicator_state(windows, bar_time, indicators),
        "rejected": [], "noops": [], "errors": [], "halts": {}}
    result = ScanResult(scan={})
    for slot in slots:
        _run_slot(slot, windows, limits, pairs, now, bar_time, scan_id, details, result)
    counts = {"signals": sum(s["action"] != "hold" for s in result.signals),
              "intents": len(result.intents),
              "rejected": sum(not d.approved for d in result.decisions)}
    result.scan = {"scan_id": scan_id, "bar_time": bar_time, "started_at": now,
                   "duration_ms": (time.perf_counter() - t0) * 1000.0, "symbols": len(symbols),
                   **counts, "details": details}
    return result


def _check_slots(slots: Sequence[SlotInput]) -> None:
    names = [s.slot for s in slots]
    bad = [n for n in names if n not in SLOTS]
    if bad or len(set(names)) != len(names):
        raise ConfigError(f"scan slots must be unique names among {list(SLOTS)}, got {names}")


def _closed(df: pl.DataFrame, bar_time: datetime) -> pl.DataFrame:
    """One symbol's bars with open time <= ``bar_time`` (extra columns dropped)."""
    out = df if df.columns == _BAR_LIST else df.select(_BAR_LIST)
    ts = out.get_column("ts")
    if not ts.is_sorted():
        out = out.sort("ts")
        ts = out.get_column("ts")
    return out.filter(pl.col("ts") <= bar_time) if out.height and ts[-1] > bar_time else out


def _indicator_state(windows: Mapping[str, pl.DataFrame], bar_time: datetime,
                     indicators: pl.DataFrame | None) -> dict[str, dict[str, Any]]:
    """Per symbol: the newest bar's time, close, indicators and regime."""
    out: dict[str, dict[str, Any]] = {}
    for s, w in windows.items():
        n = w.height
        out[s] = {"newest_bar": w.get_column("ts")[-1].isoformat() if n else None, "bars": n,
                  "close": float(w.get_column("close")[-1]) if n else None, "signals": {}}
    if indicators is None:
        frames = [w.tail(INDICATOR_BARS).with_columns(pl.lit(s).alias("symbol"),
                                                      pl.lit("5m").alias("timeframe"))
                  for s, w in windows.items() if w.height]
        indicators = compute_indicators(pl.concat(frames)) if frames else None
    if indicators is None or indicators.is_empty():
        return out
    stamps, limit = _epochs(indicators.get_column("ts"), bar_time)
    if stamps is None:  # not a zoned datetime column: let polars compare
        indicators = indicators.filter(pl.col("ts") <= bar_time)
        stamps, limit = indicators.get_column("ts").to_list(), None
    last: dict[str, tuple[Any, int]] = {}  # symbol -> (newest ts, its last row)
    symbols = indicators.get_column("symbol").to_list()
    if limit is not None and indicators.get_column("ts").is_sorted():
        # ts ascending: walking back from the last row <= bar_time, a symbol's first row seen is
        # its newest (the last of equal stamps, as the general loop below picks)
        i = bisect_right(stamps, limit)
        while i > 0 and len(last) < len(out):
            i -= 1
            if symbols[i] in out and symbols[i] not in last:
                last[symbols[i]] = (stamps[i], i)
    else:
        for i, (sym, ts) in enumerate(zip(symbols, stamps, strict=True)):
            if (limit is None or ts <= limit) and sym in out and (
                    sym not in last or ts >= last[sym][0]):
                last[sym] = (ts, i)
    names = indicators.columns
    keys = [k for k in _STATE_KEYS if k in names]
    for _ts, i in last.values():
        row = indicators.row(i, named=True)
        out[row["symbol"]].update({
            "indicators_at": row["ts"].isoformat(), "regime": row["regime"],
            "indicators": {k: _round(row[k]) for k in keys}})
    return out


_UNITS = {"ns": 1_000, "us": 1, "ms": Fraction(1, 1_000)}  # per microsecond
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _epochs(ts: pl.Series, bar_time: datetime) -> tuple[list[int] | None, int | None]:
    """A zoned datetime column as its integer instants, and ``bar_time`` on the same scale
    (rounded down: ``t <= bar_time`` holds exactly when ``int(t) <= limit``); (None, None) for
    any other column. No polars expression is evaluated (each would cost a lazy collect)."""
    dtype = ts.dtype
    if not isinstance(dtype, pl.Datetime) or dtype.time_zone is None or ts.null_count():
        return None, None
    micros = (bar_time - _EPOCH) // timedelta(microseconds=1)
    return ts.cast(pl.Int64).to_list(), math.floor(micros * _UNITS[dtype.time_unit])


def _round(x: float | None) -> float | None:
    return None if x is None else float(f"{x:.8g}")


def _run_slot(slot: SlotInput, windows: Mapping[str, pl.DataFrame], limits: RiskLimits,
              pairs: Mapping[str, AssetPair], now: datetime, bar_time: datetime, scan_id: str,
              details: dict[str, Any], result: ScanResult) -> None:
    src = slot.source
    sid, ver, warmup = src.strategy_id, int(src.version), int(src.warmup_bars)
    state, events = update_state_on_equity(slot.state, slot.portfolio.equity, now, limits)
    if state.halted:
        details["halts"][slot.slot] = sorted(state.halts) + (["kill_switch"] if state.kill_switch
                                                             else [])
    rows: dict[str, dict[str, Any]] = {}
    proposals: list[Proposal] = []
    pending = {o.intent_id for o in slot.portfolio.pending}
    decided = _decide_all(src, slot.params, windows, warmup, bar_time)
    for sym, window in windows.items():
        last, problem = decided[sym]
        row = _signal_row(scan_id, sid, ver, slot.slot, sym, bar_time, last)
        rows[sym] = row
        if problem is not None:
            row["risk_reason"] = problem
            details["errors"].append({"slot": slot.slot, "symbol": sym, "error": problem})
            continue
        if row["action"] == "hold":
            continue
        if row["action"] == "exit" and slot.portfolio.held(sym) <= 0:
            row["risk_reason"] = "noop"
            details["noops"].append({"slot": slot.slot, "symbol": sym,
                                     "why": "exit signal without a position"})
            continue
        proposal = _proposal(row, sid, ver, slot.slot, sym, bar_time, window)
        if proposal.intent_id in pending:  # this scan already ran: its intent is waiting
            row["risk_reason"] = "already_pending"
            details["noops"].append({"slot": slot.slot, "symbol": sym,
                                     "why": f"intent {proposal.intent_id} already pending"})
            continue
        proposals.append(proposal)
    batch = evaluate_batch(proposals, slot.portfolio, state, limits, pairs, now)
    for d in batch.decisions:
        row = rows[d.symbol]
        row["risk_decision"], row["risk_reason"] = d.status, d.reason
        if d.approved:
            result.intents.append(_intent(d, row, scan_id, sid, ver, windows[d.symbol], now))
        else:
            details["rejected"].append({"slot": slot.slot, "symbol": d.symbol,
                                        "action": d.action, "reason": d.reason,
                                        "message": d.message})
    for sym, row in rows.items():
        details["symbols"][sym].setdefault("signals", {})[slot.slot] = {
            "action": row["action"], "regime": row["regime"], "confidence": row["confidence"],
            "decision": row["risk_decision"], "reason": row["risk_reason"]}
    result.signals.extend(rows[s] for s in sorted(rows))
    result.decisions.extend(batch.decisions)
    result.events[slot.slot] = [*events, *batch.events]
    result.states[slot.slot] = state


def _decide_all(src: SignalSource, params: dict[str, Any] | None,
                windows: Mapping[str, pl.DataFrame], warmup: int, bar_time: datetime
                ) -> dict[str, tuple[dict[str, Any] | None, str | None]]:
    """Per symbol: (the last signal row, None) or (None, why no decision was taken).

    The runnable windows go to the source in ONE ``generate_many`` call when it has one (one
    sandbox round trip per slot and scan), else to ``generate`` one by one; a symbol's
    ``StrategyError`` is that symbol's ``strategy_error``, a ``SandboxViolation`` of the batched
    call is every batched symbol's."""
    out: dict[str, tuple[dict[str, Any] | None, str | None]] = {}
    runnable: dict[str, pl.DataFrame] = {}
    for sym, window in windows.items():
        if window.is_empty() or window.get_column("ts")[-1] != bar_time:
            newest = window.get_column("ts")[-1].isoformat() if window.height else "none"
            out[sym] = None, f"stale_data: newest bar {newest}, expected {bar_time.isoformat()}"
        elif window.height < warmup:
            out[sym] = None, f"insufficient_history: {window.height} < {warmup} bars"
        else:
            runnable[sym] = window.tail(warmup)
    many = getattr(src, "generate_many", None)
    if many is None or not runnable:
        for sym, bars in runnable.items():
            out[sym] = _one(src, bars, params)
        return out
    try:
        results = many(runnable, params)
    except (StrategyError, SandboxViolation) as e:
        results = {sym: e for sym in runnable}
    for sym in runnable:
        got = results.get(sym)
        if isinstance(got, pl.DataFrame):
            out[sym] = got.row(got.height - 1, named=True), None
        else:
            err = got if got is not None else "no result for this symbol"
            out[sym] = None, f"strategy_error: {err}"[:500]
    return out


def _one(src: SignalSource, bars: pl.DataFrame, params: dict[str, Any] | None
         ) -> tuple[dict[str, Any] | None, str | None]:
    try:
        out = src.generate(bars, params)
    except (StrategyError, SandboxViolation) as e:
        return None, f"strategy_error: {e}"[:500]
    return out.row(out.height - 1, named=True), None


def _signal_row(scan_id: str, sid: str, ver: int, slot: str, sym: str, bar_time: datetime,
                last: dict[str, Any] | None) -> dict[str, Any]:
    last = last or {"action": "hold", "size": 0.0, "stop_loss": None, "take_profit": None,
                    "intent": "swing", "confidence": 0.0, "regime": None}
    return {"scan_id": scan_id, "strategy_id": sid, "version": ver, "slot": slot,
            "symbol": sym, "bar_time": bar_time, "action": last["action"],
            "size": float(last["size"]), "stop_loss": last["stop_loss"],
            "take_profit": last["take_profit"], "intent": last["intent"],
            "confidence": float(last["confidence"]), "regime": last["regime"],
            "risk_decision": None, "risk_reason": None}


def _price(window: pl.DataFrame) -> Decimal:
    return Decimal(repr(float(window.get_column("close")[-1])))


def _stop(x: float | None) -> float | None:
    """A stop distance of 100 % or more protects nothing: no stop."""
    return x if x is not None and 0 < x < 1 else None


def _proposal(row: dict[str, Any], sid: str, ver: int, slot: str, sym: str, bar_time: datetime,
              window: pl.DataFrame) -> Proposal:
    action = row["action"]
    return Proposal(intent_id=intent_id_for(sid, ver, slot, sym, bar_time, action), symbol=sym,
                    action=action, size=row["size"] if action == "enter" else 1.0,
                    price=_price(window), stop_loss=_stop(row["stop_loss"]),
                    take_profit=row["take_profit"], strategy_version=f"{sid}@{ver}", slot=slot)


def _intent(d: Decision, row: dict[str, Any], scan_id: str, sid: str, ver: int,
            window: pl.DataFrame, now: datetime) -> OrderIntent:
    slot, action = d.slot, d.action
    if slot not in SLOTS or action == "protect":  # never: the scan proposes enter/exit per slot
        raise ValueError(f"scan decision {d.intent_id}: slot {slot!r}, action {action!r}")
    return OrderIntent(intent_id=d.intent_id, scan_id=scan_id, strategy_id=sid, version=ver,
                       slot=slot, symbol=d.symbol, bar_time=row["bar_time"], action=action,
                       quantity=d.quantity, limit_price=d.limit_price or None,
                       reference_price=_price(window), stop_loss=_stop(d.stop_loss),
                       take_profit=d.take_profit, intent_type=row["intent"],
                       confidence=row["confidence"], created_at=now)
