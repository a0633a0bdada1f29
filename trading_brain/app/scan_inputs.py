"""Where ``app.scan.scan_once`` reads a scan's inputs from (DESIGN §6.1), and ``ScanStore``,
the part of a store a scan reads and writes (the warehouse ``Store``, or ``simulate``'s book).

``WarehouseInputs`` (``LIVE``): the warehouse, read afresh at every scan — what the Dagster
``scan`` asset does. ``CachedInputs``: for a process that alone writes the warehouse while it
runs many scans (``simulate``): the active version, version rows, shadow slots, asset pairs and
the slots' done deposits are read once (``forget_versions`` re-reads the first three), and the
5m candles and indicators come from spans the caller read from the warehouse. Contract: for
every call, ``CachedInputs`` returns exactly what ``WarehouseInputs`` would return at that
moment, provided the caller re-holds a span after writing rows inside it and nothing else
changes the cached tables meanwhile.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Protocol

import polars as pl

from trading_brain.domain.instruments import AssetPair
from trading_brain.domain.intents import OrderIntent
from trading_brain.domain.risk import PortfolioView, RiskEvent, RiskState
from trading_brain.domain.timeframes import Timeframe
from trading_brain.engine.scan import BAR_COLUMNS, STATE_COLUMNS

if TYPE_CHECKING:
    from trading_brain.adapters.duckdb import Store


class ScanStore(Protocol):
    """What one scan reads (versions, pairs, 5m candles and indicators, each slot's account and
    risk state) and writes (deposit, scan, signals, intents, risk events and states)."""

    def session(self) -> AbstractContextManager[object]: ...

    def active_version(self) -> tuple[str, int] | None: ...

    def strategy_version(self, strategy_id: str, version: int) -> dict[str, Any] | None: ...

    def read_asset_pairs(self) -> dict[str, AssetPair]: ...

    def read_candles(self, symbols: Sequence[str] | None, timeframe: Timeframe,
                     start: datetime | None = None, end: datetime | None = None
                     ) -> pl.DataFrame: ...

    def read_indicators(self, symbols: Sequence[str] | None, timeframe: str,
                        start: datetime | None = None, end: datetime | None = None
                        ) -> pl.DataFrame: ...

    def ensure_deposit(self, slot: str, amount: Decimal, ts: datetime) -> bool: ...

    def portfolio_view(self, slot: str, marks: Mapping[str, Decimal],
                       fee_rate: Decimal = ...) -> PortfolioView: ...

    def load_risk_state(self, slot: str) -> RiskState | None: ...

    def save_risk_state(self, slot: str, state: RiskState, now: datetime | None = None
                        ) -> None: ...

    def record_risk_events(self, slot: str, events: Sequence[RiskEvent]) -> int: ...

    def record_scan(self, scan: dict[str, Any], signals: Sequence[dict[str, Any]],
                    intents: Sequence[OrderIntent]) -> int: ...

    def record_intents(self, intents: Sequence[OrderIntent]) -> int: ...


class WarehouseInputs:
    """Where a scan's inputs come from: the warehouse, read afresh every scan (live)."""

    def active_version(self, store: ScanStore) -> tuple[str, int] | None:
        return store.active_version()

    def strategy_version(self, store: ScanStore, sid: str, ver: int) -> dict[str, Any] | None:
        return store.strategy_version(sid, ver)

    def asset_pairs(self, store: ScanStore) -> dict[str, AssetPair]:
        return store.read_asset_pairs()

    def shadow_slots(self, warehouse: Store) -> list[tuple[str, str, int]]:
        """(slot, strategy_id, version) of the candidates in paper test (``app.promotion``)."""
        from trading_brain.app.promotion import shadow_assignments

        return shadow_assignments(warehouse)

    def ensure_deposit(self, store: ScanStore, slot: str, cash: Decimal, now: datetime) -> None:
        store.ensure_deposit(slot, cash, now)

    def bars(self, store: ScanStore, symbols: Sequence[str], start: datetime, end: datetime,
             n: int) -> dict[str, pl.DataFrame]:
        """Per symbol, its newest ``n`` 5m candles with open time in ``[start, end)``, columns
        ``engine.scan.BAR_COLUMNS`` (empty for a symbol without any)."""
        candles = store.read_candles(symbols, "5m", start, end).select("symbol", *BAR_COLUMNS)
        bars = {s: f.tail(n) for (s,), f in candles.partition_by(
            "symbol", as_dict=True, include_key=False).items()}
        return bars | {s: candles.clear().drop("symbol") for s in symbols if s not in bars}

    def indicators(self, store: ScanStore, symbols: Sequence[str], start: datetime, end: datetime
                   ) -> pl.DataFrame:
        """The 5m ``indicators`` rows with ts in ``[start, end)`` sorted by ts, symbol, columns
        ``engine.scan.STATE_COLUMNS`` (what the scan records of them)."""
        return store.read_indicators(symbols, "5m", start, end).select(STATE_COLUMNS) \
            .sort("ts", "symbol")


_US = timedelta(microseconds=1)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class _Span:
    """Rows of ``symbols`` with ts in [start, end) (a frame sorted by symbol, ts), indexed per
    symbol (its ``symbol`` column dropped) so a sub-window is a zero-copy slice found by
    bisection."""

    def __init__(self, frame: pl.DataFrame, symbols: Sequence[str], start: datetime,
                 end: datetime) -> None:
        self.symbols, self.start, self.end = frozenset(symbols), start, end
        self.empty = frame.clear().drop("symbol")
        self.parts = {s: f for (s,), f in frame.partition_by(
            "symbol", as_dict=True, include_key=False).items()}
        self.keys = {s: f["ts"].dt.epoch("us").to_list() for s, f in self.parts.items()}

    def covers(self, symbols: Sequence[str], start: datetime, end: datetime) -> bool:
        return set(symbols) <= self.symbols and self.start <= start and end <= self.end

    def between(self, symbol: str, start: datetime, end: datetime, n: int | None = None
                ) -> pl.DataFrame:
        """The symbol's rows with ts in [start, end) (the newest ``n`` of them)."""
        if symbol not in self.parts:
            return self.empty
        keys = self.keys[symbol]
        a = bisect_left(keys, (start - _EPOCH) // _US)
        b = bisect_left(keys, (end - _EPOCH) // _US)
        a = a if n is None else max(a, b - n)
        return self.parts[symbol].slice(a, b - a)


class _Rows:
    """Rows of ``symbols`` with ts in [start, end) sorted by ts, symbol: the rows of ALL those
    symbols in a sub-window are one zero-copy slice found by bisection."""

    def __init__(self, frame: pl.DataFrame, symbols: Sequence[str], start: datetime,
                 end: datetime) -> None:
        self.symbols, self.start, self.end = frozenset(symbols), start, end
        self.frame = frame.sort("ts", "symbol")
        self.keys = self.frame.get_column("ts").dt.epoch("us").to_list()

    def covers(self, symbols: Sequence[str], start: datetime, end: datetime) -> bool:
        return set(symbols) == self.symbols and self.start <= start and end <= self.end

    def between(self, start: datetime, end: datetime) -> pl.DataFrame:
        a = bisect_left(self.keys, (start - _EPOCH) // _US)
        b = bisect_left(self.keys, (end - _EPOCH) // _US)
        return self.frame.slice(a, b - a)


class CachedInputs(WarehouseInputs):
    """Inputs of a process that alone writes the warehouse (``simulate``): the active version,
    version rows, pairs and done deposits are read once; 5m candles and indicators come from
    spans the caller read from the warehouse (``hold_candles``/``hold_indicators``) when they
    cover the asked window — the same rows a warehouse read would return, as long as the caller
    re-reads after writing inside a held span. Anything not covered is read from the store."""

    def __init__(self) -> None:
        self._active: tuple[tuple[str, int] | None] | None = None
        self._versions: dict[tuple[str, int], dict[str, Any] | None] = {}
        self._pairs: dict | None = None
        self._shadows: list[tuple[str, str, int]] | None = None
        self._deposited: set[str] = set()
        self._candles: _Span | None = None
        self._indicators: _Rows | None = None

    def hold_candles(self, frame: pl.DataFrame, symbols: Sequence[str], start: datetime,
                     end: datetime) -> None:
        """``frame`` = ``store.read_candles(symbols, "5m", start, end)``."""
        self._candles = _Span(frame.select("symbol", *BAR_COLUMNS), symbols, start, end)

    def hold_indicators(self, frame: pl.DataFrame, symbols: Sequence[str], start: datetime,
                        end: datetime) -> None:
        """``frame`` = ``store.read_indicators(symbols, "5m", start, end)``."""
        self._indicators = _Rows(frame.select(STATE_COLUMNS), symbols, start, end)

    def active_version(self, store: ScanStore) -> tuple[str, int] | None:
        if self._active is None:
            self._active = (store.active_version(),)
        return self._active[0]

    def strategy_version(self, store: ScanStore, sid: str, ver: int) -> dict[str, Any] | None:
        if (sid, ver) not in self._versions:
            self._versions[sid, ver] = store.strategy_version(sid, ver)
        return self._versions[sid, ver]

    def shadow_slots(self, warehouse: Store) -> list[tuple[str, str, int]]:
        if self._shadows is None:
            self._shadows = super().shadow_slots(warehouse)
        return list(self._shadows)

    def forget_versions(self) -> None:
        """Read the active version, version rows and shadow slots afresh (after the process
        changed them: ``simulate --evolve``'s nightly step)."""
        self._active, self._shadows = None, None
        self._versions.clear()

    def asset_pairs(self, store: ScanStore) -> dict[str, AssetPair]:
        if self._pairs is None:
            self._pairs = store.read_asset_pairs()
        return dict(self._pairs)

    def ensure_deposit(self, store: ScanStore, slot: str, cash: Decimal, now: datetime) -> None:
        if slot not in self._deposited:
            store.ensure_deposit(slot, cash, now)
            self._deposited.add(slot)

    def bars(self, store: ScanStore, symbols: Sequence[str], start: datetime, end: datetime,
             n: int) -> dict[str, pl.DataFrame]:
        span = self._candles
        if span is None or not span.covers(symbols, start, end):
            return super().bars(store, symbols, start, end, n)
        return {s: span.between(s, start, end, n) for s in symbols}

    def indicators(self, store: ScanStore, symbols: Sequence[str], start: datetime, end: datetime
                   ) -> pl.DataFrame:
        rows = self._indicators
        if rows is None or not rows.covers(symbols, start, end):
            return super().indicators(store, symbols, start, end)
        return rows.between(start, end)


LIVE = WarehouseInputs()
