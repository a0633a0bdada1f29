"""The scan service of the trading loop (DESIGN §6.1), shared by the Dagster ``scan`` asset and
``trading-brain simulate``; no Dagster import.

``scan_once(rt, now, shadows=())`` composes one scan over a ``runtime.Runtime`` (its settings,
risk limits and store; ``store=`` another ``scan_inputs.ScanStore`` holding the same rows, e.g.
``simulate``'s in-memory book):
1. read the active version (and shadow slots) from ``strategy_versions``, the newest closed 5m
   bars (as many as the largest ``WARMUP_BARS``), the pairs, each slot's account and risk state
   — in one warehouse session;
2. run ``engine.scan.run_scan`` — every strategy in its sandbox worker from the runtime's
   sandbox-worker service (``rt.workers``: one pooled worker per version, keyed by source
   sha256; ``worker`` overrides the choice, e.g. simulate's day-primed source);
3. record the scan, signals and intents (deterministic ids: a rerun writes nothing new), the risk
   events and the slots' risk states — in one session.
Step 1 reads through ``inputs`` (``scan_inputs``: the warehouse by default; ``simulate`` passes a
``CachedInputs`` that returns the same rows from memory).
``PrimedSource`` wraps a worker for offline runs (``simulate``): one ``generate_many`` call over
a long span per symbol answers every later window ending inside it (see its docstring).
No module-level state: workers live in the runtime's service, which its owner closes.
It returns a ``ScanOutcome``: the ``ScanResult``, the number of new intents and risk events, and
notes (e.g. ``no active strategy version``). ``shadows`` are extra ``"SLOT=ID@V"`` entries; a bad
entry or an unknown version raises ``ConfigError``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import polars as pl

from trading_brain.app.scan_inputs import LIVE, ScanStore, WarehouseInputs
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
from trading_brain.errors import ConfigError, StrategyError
from trading_brain.ports import SignalSource

if TYPE_CHECKING:
    from trading_brain.app.runtime import Runtime



@dataclass
class ScanOutcome:
    """One recorded scan: its result, what was new in the warehouse, and notes."""

    result: ScanResult
    new_intents: int = 0
    new_events: int = 0
    notes: list[str] = field(default_factory=list)


def version_worker(rt: Runtime, row: dict[str, Any]) -> SignalSource:
    """The sandboxed source of a ``strategy_versions`` row, from the runtime's worker service."""
    return rt.workers.get(f"{row['strategy_id']}@{row['version']}", row["source"])


def shadow_slots(rt: Runtime, inputs: WarehouseInputs = LIVE) -> list[tuple[str, str, int]]:
    """(slot, strategy_id, version) of the candidates in a shadow paper test, from the
    warehouse (``app.promotion.shadow_assignments``; ``inputs`` may cache them). They trade on
    paper only, each with its own ``starting_cash`` deposit and ledger."""
    return inputs.shadow_slots(rt.store)


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




def slot_account(rt: Runtime, slot: str, marks: dict[str, Decimal], pairs: dict,
                 now: datetime, inputs: WarehouseInputs = LIVE, store: ScanStore | None = None
                 ) -> tuple[PortfolioView, RiskState]:
    """The slot's portfolio (from the ledger) and persisted risk state; the slot's starting
    capital (``settings.starting_cash``) is deposited once, even before the executor first
    runs."""
    store, cash = rt.store if store is None else store, Decimal(repr(rt.settings.starting_cash))
    fee = Decimal(repr(max((p.fee_taker for p in pairs.values()), default=0.0)))
    inputs.ensure_deposit(store, slot, cash, now)
    return (store.portfolio_view(slot, marks, fee_rate=fee),
            store.load_risk_state(slot) or RiskState())


def load_inputs(rt: Runtime, now: datetime, shadows: Sequence[str] = (),
                inputs: WarehouseInputs = LIVE, store: ScanStore | None = None
                ) -> tuple[list, dict, dict, pl.DataFrame, list[str]]:
    """(slots as (name, version row, portfolio, risk state), bars per symbol, pairs,
    5m indicators, notes), all read in one warehouse session (through ``inputs``)."""
    store, symbols = rt.store if store is None else store, rt.settings.symbols
    bar_time = scan_bar_time(now)
    extra = parse_shadows(shadows)
    with store.session():
        active = inputs.active_version(store)
        held = [s for s in shadow_slots(rt, inputs) if s[0] not in {e[0] for e in extra}]
        refs = [("active", *active), *held, *extra] if active else []
        rows = []
        for slot, sid, ver in refs:
            row = inputs.strategy_version(store, sid, ver)
            if row is None:
                raise ConfigError(f"slot {slot}: unknown strategy version {sid}@{ver}")
            rows.append((slot, row))
        n = max([INDICATOR_BARS, *(r["warmup_bars"] for _, r in rows)])
        bars = inputs.bars(store, symbols, bar_time - BAR * (2 * n + 288), bar_time + BAR, n)
        pairs = inputs.asset_pairs(store)
        indicators = inputs.indicators(store, symbols, bar_time - BAR * 12, bar_time + BAR)
        marks = {s: Decimal(repr(float(b["close"][-1]))) for s, b in bars.items() if b.height}
        slots = [(slot, row, *slot_account(rt, slot, marks, pairs, now, inputs, store))
                 for slot, row in rows]
    return slots, bars, pairs, indicators, [] if active else ["no active strategy version"]


def persist_risk(store: ScanStore, result: ScanResult, now: datetime) -> int:
    """Store each slot's risk events and new state; return the number of new events."""
    new = 0
    for slot, state in result.states.items():
        new += store.record_risk_events(slot, result.events.get(slot, []))
        store.save_risk_state(slot, state, now)
    return new


Worker = Callable[[dict[str, Any]], SignalSource]  # a version row -> its signal source


def scan_once(rt: Runtime, now: datetime, shadows: Sequence[str] = (),
              worker: Worker | None = None, inputs: WarehouseInputs = LIVE,
              unwritten: list | None = None, store: ScanStore | None = None) -> ScanOutcome:
    """Load, run and record one scan deciding on the bars closed at ``now``; ``worker`` maps
    a version row to its signal source (default: ``version_worker``, the runtime's service);
    ``inputs`` reads them (default: the warehouse; ``simulate`` passes a ``CachedInputs``).
    With ``unwritten`` (``simulate``), the (scan, signals) rows are appended to it instead of
    written: the caller stores them (``Store.record_scans``) in the same transaction, before it
    commits; the intents, risk events and states are always written at once (the executor and
    the next scan read them). ``store`` replaces ``rt.store`` (see the module docstring)."""
    store = rt.store if store is None else store
    accounts, bars, pairs, indicators, notes = load_inputs(rt, now, shadows, inputs, store)
    pick = worker or (lambda row: version_worker(rt, row))
    slots = [SlotInput(slot, pick(row), portfolio, state,
                       params=row["params_default"])
             for slot, row, portfolio, state in accounts]
    result = run_scan(bars, slots, rt.risk_limits, pairs, now, indicators)  # no connection held
    with store.session():
        if unwritten is None:
            new = store.record_scan(result.scan, result.signals, result.intents)
        else:
            unwritten.append((result.scan, result.signals))
            new = store.record_intents(result.intents)
        events = persist_risk(store, result, now)
    return ScanOutcome(result, new, events, notes)


KEY_COLUMNS = ("ts", "open", "high", "low", "close", "volume")
_KEY_LIST = list(KEY_COLUMNS)


class PrimedSource:
    """A ``SignalSource`` answering the scan's windows from one ``generate`` call per symbol over
    a longer span (``prime``; ``simulate`` primes a day at a time), keyed by each window's last
    bar. Valid because every registered version passed the warm-up check (a window of
    ``warmup_bars`` bars reproduces the full-history decision) and the look-ahead check (row t
    depends only on bars <= t); a window it was not primed for goes to the real worker."""

    def __init__(self, inner: SignalSource, sha: str) -> None:
        self.inner, self.sha = inner, sha
        self.strategy_id, self.version = inner.strategy_id, inner.version
        self.warmup_bars = inner.warmup_bars
        self._rows: dict[tuple, tuple[pl.DataFrame, int]] = {}  # last bar -> (output, row)
        self._params: dict[str, Any] | None = None

    def prime(self, frames: dict[str, pl.DataFrame], params: dict[str, Any] | None) -> None:
        self._rows, self._params = {}, params
        long = {s: b for s, b in frames.items() if b.height >= self.warmup_bars}
        for sym, out in (self.inner.generate_many(long, params) if long else {}).items():
            if not isinstance(out, pl.DataFrame):  # that symbol's windows go to the worker
                continue
            first = self.warmup_bars - 1
            keys = long[sym].slice(first)[list(KEY_COLUMNS)].rows()
            self._rows.update((k, (out, first + j)) for j, k in enumerate(keys))

    def _hit(self, bars: pl.DataFrame, params: dict[str, Any] | None) -> pl.DataFrame | None:
        if not bars.height or params != self._params:
            return None
        # the last bar's key without a column selection (``df[cols]`` runs a polars select)
        key = bars.row(-1) if bars.columns == _KEY_LIST else \
            tuple(bars.get_column(c)[-1] for c in KEY_COLUMNS)
        hit = self._rows.get(key)
        return None if hit is None else hit[0].slice(hit[1], 1)

    def generate(self, bars: pl.DataFrame, params: dict[str, Any] | None = None) -> pl.DataFrame:
        hit = self._hit(bars, params)
        return hit if hit is not None else self.inner.generate(bars, params)

    def generate_many(self, frames: Mapping[str, pl.DataFrame], params: dict[str, Any] | None = None
                      ) -> dict[str, pl.DataFrame | StrategyError]:
        """Primed windows from the cache; the misses in one call to the real worker."""
        out: dict[str, pl.DataFrame | StrategyError] = {}
        misses: dict[str, pl.DataFrame] = {}
        for sym, bars in frames.items():
            hit = self._hit(bars, params)
            if hit is not None:
                out[sym] = hit
            else:
                misses[sym] = bars
        if misses:
            out |= self.inner.generate_many(misses, params)
        return {sym: out[sym] for sym in frames}

    def close(self) -> None:
        self.inner.close()

