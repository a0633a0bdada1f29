"""The scan service of the trading loop (DESIGN §6.1), shared by the Dagster ``scan`` asset and
``trading-brain simulate``; no Dagster import.

``scan_once(rt, now, shadows=())`` composes one scan over a ``runtime.Runtime``:
1. read the active version (and shadow slots) from ``strategy_versions``, the newest closed 5m
   bars (as many as the largest ``WARMUP_BARS``), the pairs, each slot's account and risk state
   — in one warehouse session;
2. run ``engine.scan.run_scan`` — every strategy in its sandbox worker (one persistent worker per
   version per process, cached by source sha256, at most ``MAX_WORKERS``);
3. record the scan, signals and intents (deterministic ids: a rerun writes nothing new), the risk
   events and the slots' risk states — in one session.
``PrimedSource`` wraps a worker for offline runs (``simulate``): one ``generate`` call per symbol
over a long span answers every later window ending inside it (see its docstring).
It returns a ``ScanOutcome``: the ``ScanResult``, the number of new intents and risk events, and
notes (e.g. ``no active strategy version``). ``shadows`` are extra ``"SLOT=ID@V"`` entries; a bad
entry or an unknown version raises ``ConfigError``.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

import polars as pl

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

MAX_WORKERS = 4  # the active version + three shadow slots
_WORKERS: OrderedDict[str, SignalSource] = OrderedDict()


@dataclass
class ScanOutcome:
    """One recorded scan: its result, what was new in the warehouse, and notes."""

    result: ScanResult
    new_intents: int = 0
    new_events: int = 0
    notes: list[str] = field(default_factory=list)


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


def close_workers() -> None:
    """Stop every cached sandbox worker (end of a simulation, tests)."""
    while _WORKERS:
        _WORKERS.popitem(last=False)[1].close()


def shadow_slots(rt: Any) -> list[tuple[str, str, int]]:
    """(slot, strategy_id, version) of candidates in paper test; the evolution issue fills it."""
    return []


def parse_shadows(entries: Sequence[str]) -> list[tuple[str, str, int]]:
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


def load_inputs(rt: Any, now: datetime, shadows: Sequence[str] = ()
                ) -> tuple[list, dict, dict, Any, list[str]]:
    """(slots as (name, version row, portfolio, risk state), bars per symbol, pairs,
    5m indicators, notes), all read in one warehouse session."""
    store, symbols = rt.store, rt.settings.symbols
    bar_time = scan_bar_time(now)
    extra = parse_shadows(shadows)
    with store.session():
        active = store.active_version()
        refs = [("active", *active), *shadow_slots(rt), *extra] if active else []
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


def persist_risk(rt: Any, result: ScanResult, now: datetime) -> int:
    """Store each slot's risk events and new state; return the number of new events."""
    new = 0
    for slot, state in result.states.items():
        new += rt.store.record_risk_events(slot, result.events.get(slot, []))
        rt.store.save_risk_state(slot, state, now)
    return new


Worker = Callable[[Any, dict[str, Any]], SignalSource]


def scan_once(rt: Any, now: datetime, shadows: Sequence[str] = (),
              worker: Worker = strategy_worker) -> ScanOutcome:
    """Load, run and record one scan deciding on the bars closed at ``now``; ``worker`` maps
    (settings, version row) to its signal source (default: the cached sandbox worker)."""
    accounts, bars, pairs, indicators, notes = load_inputs(rt, now, shadows)
    slots = [SlotInput(slot, worker(rt.settings, row), portfolio, state,
                       params=row["params_default"])
             for slot, row, portfolio, state in accounts]
    result = run_scan(bars, slots, rt.risk_limits, pairs, now, indicators)  # no connection held
    with rt.store.session():
        new = rt.store.record_scan(result.scan, result.signals, result.intents)
        events = persist_risk(rt, result, now)
    return ScanOutcome(result, new, events, notes)


KEY_COLUMNS = ("ts", "open", "high", "low", "close", "volume")


class PrimedSource:
    """A ``SignalSource`` answering the scan's windows from one ``generate`` call per symbol over
    a longer span (``prime``; ``simulate`` primes a day at a time), keyed by each window's last
    bar. Valid because every registered version passed the warm-up check (a window of
    ``warmup_bars`` bars reproduces the full-history decision) and the look-ahead check (row t
    depends only on bars <= t); a window it was not primed for goes to the real worker."""

    def __init__(self, inner: Any, sha: str) -> None:
        self.inner, self.sha = inner, sha
        self.strategy_id, self.version = inner.strategy_id, inner.version
        self.warmup_bars = inner.warmup_bars
        self._rows: dict[tuple, pl.DataFrame] = {}
        self._params: dict[str, Any] | None = None

    def prime(self, frames: dict[str, pl.DataFrame], params: dict[str, Any] | None) -> None:
        self._rows, self._params = {}, params
        for bars in frames.values():
            if bars.height < self.warmup_bars:
                continue
            out = self.inner.generate(bars, params)
            keys = bars.select(KEY_COLUMNS).rows()
            for i in range(self.warmup_bars - 1, bars.height):
                self._rows[keys[i]] = out.slice(i, 1)

    def generate(self, bars: pl.DataFrame, params: dict[str, Any] | None = None) -> pl.DataFrame:
        hit = self._rows.get(bars.select(KEY_COLUMNS).row(-1)) if bars.height else None
        if hit is not None and params == self._params:
            return hit
        return self.inner.generate(bars, params)

    def close(self) -> None:
        self.inner.close()
